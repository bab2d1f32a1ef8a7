"""Sweeps: variants x model set-ups x seeds, run side by side, resumable, cached.

Each session is its own graph thread with its own checkpoint; sessions share one response
cache and one set of per-endpoint limits. Running the same experiment again skips the
finished sessions and resumes the interrupted ones.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from .budget import Budget, Meter, Price, PriceTable, Spending
from .cache import ResponseCache
from .client import EndpointLimits, ModelConfig, make_client
from .errors import UserError
from .recorder import RunDir, write_json_atomic
from .scenario import data_root, load_scenario, parse_file
from .session import RunOptions, resume_session, run_session
from .variants import BASELINE, load_variant

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
    return exp


@dataclass
class SweepResult:
    folder: Path
    done: list[str]
    skipped: list[str]
    failed: dict[str, str]
    cache: ResponseCache | None


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
    same file makes no model calls. None runs without a cache.
    """
    home = data_root(home)
    if check:
        await preflight(exp)
    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "experiment.json", exp.model_dump())
    cache = ResponseCache(cache_file) if cache_file else None
    limits = EndpointLimits(exp.rpm, exp.tpm)
    prices = exp.price_table()
    whole = [Meter(exp.sweep_budget, prices, name="sweep")] if exp.sweep_budget.is_set() else []
    spending = Spending(exp.budget, prices, whole)
    gate = asyncio.Semaphore(exp.concurrency)
    result = SweepResult(folder, [], [], {}, cache)
    notify = progress or (lambda _what, _info: None)

    async def one(cell: Cell) -> None:
        path = runs / cell.run_id
        status = _status(path)
        if status == "complete":
            result.skipped.append(cell.run_id)
            notify("skipped", {"run_id": cell.run_id})
            return
        async with gate:
            notify("started", {"run_id": cell.run_id})

            def sink(event: dict[str, Any]) -> None:
                if event.get("usage"):
                    notify(
                        "usage",
                        {"run_id": cell.run_id, "party": event["speaker"], **event["usage"]},
                    )

            try:
                if status == "resumable":
                    await resume_session(
                        path, sink=sink, cache=cache, limits=limits, spending=spending
                    )
                else:
                    if path.exists():
                        shutil.rmtree(path)  # made but never started: nothing worth keeping
                    await run_session(
                        RunOptions(
                            scenario=exp.scenario,
                            rounds=exp.rounds,
                            seed=cell.seed,
                            model=cell.setup.default,
                            party_models=cell.setup.parties,
                            variant=None if cell.variant == BASELINE else cell.variant,
                            runs_root=runs,
                            run_id=cell.run_id,
                            home=home,
                            command=["majlis", "sweep", exp.name],
                            cache=cache,
                            limits=limits,
                            spending=spending,
                            context=exp.context,
                        ),
                        sink=sink,
                    )
            except Exception as exc:  # one session's failure is recorded; the sweep goes on
                result.failed[cell.run_id] = f"{type(exc).__name__}: {exc}"
                notify("failed", {"run_id": cell.run_id, "error": str(exc)})
                return
            result.done.append(cell.run_id)
            notify("finished", {"run_id": cell.run_id})

    try:
        await asyncio.gather(*(one(c) for c in cells(exp)))
    finally:
        await limits.aclose()  # the connection pools the sessions shared
    write_json_atomic(
        folder / "sweep.json",
        {
            "experiment": exp.name,
            "sessions": {c.run_id: _status(runs / c.run_id) for c in cells(exp)},
            "failed": result.failed,
            "cache": None
            if cache is None
            else {"hits": cache.stats.hits, "misses": cache.stats.misses},
        },
    )
    return result


async def preflight(exp: Experiment) -> None:
    """Reach every distinct endpoint once before a folder exists: a dead one is the user's error."""
    seen: set[tuple[str | None, str, str | None]] = set()
    for setup in exp.models:
        for cfg in [setup.default, *setup.parties.values()]:
            key = (cfg.base_url, cfg.model, cfg.api_key_env)
            if key in seen or (
                cfg.base_url is None and (cfg.is_scripted or cfg.model in ("embedded", "human"))
            ):
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
