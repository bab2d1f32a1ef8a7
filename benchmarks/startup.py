"""Benchmark 7, start-up: what a command costs before it does anything (issue 15).

Each command runs as a new user runs it: the virtualenv's `majlis` entry point, as a
subprocess from the repository root. The figure is the CPU time (user + system) of that
process, read from the kernel's accounting of the finished child, the median of several
runs; the wall time is beside it. The probe then runs the same command in a fresh
interpreter to list which heavy packages it imported (openai, langgraph, llama_cpp).

Goal: at most 0.4 s of CPU for `majlis --help` and for `majlis validate` on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import REPO

GOAL_CPU_S = 0.4
HEAVY = ("openai", "langgraph", "llama_cpp")
COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "validate": ["validate"],
    "scenarios": ["scenarios"],
    "view": ["view", "runs/sample", "--out", "{tmp}/view.html"],
    "run --help": ["run", "--help"],
}
PROBE = f"""
import json, sys
from majlis.cli import main
try:
    main(sys.argv[1:])
finally:
    loaded = {{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r})
    print(json.dumps(sorted(loaded)), file=sys.stderr)
"""


def entry_point() -> str:
    """The `majlis` script next to this interpreter (the virtualenv's), else on PATH."""
    here = Path(sys.executable).with_name("majlis")
    return str(here) if here.exists() else (shutil.which("majlis") or "majlis")


def child_cpu(argv: list[str]) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, exit code) of one finished child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, wall, proc.returncode


def heavy_imports(args: list[str]) -> list[str]:
    res = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=REPO, capture_output=True, text=True
    )
    lines = res.stderr.strip().splitlines()
    return json.loads(lines[-1]) if lines else ["(probe failed)"]


def run(quick: bool) -> dict[str, Any]:
    repeats = 3 if quick else 7
    tool = entry_point()
    out: dict[str, Any] = {"repeats": repeats, "commands": {}}
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"majlis-startup-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        for name, template in COMMANDS.items():
            args = [a.replace("{tmp}", str(tmp)) for a in template]
            child_cpu([tool, *args])  # one unmeasured run, so every figure has warm caches
            runs = [child_cpu([tool, *args]) for _ in range(repeats)]
            out["commands"][name] = {
                "cpu_s": round(statistics.median(r[0] for r in runs), 3),
                "wall_s": round(statistics.median(r[1] for r in runs), 3),
                "exit_codes": sorted({r[2] for r in runs}),
                "heavy_imports": heavy_imports(args),
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    c = out["commands"]
    out["goals"] = {
        "help_cpu<=0.4s": c["--help"]["cpu_s"] <= GOAL_CPU_S,
        "validate_cpu<=0.4s": c["validate"]["cpu_s"] <= GOAL_CPU_S,
    }
    return out


def rows(s: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The table's rows: CPU and wall per command, and what each imported."""
    out = []
    for name, c in s["commands"].items():
        heavy = ", ".join(c["heavy_imports"]) or "neither SDK nor langgraph"
        goal = ""
        if name in ("--help", "validate"):
            met = s["goals"][f"{name.strip('-')}_cpu<=0.4s"]
            goal = f"<= 0.4 s: {'met' if met else 'MISSED'}"
        value = f"{c['cpu_s']:.2f} s CPU, {c['wall_s']:.2f} s wall; imports {heavy}"
        out.append(("startup", f"`majlis {name}`", value, goal))
    return out


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
