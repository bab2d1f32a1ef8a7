"""Benchmark `adaptive`: a sweep against a rate-limited endpoint, its concurrency found by
itself (`concurrency: auto`) against fixed settings a user might have guessed.

The server (its own process) answers after a fixed latency with a canned reply, behind a
token bucket (`majlis.model.TokenBucket`: RATE requests a second, bursts of BURST) that
answers 429 with Retry-After past it, as hosted APIs do. Its capacity in calls at once is
about RATE x LATENCY. The same sweep (SESSIONS two-round sessions, all in flight, one
process, no response cache) runs with each fixed per-endpoint concurrency of FIXED, with a
too-high one (TOO_HIGH), and with `concurrency: auto` (ceiling 64). The figure is goodput:
sessions completed per minute of the sweep's wall time (a failed session counts for
nothing), with the 429s the endpoint sent and the failed sessions. Goals: adaptive within
10% of the best fixed setting, far (at least twice) above the too-high one, and no failed
session under adaptive.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from majlis.compare import Experiment, ModelSetup, run_sweep
from majlis.model import ModelConfig

from .common import REPO, ServerProcess, server_process

LATENCY = 0.2  # seconds a call takes at the server
RATE, BURST = 30.0, 6.0  # the endpoint's rate limit: about 6 calls at once fit
SESSIONS, ROUNDS = 24, 2
FIXED = (2, 4, 6, 8, 12, 16)
FIXED_QUICK = (4, 6)
TOO_HIGH = 64
CEILING = 64
GOAL_NEAR_BEST = 0.9
GOAL_OVER_TOO_HIGH = 2.0


class Trace:
    """The sweep's progress events: the adaptive limit's moves, and failed sessions."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.limits: list[tuple[float, int]] = []
        self.failed: list[str] = []

    def __call__(self, what: str, info: dict[str, Any]) -> None:
        if what == "limit":
            self.limits.append((round(time.perf_counter() - self.t0, 2), info["limit"]))
        elif what == "failed":
            self.failed.append(info["error"])


def _experiment(base_url: str, concurrency: int | str, name: str) -> Experiment:
    fixed = concurrency if isinstance(concurrency, int) else 8
    model = ModelConfig(model="canned", base_url=base_url, concurrency=fixed)
    return Experiment(
        name=name,
        seeds=SESSIONS,
        models=[ModelSetup(name="canned", default=model)],
        rounds=ROUNDS,
        # every session in flight under a fixed setting too: only the endpoint's calls at
        # once differ from one setting to the next
        concurrency="auto" if concurrency == "auto" else SESSIONS,
        max_concurrency=CEILING,
    )


async def one_sweep(srv: ServerProcess, concurrency: int | str, folder: Path) -> dict[str, Any]:
    exp = _experiment(srv.base_url, concurrency, f"adaptive-{concurrency}")
    before = srv.stats()
    trace = Trace()
    t0 = time.perf_counter()
    result = await run_sweep(exp, folder, home=REPO, check=False, progress=trace)
    wall = time.perf_counter() - t0
    after = srv.stats()
    row: dict[str, Any] = {
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "completed": len(result.done),
        "failed": len(result.failed),
        "goodput_per_min": round(len(result.done) / wall * 60, 1),
        "requests": after["calls"] - before["calls"],
        "refused_429": after["refused"] - before["refused"],
    }
    if result.failed:
        row["first_failure"] = next(iter(result.failed.values()))[:200]
    if trace.limits:
        row["limit"] = limit_summary(trace.limits, wall)
    return row


def limit_summary(moves: list[tuple[float, int]], wall: float) -> dict[str, Any]:
    """The adaptive limit over the sweep: its range, its mean over time, and its first
    moves (seconds into the sweep: limit), enough to see the sawtooth."""
    values = [n for _, n in moves]
    ends = [t for t, _ in moves[1:]] + [wall]
    held = sum((end - t) * n for (t, n), end in zip(moves, ends, strict=True))
    span = wall - moves[0][0]
    return {
        "moves": len(values) - 1,
        "min": min(values),
        "max": max(values),
        "mean_over_time": round(held / span, 2) if span > 0 else float(values[0]),
        "first_moves": ", ".join(f"{t:.2f}s:{n}" for t, n in moves[:40]),
    }


async def measure(fixed: tuple[int, ...], tmp: Path) -> list[dict[str, Any]]:
    rows = []
    extra = ("--rate", str(RATE), "--burst", str(BURST))
    for setting in ("auto", *fixed, TOO_HIGH):
        # a fresh server each time: a full bucket, and no backlog of the previous sweep's
        with server_process(LATENCY, extra=extra) as srv:
            row = await one_sweep(srv, setting, tmp / f"sweep-{setting}")
        printed = {k: v for k, v in row.items() if k != "limit"}
        print(f"  adaptive: {printed}", flush=True)
        rows.append(row)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    auto = next(r for r in rows if r["concurrency"] == "auto")
    fixed = [r for r in rows if r["concurrency"] not in ("auto", TOO_HIGH)]
    best = max(fixed, key=lambda r: r["goodput_per_min"])
    high = next(r for r in rows if r["concurrency"] == TOO_HIGH)
    over_best = auto["goodput_per_min"] / best["goodput_per_min"] if best["goodput_per_min"] else 0
    over_high = (
        auto["goodput_per_min"] / high["goodput_per_min"] if high["goodput_per_min"] else None
    )
    return {
        "best_fixed": best["concurrency"],
        "adaptive_over_best_fixed": round(over_best, 3),
        "adaptive_over_too_high": None if over_high is None else round(over_high, 2),
        "goals": {
            "adaptive>=0.9*best_fixed": over_best >= GOAL_NEAR_BEST,
            "adaptive>=2*too_high": over_high is None or over_high >= GOAL_OVER_TOO_HIGH,
            "adaptive_no_failed_session": auto["failed"] == 0,
        },
    }


def run(quick: bool) -> dict[str, Any]:
    fixed = FIXED_QUICK if quick else FIXED
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(measure(fixed, Path(tmp)))
    return {
        "latency_s": LATENCY,
        "rate_per_s": RATE,
        "burst": BURST,
        "sessions": SESSIONS,
        "rounds": ROUNDS,
        "too_high": TOO_HIGH,
        "ceiling": CEILING,
        "rows": rows,
        **summary(rows),
    }


def rows(res: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(benchmark, figure, value, goal and verdict) for the table of `python -m benchmarks`."""
    goals = res["goals"]
    where = f"{res['rate_per_s']:g}/s, burst {res['burst']:g}, {res['latency_s'] * 1000:.0f} ms"
    out = []
    for r in res["rows"]:
        c = r["concurrency"]
        label = "auto" if c == "auto" else f"fixed {c}"
        if c == TOO_HIGH:
            label += " (too high)"
        elif c == res["best_fixed"]:
            label += " (best fixed)"
        value = (
            f"{r['goodput_per_min']:.1f} sessions/min, {r['completed']} done, "
            f"{r['failed']} failed, {r['refused_429']} 429s"
        )
        if "limit" in r:
            lim = r["limit"]
            value += f", limit {lim['min']}-{lim['max']} (mean {lim['mean_over_time']:.1f})"
        goal = ""
        if c == "auto":
            goal = (
                f">= 0.9x best: {_mark(goals['adaptive>=0.9*best_fixed'])}, "
                f">= 2x too high: {_mark(goals['adaptive>=2*too_high'])}, "
                f"no failure: {_mark(goals['adaptive_no_failed_session'])}"
            )
        out.append(("adaptive", f"{label}, {where}", value, goal))
    return out


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv[1:]), indent=2))
