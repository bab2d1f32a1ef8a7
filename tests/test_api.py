"""The Python API as the README shows it: its example runs as written (issue 15)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import majlis

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The first Python block under the README's "Python API" heading."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_readme_example_runs_a_session_and_evaluates_it(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=tmp_path,
        env={"MAJLIS_HOME": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    first, second = res.stdout.splitlines()
    assert " after 3 rounds: runs/" in first
    assert second.endswith(" check findings")
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "eval.json").exists()


def test_every_name_the_api_lists_is_there() -> None:
    for name in majlis.__all__:
        assert getattr(majlis, name) is not None, name
    assert {"load_scenario", "run_session", "evaluate_run", "prepare"} <= set(majlis.__all__)
