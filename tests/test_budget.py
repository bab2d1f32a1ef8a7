"""Budgets: stopping at a call, token or cost limit is a clean, recorded outcome."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from conftest import events_of, experiment

from majlis.compare import run_sweep
from majlis.errors import BudgetExceeded
from majlis.model import (
    Budget,
    LoopbackServer,
    Meter,
    ModelConfig,
    Price,
    PriceTable,
    SharedMeter,
    Spending,
    Usage,
    scripted_responder,
)
from majlis.run import RunOptions, run_session


@pytest.mark.parametrize(
    ("budget", "spent", "stops"),
    [
        (Budget(max_calls=2), [(10, 1)] * 2, True),
        (Budget(max_calls=3), [(10, 1)] * 2, False),
        (Budget(max_tokens=100), [(60, 40)], True),
        (Budget(max_tokens=101), [(60, 40)], False),
        (Budget(max_cost=0.01), [(10_000, 0)], True),  # 10k tokens at $1/M = $0.01
        (Budget(max_cost=0.02), [(10_000, 0)], False),
        (Budget(), [(10**9, 10**9)] * 50, False),  # no limits set
    ],
)
@pytest.mark.parametrize("kind", [Meter, SharedMeter])
def test_meter(budget: Budget, spent: list[tuple[int, int]], stops: bool, kind: type) -> None:
    meter = kind(budget, PriceTable(prices={"m": Price(input=1.0, output=2.0)}))
    for p, c in spent:
        meter.check()
        meter.charge("m", Usage(prompt_tokens=p, completion_tokens=c))
    if stops:
        with pytest.raises(BudgetExceeded):
            meter.check()
    else:
        meter.check()


async def test_session_stops_cleanly_at_its_call_budget(home: Path, tmp_path: Path) -> None:
    result = await run_session(
        RunOptions(
            model=ModelConfig(model="scripted"),
            home=home,
            runs_root=tmp_path,
            spending=Spending(Budget(max_calls=15)),
        )
    )
    o = result.outcome
    assert o.stopped and "15 model calls" in o.stopped
    assert result.manifest.status == "complete"
    assert o.calls <= 15 and o.rounds_used < 6
    events = events_of(result)
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "outcome" and events[-1]["content"]["stopped"] == o.stopped


@pytest.mark.parametrize("workers", [1, 2])
async def test_sweep_budget_caps_the_whole_sweep(home: Path, tmp_path: Path, workers: int) -> None:
    # with two worker processes, one session runs in each: the budget is still one budget
    with LoopbackServer(scripted_responder) as srv:
        exp = experiment(
            srv.base_url,
            ["baseline"],
            name="capped",
            seeds=4,
            rounds=2,
            concurrency=workers,
            workers=workers,
            model_name="s",
            sweep_budget={"max_calls": 40},
        )
        result = await run_sweep(exp, tmp_path / "sweep", home, cache_file=None)
        assert srv.calls <= 40 + 6 * workers, "at most a step's calls per session past it"
    outcomes = [
        json.loads((tmp_path / "sweep" / "runs" / r / "outcome.json").read_text())
        for r in result.done
    ]
    assert len(outcomes) == 4, "every session ends with a recorded outcome"
    stopped = [o for o in outcomes if o["stopped"] and "sweep budget" in o["stopped"]]
    assert len(stopped) >= 2 and len(outcomes) - len(stopped) >= 1


def _charge_many(meter: SharedMeter, n: int) -> None:
    for _ in range(n):
        meter.charge("m", Usage(prompt_tokens=3, completion_tokens=1))


def test_a_shared_meter_counts_every_process_charges() -> None:
    """Four processes charging at once: no charge lost to a race."""
    mp = multiprocessing.get_context("fork")
    meter = SharedMeter(
        Budget(max_calls=10**6), PriceTable(prices={"m": Price(input=1, output=1)}), mp=mp
    )
    procs = [mp.Process(target=_charge_many, args=(meter, 2000)) for _ in range(4)]
    for proc in procs:
        proc.start()
    _charge_many(meter, 2000)
    for proc in procs:
        proc.join()
    assert (meter.calls, meter.tokens) == (10_000, 40_000)
    assert meter.cost == pytest.approx(40_000 / 1_000_000)
