"""docs/tutorial.md, run as a reader runs it: every bash block in order, in an empty folder
outside the checkout, with no home (the slow block, marked so, is the one left out)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from conftest import REPO, run_process

TUTORIAL = REPO / "docs" / "tutorial.md"
SLOW = "# slow:"


def blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", TUTORIAL.read_text(encoding="utf-8"), re.S)


def test_the_tutorial_has_its_steps_and_marks_the_slow_one() -> None:
    found = blocks()
    assert len(found) >= 5
    assert [b for b in found if b.startswith(SLOW)] == [
        "# slow: a few minutes on two cores\nmajlis run --scenario bell\n"
    ]


def test_the_tutorials_commands_run_from_an_empty_folder(tmp_path: Path) -> None:
    script = "\n".join(b for b in blocks() if not b.startswith(SLOW))
    prelude = f'set -euo pipefail\nmajlis() {{ "{sys.executable}" -m majlis "$@"; }}\n'
    res = run_process(
        ["bash", "-c", prelude + script],
        cwd=tmp_path,
        env={"MAJLIS_HOME": "", "COLUMNS": "200"},
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    room = tmp_path / "bell-workshop"
    assert sorted(p.name for p in (room / "bell" / "agents").iterdir()) == [
        "board.yaml", "buses.yaml", "parents.yaml", "teachers.yaml",
    ]  # fmt: skip
    runs = sorted((room / "runs").iterdir())
    assert len(runs) == 2  # bell, then water: both beside the reader, none in the checkout
    bell, water = sorted(runs, key=lambda r: "water" in r.name)
    branches = {"later_start", "small_step", "status_quo"}  # Bell Time's, not Iraq's
    assert json.loads((bell / "outcome.json").read_text())["branch"] in branches
    water_outcome = json.loads((water / "outcome.json").read_text())
    assert (water_outcome["kind"], water_outcome["branch"]) == ("deal", "settled")
    assert all((run / "eval.json").is_file() for run in runs)
    assert (room / "bell.html").read_text().count("Bell Time") >= 1
    assert (bell / "debrief.md").is_file()
    assert "zone of agreement" in res.stdout
