"""Benchmark 6, the first session: `majlis run` exactly as a new user meets it.

The README's main command runs as a subprocess (the virtualenv's `majlis` entry point, from
the repository root, on the embedded SmolLM2 model, with `--seed` for repeatability and
`--out` in a temporary folder so nothing lands in runs/). Its stdout is read line by line as
it comes: what a user waits for is the first turn on screen, `<Party display name>: <text>`,
and then the end of the whole session. Everything else is read afterwards from the run
folder (manifest.json, events.jsonl, outcome.json), so the figures are the project's own.

Sessions, each in a fresh folder (so the response cache, on with `--seed`, replays nothing):

- default: `majlis run`, on whatever the machine is doing (read the load averages);
- full profile: `--profile full --rounds 1`, to set its round-1 prompt tokens per call
  against the default (compact) profile's;
- narrated: `--narrate all`, every structured move decided by the scripted negotiator and
  only the words written by the model;
- loaded: the default session again while one busy-loop process per core keeps every core
  busy, to see that slowness alone fails no turn and times nothing out.

`quick` skips the narrated and the loaded sessions. `extra` (or the environment variable
MAJLIS_BENCH_MODEL, e.g. `scripted`) adds arguments to every command: a way to check the
plumbing in seconds without the embedded model.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from majlis.evals import backing, wrong_deal_ratio
from majlis.protocol import readable
from majlis.run import RunDir, load_snapshot
from majlis.scenario import AgentCard, load_scenario

from .common import REPO

SCENARIO = "cornered-in-iraq"
SEED = 7
TIMEOUT_S = 1800.0  # per session; past it the process is killed and the figure says so
GOAL_FIRST_TURN_S = 20.0
GOAL_WALL_S = 240.0
GOAL_READABLE = 0.95
ENV = {"COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
# A busy loop that also ends when its parent goes away (even killed outright), so a hog can
# never outlive the benchmark; it checks once per million iterations, so it stays at 100%.
HOG = "import os, sys\nwhile os.getppid() == int(sys.argv[1]):\n    for _ in range(10**6): pass\n"
TIMEOUT_WORDS = re.compile(r"timed out|timeout", re.IGNORECASE)


def majlis_exe() -> Path:
    """The `majlis` entry point of the interpreter running the benchmark (the venv's)."""
    return Path(sys.executable).parent / "majlis"


def party_names(home: Path = REPO) -> dict[str, str]:
    """Display name -> party id, as the live view prints them."""
    loaded = load_scenario(SCENARIO, home)
    return {card.name: pid for pid, card in loaded.cards.items()}


def turn_pattern(names: Sequence[str]) -> re.Pattern[str]:
    """`<display name>: <text>` at the start of a line (longest names first)."""
    alts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"^({alts}): \S")


class Watch:
    """Reads a process's stdout line by line and notes when the first turn appeared."""

    def __init__(self, stream: Any, t0: float, pattern: re.Pattern[str]) -> None:
        self.t0, self.pattern = t0, pattern
        self.lines = 0
        self.first_output_s: float | None = None
        self.first_turn_s: float | None = None
        self.first_turn_party: str | None = None
        self.first_turn_line: str | None = None
        self.tail: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            t = time.perf_counter() - self.t0
            self.lines += 1
            if self.first_output_s is None and line.strip():
                self.first_output_s = t
            if self.first_turn_s is None and (m := self.pattern.match(line)):
                self.first_turn_s = t
                self.first_turn_party = m.group(1)
                self.first_turn_line = line.rstrip()[:200]
            self.tail = [*self.tail[-4:], line.rstrip()]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _last_line(path: Path) -> str | None:
    with contextlib.suppress(OSError):
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
        return lines[-1][:300] if lines else None
    return None


def run_cli(
    name: str, args: Sequence[str], tmp: Path, names: Sequence[str], timeout: float = TIMEOUT_S
) -> dict[str, Any]:
    """One `majlis run` from the outside: timings, exit, then the run folder's figures."""
    out_dir = tmp / name
    out_dir.mkdir()
    stderr_path = tmp / f"{name}.stderr.txt"
    cmd = [str(majlis_exe()), "run", *args, "--out", str(out_dir)]
    res: dict[str, Any] = {
        "command": ["majlis", "run", *args, "--out", "<tmp>"],
        "load_average_at_start": _load(),
    }
    timed_out = False
    with stderr_path.open("w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env={**os.environ, **ENV},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            errors="replace",
            bufsize=1,
        )
        try:
            watch = Watch(proc.stdout, t0, turn_pattern(names))
            try:
                rc: int | None = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out, rc = True, None
            wall = time.perf_counter() - t0
        finally:
            if proc.poll() is None:  # timed out, or the benchmark itself was interrupted
                proc.kill()
                proc.wait()
        watch.thread.join(timeout=10)
    res.update(
        {
            "exit_code": rc,
            "timed_out": timed_out,
            "wall_s": round(wall, 2),
            "first_output_s": _round(watch.first_output_s),
            "first_turn_s": _round(watch.first_turn_s),
            "first_turn_party": watch.first_turn_party,
            "first_turn_line": watch.first_turn_line,
            "stdout_lines": watch.lines,
            "load_average_at_end": _load(),
        }
    )
    if rc != 0:
        res["stderr_last_line"] = _last_line(stderr_path)
        res["stdout_tail"] = watch.tail
    res.update(read_run(out_dir))
    return res


