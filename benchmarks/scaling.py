"""Benchmark 2, scaling: N sessions at once, as `majlis sweep` runs them, against N x one.

The server (its own process) answers after a fixed latency (200 ms) with a canned reply.
N sessions run through `majlis.compare.sweep.run_sweep` (separate graph threads, no response
cache), spread over one worker process per core as `majlis sweep --workers` does, each with
fewer rounds than the scenario's six to keep the run short. Up to 100 sessions, the same
sweep also runs in one process, for comparison. Throughput is sessions per second; the
ideal is N times the one-session rate. Memory per session is the growth of this process's
peak RSS during the one-process sweep, over N (each worker process adds a fixed cost of
its own on top: its share of the interpreter and libraries it stops sharing with its
parent as it writes to them).

For comparison, the same N run as bare replays (the recorded requests of one session sent
straight through one shared openai SDK client in the same dependency structure) show what
the SDK, the server and the machine can do at that N without the harness: the ceiling.
They run in one process, then dealt out to as many processes as the sweep's workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from majlis.compare import Experiment, ModelSetup, run_sweep, sweep_configs, worker_count
from majlis.model import ModelConfig

from .common import REPO, ServerProcess, rss_mb, server_process
from .overhead import bare, bare_client, harness, stages

GOAL_EFFICIENCY = 0.9
LATENCY = 0.2
WORKERS = os.cpu_count() or 1  # `majlis sweep --workers`: one process per core


class PeakRss:
    """Samples this process's RSS while a block runs; `peak` is the highest seen. (Only a
    one-process sweep is sampled: reading workers' proportional set sizes stalls them.)"""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.peak = 0.0

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb())
            await asyncio.sleep(self.every)

    async def __aenter__(self) -> PeakRss:
        self.before = rss_mb()
        self.peak = self.before
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        self.peak = max(self.peak, rss_mb())


async def sweep(
    srv: ServerProcess, n: int, rounds: int, folder: Path, workers: int
) -> dict[str, Any]:
    cfg = ModelConfig(model="canned", base_url=srv.base_url, concurrency=6 * n + 6)
    exp = Experiment(
        name=f"scale-{n}",
        seeds=n,
        models=[ModelSetup(name="canned", default=cfg)],
        rounds=rounds,
        concurrency=n,
        workers=workers,
    )
    stats0 = srv.stats()
    k = worker_count(exp, n, sweep_configs(exp, REPO))
    alone = k == 1
    async with PeakRss() if alone else contextlib.nullcontext() as mem:
        t0 = time.perf_counter()
        result = await run_sweep(exp, folder, home=REPO)
        wall = time.perf_counter() - t0
    stats1 = srv.stats()
    calls = stats1["calls"] - stats0["calls"]
    if result.failed:
        raise RuntimeError(
            f"{len(result.failed)} sessions failed: {next(iter(result.failed.values()))}"
        )
    memory = {}
    if mem is not None:
        memory = {
            "rss_growth_mb": round(mem.peak - mem.before, 1),
            "mb_per_session": round((mem.peak - mem.before) / n, 2),
        }
    return {
        "sessions": n,
        "workers": k,
        "wall_s": round(wall, 3),
        "calls": calls,
        "sessions_per_s": round(n / wall, 3),
        "calls_per_s": round(calls / wall, 1),
        # the server's own CPU over the wall time: near 1.0 means it is the bottleneck
        "server_busy": round((stats1["cpu_s"] - stats0["cpu_s"]) / wall, 2),
        **memory,
    }


async def replays(base_url: str, n: int, plan: list[list[dict[str, Any]]]) -> None:
    """N replays at once through one shared client."""
    # retries as the harness's client has them: at hundreds of connections a pooled one can
    # meet the server's keep-alive timeout, and the SDK then retries the request
    client = bare_client(base_url, max_retries=5)
    await asyncio.gather(*(bare(base_url, plan, client) for _ in range(n)))
    await client.close()


