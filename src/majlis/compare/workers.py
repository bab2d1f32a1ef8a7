"""Who runs a sweep's sessions, and how many processes share them.

A sweep's sessions run side by side in one process (`_Job`), or are dealt out to worker
processes that each run a share as a one-process sweep would and report through a pipe.
Also here: the result a sweep returns, and the status of one session's folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import tracing
from ..model import (
    CacheStats,
    EndpointLimits,
    Meter,
    ModelConfig,
    ResponseCache,
    SharedMeter,
    Spending,
    error_line,
    portion,
)
from ..run import HUMAN, RunDir, RunOptions, resume_session, run_session
from ..scenario import BASELINE
from .experiment import Cell, Experiment


@dataclass
class SweepResult:
    folder: Path
    done: list[str]
    skipped: list[str]
    failed: dict[str, str]
    cache: CacheStats | None  # hits and misses, when a cache was used


Progress = Callable[[str, dict[str, Any]], None]  # (what happened, details)


def session_status(path: Path) -> str:
    """complete, resumable (has a checkpoint), or new."""
    manifest = path / "manifest.json"
    if not manifest.exists():
        return "new"
    try:
        status = json.loads(manifest.read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError):
        return "new"
    if status == "complete":
        return "complete"
    return "resumable" if RunDir(path).checkpoint_path.exists() else "new"


def worker_count(exp: Experiment, sessions: int, configs: list[ModelConfig]) -> int:
    """How many processes to use: as asked, but never more than there are sessions to run,
    sessions allowed at once, or calls and requests per minute allowed on any one endpoint
    (each worker gets its portion of every limit, and a portion must not be zero).
    `configs` are the sweep's resolved models (`sweep_configs`)."""
    if any(cfg.model == HUMAN for cfg in configs):
        return 1  # a person answers at this terminal, which a worker process does not have
    caps = [exp.workers, max(sessions, 1), exp.sessions_at_once]
    if exp.adaptive is None:  # under `auto` the models' concurrency is not used
        caps += [cfg.concurrency for cfg in configs]
    caps += [x for x in (exp.rpm,) if x is not None]
    return min(caps)


async def run_cells(
    exp: Experiment,
    configs: list[ModelConfig],
    runs: Path,
    home: Path,
    cache_file: Path | None,
    todo: list[Cell],
    result: SweepResult,
    progress: Progress | None,
) -> None:
    """Run the sessions of `todo` in this process, or deal them out to worker processes
    (see `_in_workers`) when the experiment asks for more than one and there is work for them.
    `configs` are the sweep's resolved models (`sweep_configs`)."""
    notify = progress or (lambda _what, _info: None)
    prices = exp.price_table()
    k = worker_count(exp, len(todo), configs)
    whole = (
        Meter(exp.sweep_budget, prices, name="sweep")
        if k == 1
        else SharedMeter(exp.sweep_budget, prices, name="sweep", mp=_mp())
    )
    job = _Job(exp, configs, runs, home, cache_file, (0, k), whole, tracing.carrier())
    if k == 1:
        await job.run(todo, result, notify)
    else:
        await _in_workers(job, todo, result, progress)


