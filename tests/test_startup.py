"""The command line starts without the model SDK or langgraph (issue 15).

Each command below runs in a fresh interpreter; afterwards the test reads which modules
that interpreter imported. Importing openai costs about a second of CPU and langgraph
another: a command that never calls a model or runs a graph must not pay for them.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import run_process

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("openai", "langgraph", "llama_cpp", "langchain_core")
# Runs the command as `majlis` would, then says on its last stderr line what it imported.
PROBE = f"""
import json, sys
from majlis.cli import main
try:
    code = main(sys.argv[1:])
finally:
    loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
    print(json.dumps(loaded), file=sys.stderr)
sys.exit(code)
"""


def imported(args: list[str], cwd: Path = REPO) -> tuple[int, list[str], str]:
    """(exit code, heavy packages imported, stdout) of one command in a fresh interpreter."""
    res = run_process([sys.executable, "-c", PROBE, *args], cwd=cwd, timeout=120)
    return res.returncode, json.loads(res.stderr.strip().splitlines()[-1]), res.stdout


@pytest.fixture
def run_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "sample"
    shutil.copytree(REPO / "runs" / "sample", dst)
    return dst


def test_help_imports_neither_the_sdk_nor_langgraph() -> None:
    code, heavy, out = imported(["--help"])
    assert code == 0 and "run" in out and "validate" in out
    assert heavy == []


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "--home", str(REPO)],
        ["scenarios", "--home", str(REPO)],
        ["agents", "--home", str(REPO)],
        ["zone", "--home", str(REPO)],
        ["run", "--help"],
        ["fork", "--help"],
    ],
    ids=["validate", "scenarios", "agents", "zone", "run-help", "fork-help"],
)
def test_light_commands_stay_light(args: list[str]) -> None:
    code, heavy, out = imported(args)
    assert code == 0, out
    assert out.strip()
    assert heavy == []


def test_view_and_tags_of_a_run_stay_light(run_copy: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    code, heavy, _ = imported(["view", str(run_copy), "--out", str(page)])
    assert code == 0 and page.stat().st_size > 1000
    assert heavy == []
    code, heavy, _ = imported(["tags", str(run_copy)])
    assert code == 0 and heavy == []


def test_the_probe_sees_a_heavy_import(tmp_path: Path) -> None:
    """The check above can fail: a command that does call a model imports the SDK."""
    code, heavy, _ = imported(
        ["run", "--model", "scripted", "--rounds", "1", "--quiet", "--out", str(tmp_path)]
    )
    assert code == 0
    assert "openai" in heavy and "langgraph" in heavy