def _round(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def run_folder(out_dir: Path) -> Path | None:
    """The run folder: the one subdirectory the run made under --out."""
    dirs = [p for p in out_dir.iterdir() if p.is_dir()]
    return dirs[0] if len(dirs) == 1 else None


def _json(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_text(encoding="utf-8"))
    return None


def _events(path: Path) -> list[dict[str, Any]]:
    events = []
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events


def _cards(folder: Path) -> dict[str, AgentCard]:
    """The cards as the run used them (its snapshot), else the scenario's current ones."""
    try:
        return load_snapshot(RunDir.open(folder)).cards
    except Exception:  # a run cut before its snapshot: the scenario as it stands
        return load_scenario(SCENARIO, REPO).cards


def read_run(out_dir: Path) -> dict[str, Any]:
    """The figures of a run folder: status, outcome, usage, errors, messages, wrong deals."""
    folder = run_folder(out_dir)
    if folder is None:
        return {"run_folder": None}
    manifest = _json(folder / "manifest.json") or {}
    outcome = _json(folder / "outcome.json") or {}
    events = _events(folder / "events.jsonl")
    parties = manifest.get("parties") or {}
    calls = [e for e in events if e.get("usage")]
    errors = [e for e in events if e.get("type") == "error"]
    error_list = [
        {
            "round": e.get("round"),
            "party": e["content"].get("party", e.get("speaker")),
            "task": e["content"].get("task"),
            "error": str(e["content"].get("error", ""))[:300],
        }
        for e in errors
    ]
    texts = [str(e["content"].get("text", "")) for e in events if e.get("type") == "message"]
    n_readable = sum(readable(t) for t in texts)
    by_round: dict[str, list[int]] = {}
    for e in calls:
        by_round.setdefault(str(e.get("round")), []).append(e["usage"]["prompt_tokens"])
    cards = _cards(folder) if events else {}
    wrong = backed = 0
    per_party: dict[str, dict[str, Any]] = {}
    for pid, card in cards.items():
        ratio, w, b = wrong_deal_ratio(card, backing(events, pid))
        wrong, backed = wrong + w, backed + b
        per_party[pid] = {"ratio": _round(ratio, 3), "wrong": w, "backed": b}
    usage = outcome.get("usage") or {}
    return {
        "run_folder": folder.name,
        "status": manifest.get("status"),
        "manifest_error": manifest.get("error"),
        "profiles": sorted({str(p.get("profile")) for p in parties.values()}),
        "played_by": sorted({str(p.get("played_by")) for p in parties.values()}),
        "kind": outcome.get("kind"),
        "rounds_used": outcome.get("rounds_used"),
        "calls": outcome.get("calls", len(calls)),
        "prompt_tokens": usage.get(
            "prompt_tokens", sum(e["usage"]["prompt_tokens"] for e in calls)
        ),
        "completion_tokens": usage.get(
            "completion_tokens", sum(e["usage"]["completion_tokens"] for e in calls)
        ),
        "failed_turns": outcome.get("failed_turns", len(errors)),
        "error_events": len(errors),
        "errors": error_list,
        "timeout_errors": sum(bool(TIMEOUT_WORDS.search(x["error"])) for x in error_list),
        "mean_prompt_tokens_per_call_by_round": {
            r: round(fmean(xs), 1) for r, xs in sorted(by_round.items())
        },
        "messages": len(texts),
        "readable_messages": n_readable,
        "readable_share": round(n_readable / len(texts), 3) if texts else None,
        "unreadable_examples": [t[:160] for t in texts if not readable(t)][:3],
        "wrong_deals": wrong,
        "backed": backed,
        "wrong_deal_ratio": round(wrong / backed, 3) if backed else None,
        "wrong_deal_by_party": per_party,
    }


@contextlib.contextmanager
def cpu_hogs(n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """n busy-loop processes (never more than the cores), killed on the way out, whatever
    happened in between."""
    n = max(1, min(n, os.cpu_count() or 1))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(n):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", HOG, str(os.getpid())],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        yield procs
    finally:
        for p in procs:
            with contextlib.suppress(OSError):
                p.kill()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)


def _round1(session: dict[str, Any]) -> float | None:
    return (session.get("mean_prompt_tokens_per_call_by_round") or {}).get("1")


def _extra() -> list[str]:
    model = os.environ.get("MAJLIS_BENCH_MODEL")
    return ["--model", model] if model else []


def run(quick: bool, extra: Sequence[str] | None = None) -> dict[str, Any]:
    extra = list(_extra() if extra is None else extra)
    base = ["--seed", str(SEED), *extra]
    names = party_names()
    sessions: dict[str, dict[str, Any]] = {}
    hogs = 0
    with tempfile.TemporaryDirectory(prefix="majlis-first-session-") as tmp_name:
        tmp = Path(tmp_name)
        sessions["default"] = run_cli("default", base, tmp, list(names))
        sessions["full_profile"] = run_cli(
            "full_profile", [*base, "--profile", "full", "--rounds", "1"], tmp, list(names)
        )
        if not quick:
            sessions["narrated"] = run_cli(
                "narrated", [*base, "--narrate", "all"], tmp, list(names)
            )
            hogs = os.cpu_count() or 1
            with cpu_hogs(hogs) as started:
                hogs = len(started)
                time.sleep(1)  # let the hogs reach full speed before the clock starts
                sessions["loaded"] = run_cli("loaded", base, tmp, list(names))
    d = sessions["default"]
    out: dict[str, Any] = {
        "scenario": SCENARIO,
        "seed": SEED,
        "extra_args": extra,
        "timeout_s": TIMEOUT_S,
        "sessions": sessions,
        "first_turn_s": d["first_turn_s"],
        "first_turn_party": d["first_turn_party"],
        "wall_s": d["wall_s"],
        "exit_code": d["exit_code"],
        "rounds_used": d.get("rounds_used"),
    }
    full, default_round1 = _round1(sessions["full_profile"]), _round1(d)
    out["prompt_tokens_round1"] = {
        "default_profile": ",".join(d.get("profiles") or []) or None,
        "default_per_call": default_round1,
        "full_per_call": full,
        "full_over_default": round(full / default_round1, 3) if full and default_round1 else None,
        "full_exit_code": sessions["full_profile"]["exit_code"],
    }
    pool = [s for k, s in sessions.items() if k in ("default", "loaded")]
    msgs = sum(s.get("messages", 0) for s in pool)
    ok = sum(s.get("readable_messages", 0) for s in pool)
    out["readable"] = {
        "sessions": [k for k in sessions if k in ("default", "loaded")],
        "messages": msgs,
        "readable": ok,
        "share": round(ok / msgs, 3) if msgs else None,
    }
    out["wrong_deal_ratio"] = {
        "full_llm": _wrong(d),
        **({"narrated": _wrong(sessions["narrated"])} if "narrated" in sessions else {}),
    }
    if "narrated" in sessions:
        n = sessions["narrated"]
        out["narrated"] = {
            "exit_code": n["exit_code"],
            "status": n.get("status"),
            "wall_s": n["wall_s"],
            "readable_share": n.get("readable_share"),
            "messages": n.get("messages"),
        }
    goals: dict[str, bool | None] = {
        "first_turn_s<=20": d["first_turn_s"] is not None
        and d["first_turn_s"] <= GOAL_FIRST_TURN_S,
        "wall_s<=240": d["exit_code"] == 0 and d["wall_s"] <= GOAL_WALL_S,
        "readable_share>=0.95": None
        if out["readable"]["share"] is None
        else out["readable"]["share"] >= GOAL_READABLE,
    }
    if "loaded" in sessions:
        s = sessions["loaded"]
        completes = (
            s["exit_code"] == 0
            and s.get("status") == "complete"
            and not s["timed_out"]
            and s.get("timeout_errors", 0) == 0
        )
        out["loaded"] = {
            "hogs": hogs,
            "exit_code": s["exit_code"],
            "timed_out": s["timed_out"],
            "status": s.get("status"),
            "wall_s": s["wall_s"],
            "error_events": s.get("error_events"),
            "errors": s.get("errors", []),
            "timeout_in_errors": bool(s.get("timeout_errors"))
            or bool(TIMEOUT_WORDS.search(str(s.get("manifest_error") or ""))),
            "completes": completes,
        }
        goals["loaded_completes_without_timeout"] = completes
    out["goals"] = goals
    return out


def _wrong(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "ratio": s.get("wrong_deal_ratio"),
        "wrong": s.get("wrong_deals"),
        "backed": s.get("backed"),
        "exit_code": s["exit_code"],
    }


if __name__ == "__main__":
    # python -m benchmarks.first_session [--quick] [majlis run args...], e.g. --model scripted
    argv = sys.argv[1:]
    q = "--quick" in argv
    rest = [a for a in argv if a != "--quick"]
    print(json.dumps(run(quick=q, extra=rest or None), indent=2))
