"""Sweeps: variants x model set-ups x seeds, run side by side, resumable, cached.

Each session is its own graph thread with its own checkpoint; sessions share one response
cache and one set of per-endpoint limits. Running the same experiment again skips the
finished sessions and resumes the interrupted ones.
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserError
from ..files import parse_file, write_json_atomic
from ..model.budget import Budget, Meter, Price, PriceTable, SharedMeter, Spending
from ..model.cache import CacheStats, ResponseCache
from ..model.client import EndpointLimits, ModelConfig, error_line, make_client, portion
from ..run.folder import RunDir
from ..run.human import HUMAN
from ..run.session import RunOptions, party_configs, resume_session, run_session
from ..scenario.load import data_root, load_scenario
from ..scenario.variants import BASELINE, load_variant

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=60)]


class ModelSetup(BaseModel):
    """One entry of the models axis: a default model and per-party overrides."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    default: ModelConfig = ModelConfig()
    parties: dict[str, ModelConfig] = {}


class Experiment(BaseModel):
    """An experiment file: what to run, how many times, how fast."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    scenario: str = "cornered-in-iraq"
    variants: list[Name] = Field([BASELINE], min_length=1)
    seeds: Annotated[int, Field(ge=1)] | Annotated[list[int], Field(min_length=1)] = Field(
        3, description="A count (seeds 1..N) or an explicit, non-empty list."
    )
    models: list[ModelSetup] = Field(
        default_factory=lambda: [ModelSetup(name="embedded")], min_length=1
    )
    rounds: int | None = Field(None, ge=1)
    context: str = Field("full", description="Context policy: full, or window:N.")
    concurrency: int = Field(4, ge=1, description="Sessions in flight at once.")
    workers: int = Field(
        1,
        ge=1,
        description="Processes the sessions are spread over. One is enough unless the sweep "
        "is CPU-bound: many sessions against a fast endpoint.",
    )
    rpm: int | None = Field(None, ge=1, description="Requests per minute, per endpoint.")
    tpm: int | None = Field(None, ge=1, description="Tokens per minute, per endpoint.")
    judge: ModelConfig | None = None
    prices: dict[str, Price] = {}
    budget: Budget = Field(default_factory=Budget, description="Limits for each session.")
    sweep_budget: Budget = Field(default_factory=Budget, description="Limits for the whole sweep.")

    def price_table(self) -> PriceTable:
        return PriceTable(prices=self.prices)

    def seed_list(self) -> list[int]:
        return list(range(1, self.seeds + 1)) if isinstance(self.seeds, int) else list(self.seeds)


@dataclass(frozen=True)
class Cell:
    variant: str
    setup: ModelSetup
    seed: int

    @property
    def run_id(self) -> str:
        return f"{self.variant}--{self.setup.name}--s{self.seed}"


def cells(exp: Experiment) -> list[Cell]:
    return [Cell(v, m, s) for v in exp.variants for m in exp.models for s in exp.seed_list()]


def load_experiment(path: Path, home: Path) -> Experiment:
    exp = parse_file(path, Experiment)
    load_scenario(exp.scenario, home)  # refuse a bad scenario before anything runs
    for v in exp.variants:
        load_variant(home, v)
    for m in exp.models:
        scenario = load_scenario(exp.scenario, home).scenario
        unknown = set(m.parties) - set(scenario.parties)
        if unknown:
            raise UserError(
                f"{path}: models.{m.name}.parties: unknown party {sorted(unknown)[0]!r}"
            )
    if len({c.run_id for c in cells(exp)}) != len(cells(exp)):
        raise UserError(f"{path}: variants, model names and seeds must be unique")
    sweep_configs(exp, home)  # a variant's bad model override is refused now, not per session
    return exp


def sweep_configs(exp: Experiment, home: Path) -> list[ModelConfig]:
    """Every party's model in every variant and model set-up, resolved as its sessions will
    resolve it (a variant's overrides included). The per-endpoint limits, the worker count
    and the pre-flight all go by these, not by the experiment file's models alone."""
    parties = list(load_scenario(exp.scenario, home).scenario.parties)
    found: list[ModelConfig] = []
    for v in exp.variants:
        for m in exp.models:
            opts = RunOptions(
                model=m.default,
                party_models=m.parties,
                variant=None if v == BASELINE else v,
                home=home,
            )
            found += party_configs(opts, parties, home).values()
    return found


@dataclass
class SweepResult:
    folder: Path
    done: list[str]
    skipped: list[str]
    failed: dict[str, str]
    cache: CacheStats | None  # hits and misses, when a cache was used


Progress = Callable[[str, dict[str, Any]], None]  # (what happened, details)


async def run_sweep(
    exp: Experiment,
    folder: Path,
    home: Path | None = None,
    cache_file: Path | None = None,
    progress: Progress | None = None,
    check: bool = True,
) -> SweepResult:
    """Run every cell not yet complete; resume the interrupted ones.

    With a cache file, replies are replayed by request: rerunning a sweep elsewhere with the
    same file makes no model calls. None runs without a cache. With `exp.workers` above one,
    the sessions are dealt out to that many worker processes (see `_in_workers`).
    """
    home = data_root(home)
    configs = sweep_configs(exp, home)
    if check:
        await preflight(configs)
    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "experiment.json", exp.model_dump())
    notify = progress or (lambda _what, _info: None)
    result = SweepResult(folder, [], [], {}, CacheStats() if cache_file else None)
    todo = []
    for cell in cells(exp):
        if _status(runs / cell.run_id) == "complete":
            result.skipped.append(cell.run_id)
            notify("skipped", {"run_id": cell.run_id})
        else:
            todo.append(cell)
    prices = exp.price_table()
    k = worker_count(exp, len(todo), configs)
    whole = (
        Meter(exp.sweep_budget, prices, name="sweep")
        if k == 1
        else SharedMeter(exp.sweep_budget, prices, name="sweep", mp=_mp())
    )
    job = _Job(exp, configs, runs, home, cache_file, (0, k), whole)
    if k == 1:
        await job.run(todo, result, notify)
    else:
        await _in_workers(job, todo, result, progress)
    write_json_atomic(
        folder / "sweep.json",
        {
            "experiment": exp.name,
            "sessions": {c.run_id: _status(runs / c.run_id) for c in cells(exp)},
            "failed": result.failed,
            "cache": None
            if result.cache is None
            else {"hits": result.cache.hits, "misses": result.cache.misses},
        },
    )
    return result