def _mp() -> Any:
    """Worker processes are forked on Linux: they start in milliseconds, with everything
    already imported. Elsewhere they are spawned (macOS's system libraries are not safe to
    use in a forked child), and each imports majlis afresh, a second or two."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)


@dataclass
class _Job:
    """Sessions run side by side in one process: all of a sweep's, or one worker's share."""

    exp: Experiment
    configs: list[ModelConfig]  # every party's model, resolved (`sweep_configs`)
    runs: Path
    home: Path
    cache_file: Path | None
    part: tuple[int, int]  # (i, k): worker i of k, with its portion of every limit
    whole: Meter  # the sweep's budget, shared by every session (and every worker)
    traced: dict[str, str] = field(default_factory=dict)  # the sweep's span, for a worker

    async def run(self, todo: list[Cell], result: SweepResult, notify: Progress) -> None:
        exp = self.exp
        cache = ResponseCache(self.cache_file) if self.cache_file else None
        limits = EndpointLimits(
            exp.rpm,
            exp.tpm,
            self.part,
            auto=exp.adaptive,
            on_change=lambda key, n: notify("limit", {"endpoint": key, "limit": n}),
        )
        limits.declare(self.configs)  # before any session makes a call
        shared = [self.whole] if exp.sweep_budget.is_set() else []
        spending = Spending(exp.budget, exp.price_table(), shared)
        gate = asyncio.Semaphore(portion(exp.sessions_at_once, self.part) or 1)

        async def one(cell: Cell) -> None:
            path = self.runs / cell.run_id
            async with gate:
                notify("started", {"run_id": cell.run_id})

                def sink(event: dict[str, Any]) -> None:
                    if event.get("usage"):
                        notify(
                            "usage",
                            {"run_id": cell.run_id, "party": event["speaker"], **event["usage"]},
                        )

                try:
                    if session_status(path) == "resumable":
                        await resume_session(
                            path, sink=sink, cache=cache, limits=limits, spending=spending
                        )
                    else:
                        if path.exists():
                            shutil.rmtree(path)  # made but never started: nothing worth keeping
                        await run_session(self.options(cell, cache, limits, spending), sink=sink)
                except Exception as exc:  # one session's failure is recorded; the sweep goes on
                    result.failed[cell.run_id] = why = error_line(exc)
                    notify("failed", {"run_id": cell.run_id, "error": why})
                    return
                result.done.append(cell.run_id)
                notify("finished", {"run_id": cell.run_id})

        try:
            await asyncio.gather(*(one(c) for c in todo))
        finally:
            await limits.aclose()  # the connection pools the sessions shared
            if cache is not None:
                assert result.cache is not None
                result.cache.hits += cache.stats.hits
                result.cache.misses += cache.stats.misses
                cache.close()

    def options(
        self, cell: Cell, cache: ResponseCache | None, limits: EndpointLimits, spending: Spending
    ) -> RunOptions:
        exp = self.exp
        return RunOptions(
            scenario=exp.scenario,
            rounds=exp.rounds,
            seed=cell.seed,
            model=cell.setup.default,
            party_models=cell.setup.parties,
            variant=None if cell.variant == BASELINE else cell.variant,
            runs_root=self.runs,
            run_id=cell.run_id,
            home=self.home,
            command=["majlis", "sweep", exp.name],
            cache=cache,
            limits=limits,
            spending=spending,
            context=exp.context,
        )


async def _in_workers(
    job: _Job, todo: list[Cell], result: SweepResult, progress: Progress | None
) -> None:
    """Deal the sessions out to worker processes and gather what they report.

    A sweep of many sessions against a fast endpoint is CPU-bound: one process's event loop
    spends more time building prompts, checkpointing and parsing than waiting. Each worker
    runs its share of the sessions as a one-process sweep does, with its portion of the
    concurrency and of every per-endpoint limit; the sweep's budget is one meter in shared
    memory; the response cache is one SQLite file, which each worker opens for itself.
    Each worker reports its progress and its result through a pipe.
    """
    k = job.part[1]  # the job as a whole: worker i runs it as part (i, k)
    mp = _mp()
    loop = asyncio.get_running_loop()
    workers: list[tuple[Any, Any, list[Cell], asyncio.Future[None]]] = []
    notify = progress or (lambda _what, _info: None)
    try:
        for i in range(k):
            share = todo[i::k]
            reader, writer = mp.Pipe(duplex=False)
            proc = mp.Process(
                target=_worker,
                args=(replace(job, part=(i, k)), share, writer, progress is not None),
                name=f"majlis-sweep-{i}",
                daemon=True,
            )
            proc.start()
            writer.close()  # the worker holds the only writing end: EOF when it is gone
            ended: asyncio.Future[None] = loop.create_future()
            loop.add_reader(reader.fileno(), _drain, reader, ended, result, notify, i)
            workers.append((proc, reader, share, ended))
        await asyncio.gather(*(w[3] for w in workers))
    finally:
        for _proc, reader, _share, _ended in workers:
            loop.remove_reader(reader.fileno())
            reader.close()
        for proc, *_ in workers:  # interrupted, a worker gets a moment to stop its sessions
            await asyncio.to_thread(proc.join, 5)
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGINT)
                await asyncio.to_thread(proc.join, 25)
            if proc.is_alive():
                proc.kill()
    reported = {*result.done, *result.failed}
    for proc, _reader, share, _ended in workers:
        for cell in share:
            if cell.run_id not in reported:
                error = f"its worker process exited (code {proc.exitcode}) before it finished"
                result.failed[cell.run_id] = error
                notify("failed", {"run_id": cell.run_id, "error": error})


def _drain(
    reader: Any, ended: asyncio.Future[None], result: SweepResult, notify: Progress, worker: int
) -> None:
    """Read what worker number `worker` has sent: progress events, then its result."""
    try:
        while reader.poll():
            kind, what, info = reader.recv()
            if kind == "event":
                notify(what, {**info, "worker": worker})
            elif kind == "result":
                result.done += info["done"]
                result.failed |= info["failed"]
                if result.cache is not None:
                    result.cache.hits += info["hits"]
                    result.cache.misses += info["misses"]
    except (EOFError, OSError):
        if not ended.done():
            asyncio.get_running_loop().remove_reader(reader.fileno())
            ended.set_result(None)


def _worker(job: _Job, todo: list[Cell], out: Any, report: bool) -> None:
    """A worker process: run its share of the sessions, then send the result."""
    # a forked worker inherits its parent's signal set-up; it needs a fresh one for its loop
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.set_wakeup_fd(-1)
    # A worker holds dozens of sessions' objects on top of every library's: at the default
    # thresholds, the collector's passes over them took a sixth of its CPU. What is loaded
    # now is kept out of those passes, and young objects are collected less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
    result = SweepResult(job.runs.parent, [], [], {}, CacheStats() if job.cache_file else None)

    def send(message: tuple[str, str | None, dict[str, Any]]) -> None:
        with contextlib.suppress(OSError):  # the parent has stopped listening: nothing to do
            out.send(message)

    def notify(what: str, info: dict[str, Any]) -> None:
        if report:
            send(("event", what, info))

    try:
        with tracing.continued(job.traced):  # its sessions' spans go under the sweep's
            asyncio.run(job.run(todo, result, notify))
    except KeyboardInterrupt:
        pass  # stopped with its sessions checkpointed; the parent says so, once
    finally:
        tracing.flush()  # a forked worker ends without exit handlers: its spans go now
        cache = result.cache or CacheStats()
        summary = {"done": result.done, "failed": result.failed}
        send(("result", None, {**summary, "hits": cache.hits, "misses": cache.misses}))
        out.close()
