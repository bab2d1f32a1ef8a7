"""Sweeps: variants x model set-ups x seeds, run side by side, resumable, cached.

Each session is its own graph thread with its own checkpoint; sessions share one response
cache and one set of per-endpoint limits. Running the same experiment again skips the
finished sessions and resumes the interrupted ones. The experiment file is read in
`experiment.py`; the sessions are run, in this process or in workers, by `workers.py`.
"""

from __future__ import annotations

from pathlib import Path

from .. import tracing
from ..files import write_json_atomic
from ..model import CacheStats, ModelConfig, make_client
from ..scenario import data_root, load_scenario
from .experiment import Experiment, cells, seating_design, sweep_configs
from .workers import Progress, SweepResult, run_cells, session_status


async def run_sweep(
    exp: Experiment,
    folder: Path,
    home: Path | None = None,
    cache_file: Path | None = None,
    progress: Progress | None = None,
    check: bool = True,
    configs: list[ModelConfig] | None = None,
) -> SweepResult:
    """Run every cell not yet complete; resume the interrupted ones.

    With a cache file, replies are replayed by request: rerunning a sweep elsewhere with the
    same file makes no model calls. None runs without a cache. With `exp.workers` above one,
    the sessions are dealt out to that many worker processes (see `workers.run_cells`).
    `configs`: the sweep's models as `sweep_configs` resolved them, if the caller has them
    already (the CLI does, for its pre-flight); else they are resolved here.
    """
    home = data_root(home)
    configs = sweep_configs(exp, home) if configs is None else configs
    if check:
        await preflight(configs)
    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "experiment.json", exp.model_dump())
    notify = progress or (lambda _what, _info: None)
    result = SweepResult(folder, [], [], {}, CacheStats() if cache_file else None)
    todo = []
    every = cells(exp, home)
    for cell in every:
        if session_status(runs / cell.run_id) == "complete":
            result.skipped.append(cell.run_id)
            notify("skipped", {"run_id": cell.run_id})
        else:
            todo.append(cell)
    attrs = {"majlis.experiment": exp.name, "majlis.sessions": len(todo)}
    with tracing.span("majlis.sweep", {**attrs, "majlis.skipped": len(result.skipped)}) as span:
        await run_cells(exp, configs, runs, home, cache_file, todo, result, progress)
        if span is not None:
            span.set_attributes(
                {"majlis.done": len(result.done), "majlis.failed": len(result.failed)}
            )
    write_json_atomic(
        folder / "sweep.json",
        {
            "experiment": exp.name,
            "sessions": {c.run_id: session_status(runs / c.run_id) for c in every},
            "cross_play": cross_play_design(exp, home),
            "failed": result.failed,
            "cache": None
            if result.cache is None
            else {"hits": result.cache.hits, "misses": result.cache.misses},
        },
    )
    return result


def cross_play_design(exp: Experiment, home: Path) -> dict[str, object] | None:
    """What a population sweep plays, as sweep.json records it: the seatings, how they were
    chosen, the seats in order. None for a sweep of model set-ups."""
    if exp.population is None:
        return None
    parties = list(load_scenario(exp.scenario, home).scenario.parties)
    found = seating_design(exp, parties)
    summary = found.summary(len(exp.seed_list()), len(exp.variants))
    return {"seats": parties, **found.record(), "summary": summary}


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