def worker_count(exp: Experiment, sessions: int, configs: list[ModelConfig]) -> int:
    """How many processes to use: as asked, but never more than there are sessions to run,
    sessions allowed at once, or calls and requests per minute allowed on any one endpoint
    (each worker gets its portion of every limit, and a portion must not be zero).
    `configs` are the sweep's resolved models (`sweep_configs`)."""
    if any(cfg.model == HUMAN for cfg in configs):
        return 1  # a person answers at this terminal, which a worker process does not have
    caps = [exp.workers, max(sessions, 1), exp.concurrency]
    caps += [cfg.concurrency for cfg in configs]
    caps += [x for x in (exp.rpm,) if x is not None]
    return min(caps)


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

    async def run(self, todo: list[Cell], result: SweepResult, notify: Progress) -> None:
        exp = self.exp
        cache = ResponseCache(self.cache_file) if self.cache_file else None
        limits = EndpointLimits(exp.rpm, exp.tpm, self.part)
        limits.declare(self.configs)  # before any session makes a call
        shared = [self.whole] if exp.sweep_budget.is_set() else []
        spending = Spending(exp.budget, exp.price_table(), shared)
        gate = asyncio.Semaphore(portion(exp.concurrency, self.part) or 1)

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
                    if _status(path) == "resumable":
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
        asyncio.run(job.run(todo, result, notify))
    except KeyboardInterrupt:
        pass  # stopped with its sessions checkpointed; the parent says so, once
    finally:
        cache = result.cache or CacheStats()
        summary = {"done": result.done, "failed": result.failed}
        send(("result", None, {**summary, "hits": cache.hits, "misses": cache.misses}))
        out.close()


async def preflight(configs: list[ModelConfig]) -> None:
    """Reach every distinct endpoint once before a folder exists: a dead one is the user's error.
    `configs` are the sweep's resolved models (`sweep_configs`), so a variant that sends a
    party to another endpoint gets that endpoint checked too."""
    seen: set[tuple[str | None, str, str | None]] = set()
    for cfg in configs:
        key = (cfg.base_url, cfg.model, cfg.api_key_env)
        if key in seen or not cfg.reaches_endpoint:
            continue
        seen.add(key)
        client = make_client(cfg)
        try:
            await client.backend.check()
        finally:
            await client.backend.aclose()


def _status(path: Path) -> str:
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