async def bare_many(srv: ServerProcess, n: int, plan: list[list[dict[str, Any]]]) -> float:
    """N replays at once in this process: the most the SDK does on one core here."""
    t0 = time.perf_counter()
    await replays(srv.base_url, n, plan)
    return time.perf_counter() - t0


def _bare_worker(base_url: str, n: int, plan: list[list[dict[str, Any]]], go: Any) -> None:
    go.wait()
    asyncio.run(replays(base_url, n, plan))


async def bare_spread(
    srv: ServerProcess, n: int, plan: list[list[dict[str, Any]]], workers: int
) -> float:
    """The N replays dealt out to forked processes, timed from their common start: what the
    SDK and the server can do at that N with every core in use."""
    mp = multiprocessing.get_context("fork")
    go = mp.Event()
    procs = [
        mp.Process(target=_bare_worker, args=(srv.base_url, len(range(i, n, workers)), plan, go))
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    t0 = time.perf_counter()
    go.set()
    for proc in procs:
        await asyncio.to_thread(proc.join)
    if any(proc.exitcode for proc in procs):
        raise RuntimeError(f"a bare replay process failed: {[p.exitcode for p in procs]}")
    return time.perf_counter() - t0


async def measure(srv: ServerProcess, sizes: list[int], rounds: int, tmp: Path) -> dict[str, Any]:
    # warm-up and one session's requests, for the bare replays
    srv.record(True)
    await harness(srv.base_url, tmp / "warm", rounds, "full")
    plan = stages(srv.requests())
    srv.record(False)
    rows = []
    one_rate = one_bare = None
    for n in sizes:
        try:
            row = await sweep(srv, n, rounds, tmp / f"sweep-{n}", WORKERS)
        except Exception as exc:  # record it and go on: the other sizes still tell
            rows.append({"sessions": n, "error": f"{type(exc).__name__}: {exc}"})
            print(f"  scaling: {n} sessions failed: {exc}", flush=True)
            continue
        one_rate = one_rate or row["sessions_per_s"]
        row["ideal_sessions_per_s"] = round(n * one_rate, 3)
        row["efficiency"] = round(row["sessions_per_s"] / (n * one_rate), 3)
        if row["workers"] > 1:  # the same sweep in one process: for comparison, and memory
            alone = await sweep(srv, n, rounds, tmp / f"alone-{n}", 1)
            row["one_process_efficiency"] = round(alone["sessions_per_s"] / (n * one_rate), 3)
            row["rss_growth_mb"] = alone["rss_growth_mb"]
            row["mb_per_session"] = alone["mb_per_session"]
        try:
            b_wall = await bare_many(srv, n, plan)
            one_bare = one_bare or n / b_wall
            row["bare_wall_s"] = round(b_wall, 3)
            row["bare_efficiency"] = round((n / b_wall) / (n * one_bare), 3)
            if row["workers"] > 1:
                spread = await bare_spread(srv, n, plan, row["workers"])
                row["bare_workers_efficiency"] = round((n / spread) / (n * one_bare), 3)
        except Exception as exc:
            row["bare_error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
        print(f"  scaling: {row}", flush=True)
    return {"rounds": rounds, "latency_s": LATENCY, "rows": rows}


def run(quick: bool, sizes: list[int] | None = None, rounds: int = 3) -> dict[str, Any]:
    sizes = sizes or ([1, 10, 100] if quick else [1, 10, 100, 500])
    sizes = [1, *(n for n in sizes if n != 1)]  # the one-session rate comes first
    with server_process(LATENCY) as srv, tempfile.TemporaryDirectory() as tmp:
        out = asyncio.run(measure(srv, sizes, rounds, Path(tmp)))
    at100 = next((r for r in out["rows"] if r["sessions"] == 100 and "efficiency" in r), None)
    out["goals"] = {
        "efficiency@100>=0.9": None if at100 is None else at100["efficiency"] >= GOAL_EFFICIENCY
    }
    return out


if __name__ == "__main__":
    import json
    import sys

    ns = [int(x) for x in sys.argv[1:]] or [1, 10]
    print(json.dumps(run(quick=True, sizes=ns), indent=2))
