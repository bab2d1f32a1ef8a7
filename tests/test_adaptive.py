"""Adaptive concurrency (`concurrency: auto`): the AIMD rule event by event, the resizable
limit it drives, the token-bucket endpoint that refuses with 429s, and a sweep whose limit
falls while the endpoint refuses and rises again once it stops, with no session lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import experiment
from typer.testing import CliRunner

from majlis.cli import app
from majlis.cli.experiments import limit_text
from majlis.compare import run_sweep, sweep_configs, worker_count
from majlis.model import (
    AdaptiveLimit,
    Aimd,
    Completion,
    EndpointLimits,
    FaultPlan,
    LoopbackServer,
    ModelConfig,
    TokenBucket,
    make_client,
    scripted_responder,
)
from majlis.model.openai_backend import _overloaded
from majlis.protocol import Vote, strict_schema

# (event, argument, limit after it): "send" takes the requests in flight with it (itself
# included) and checks the ticket it is given; "ok" is a clean reply; "429" a refusal of
# the request with that ticket
TABLE: list[tuple[str, int | None, int]] = [
    ("send", 1, 4),  # ticket 0
    ("send", 2, 4),  # 1: half the limit in use, so this window may grow it
    ("send", 3, 4),  # 2
    ("ok", None, 4),
    ("ok", None, 4),
    ("ok", None, 4),
    ("send", 1, 4),  # 3
    ("ok", None, 5),  # a window of four clean replies: one more
    ("send", 1, 5),  # 4
    ("send", 2, 5),  # 5
    ("send", 3, 5),  # 6
    ("429", 4, 2),  # halved
    ("429", 5, 2),  # sent before the cut: the same burst, not another halving
    ("429", 6, 2),
    ("send", 1, 2),  # 7
    ("429", 7, 1),  # sent after the cut: a new refusal, halved again
    ("send", 1, 1),  # 8
    ("429", 8, 1),  # never below one
    ("send", 1, 1),  # 9
    ("ok", None, 2),  # a window of one
    ("send", 1, 2),  # 10
    ("ok", None, 2),
    ("ok", None, 3),  # (a reply to a request sent before the cut counts as clean too)
    ("send", 1, 3),  # 11: only one of three in use, not half
    ("ok", None, 3),
    ("ok", None, 3),
    ("ok", None, 3),  # a window in which the limit was never used does not grow it
    ("send", 2, 3),  # 12
    ("ok", None, 3),
    ("ok", None, 3),
    ("ok", None, 4),
]


def test_the_rule_event_by_event() -> None:
    rule = Aimd(start=4, ceiling=64, cut=0.5)  # halving, as TCP Reno does, to read easily
    ticket = 0
    for step, (event, arg, limit) in enumerate(TABLE):
        if event == "send":
            assert arg is not None
            assert rule.send(arg) == ticket, step
            ticket += 1
        elif event == "ok":
            rule.replied()
        else:
            rule.refused(arg)
        assert rule.limit == limit, f"step {step}: {event} {arg}"


def test_by_default_a_refusal_keeps_three_quarters() -> None:
    rule = Aimd(start=8)
    cuts = []
    for _ in range(6):
        rule.refused(rule.send(1))
        cuts.append(rule.limit)
    assert cuts == [6, 4, 3, 2, 1, 1]


def test_the_rule_stops_at_its_ceiling_and_starts_within_it() -> None:
    rule = Aimd(start=4, ceiling=6)
    for _ in range(100):
        rule.send(rule.limit)
        rule.replied()
    assert rule.limit == 6
    assert Aimd(start=4, ceiling=2).limit == 2
    assert Aimd(start=0, ceiling=8).limit == 1


async def test_the_limit_lets_waiters_in_as_it_grows_and_holds_them_as_it_shrinks() -> None:
    changes: list[int] = []
    limit = AdaptiveLimit(Aimd(start=2, ceiling=8), changes.append)
    inside = 0
    go = asyncio.Event()

    async def one() -> int:
        nonlocal inside
        async with limit as ticket:
            inside += 1
            await go.wait()
            inside -= 1
        return ticket

    tasks = [asyncio.create_task(one()) for _ in range(6)]
    await asyncio.sleep(0.01)
    assert inside == 2 and limit.busy == 2
    limit.replied()
    limit.replied()  # a full window, with the limit in use: three
    await asyncio.sleep(0.01)
    assert inside == 3 and changes == [3]
    limit.refused(0, None)  # two, but the three inside stay inside
    await asyncio.sleep(0.01)
    assert limit.limit == 2 and inside == 3 and changes == [3, 2]
    go.set()
    assert sorted(await asyncio.gather(*tasks)) == [0, 1, 2, 3, 4, 5]
    assert limit.busy == 0


async def test_a_named_wait_holds_every_new_request_back() -> None:
    limit = AdaptiveLimit(Aimd(start=4, ceiling=8))
    limit.refused(None, 0.3)
    t0 = time.monotonic()
    async with limit:
        waited = time.monotonic() - t0
    assert 0.25 <= waited < 1.0
    assert limit.limit == 3


async def test_a_waiter_cancelled_after_its_turn_came_passes_it_on() -> None:
    limit = AdaptiveLimit(Aimd(start=1, ceiling=1))
    await limit.__aenter__()
    first = asyncio.create_task(limit.__aenter__())
    second = asyncio.create_task(limit.__aenter__())
    await asyncio.sleep(0.01)
    await limit.__aexit__(None, None, None)  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.sleep(0.01)
    assert second.done() and limit.busy == 1
    with pytest.raises(asyncio.CancelledError):
        await first


def test_fixed_limits_hear_nothing_and_auto_ones_are_shared_by_workers() -> None:
    fixed = EndpointLimits()
    assert isinstance(fixed.get("x", 3), asyncio.Semaphore)
    fixed.refused("x", 0, 1.0)  # no limit to adapt: nothing happens
    assert fixed.limit_now("x") is None
    heard: list[tuple[str, int]] = []
    auto = EndpointLimits(auto=10, part=(1, 3), on_change=lambda k, n: heard.append((k, n)))
    slots = auto.get("x", 3)
    assert isinstance(slots, AdaptiveLimit)
    assert slots.rule.ceiling == 3 and heard == [("x", 1)]  # worker 1 of 3: 4 // 3 to start


# what each transport fault does to an adaptive limit: those that say the endpoint has too
# much (a refusal, no capacity, a slow upstream, an answer that never came) cut it; those
# that say something broke leave it
CUTS = {"429": True, "503": True, "hang": True, "500": False, "drop": False, "bad_json": False}


@pytest.mark.parametrize("kind", CUTS)
async def test_overload_cuts_the_limit_and_breakage_does_not(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("majlis.model.openai_backend._backoff", lambda n: 0.02)
    heard: list[int] = []
    limits = EndpointLimits(auto=16, on_change=lambda _key, limit: heard.append(limit))
    # a 429 that names no wait (retry-after: 0): the status alone must cut the limit
    plan = FaultPlan.at([1], kind, retry_after=0, hang=1.0)
    vote = '{"private_reasoning": "fine", "vote": "accept"}'
    msgs = [{"role": "system", "content": "vote"}, {"role": "user", "content": "vote now"}]
    with LoopbackServer(lambda _body: Completion(vote), fault=plan) as srv:
        config = ModelConfig(model="m", base_url=srv.base_url, timeout=0.4, max_retries=2)
        client = make_client(config, limits)
        try:
            answer = await client.ask(msgs, Vote, strict_schema(Vote))
        finally:
            await client.backend.aclose()
            plan.stop()
    assert plan.injected == [(1, kind)] and answer.value.vote == "accept"
    assert heard == ([4, 3] if CUTS[kind] else [4]), "four, cut to three quarters, or left be"


@pytest.mark.parametrize(
    ("fault", "cut"),
    [
        (("429", 429, None), True),
        (("503", 503, None), True),
        (("504", 504, None), True),
        (("500", 500, 2.0), True),  # a named wait says to slow down, whatever the status
        (("timeout", None, None), True),
        (("500", 500, None), False),
        (("502", 502, None), False),
        (("408", 408, None), False),
        (("connection", None, None), False),
        (("cut_json", None, None), False),
    ],
)
def test_which_faults_say_the_endpoint_has_too_much(
    fault: tuple[str, int | None, float | None], cut: bool
) -> None:
    assert _overloaded(*fault) is cut


async def test_the_bucket_refuses_past_its_rate_with_the_wait() -> None:
    bucket = TokenBucket(rate=10, burst=2)
    assert bucket.take(now=100.0) is None and bucket.take(now=100.0) is None
    assert bucket.take(now=100.0) == pytest.approx(0.1)
    assert bucket.take(now=100.05) == pytest.approx(0.05)
    assert bucket.take(now=100.2) is None  # refilled by then
    assert (bucket.admitted, bucket.refused) == (3, 2)
    with LoopbackServer(lambda _body: Completion("{}"), fault=TokenBucket(0.5)) as srv:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient() as client:
            url = f"{srv.base_url}/chat/completions"
            assert (await client.post(url, json=body)).status_code == 200
            refused = await client.post(url, json=body)
    assert refused.status_code == 429
    assert 1000 < int(refused.headers["retry-after-ms"]) <= 2000
    assert refused.headers["retry-after"] == "2"


class Watch:
    """The sweep's progress: the adaptive limit's moves, each with the endpoint's refusals
    so far; a second after the limit first falls to one, the endpoint's rate is raised so
    that the 429s stop."""

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket
        self.moves: list[tuple[int, int, bool]] = []  # (limit, refusals so far, raised)
        self.raised = False
        self.refused_when_raised = 0

    def __call__(self, what: str, info: dict[str, Any]) -> None:
        if what != "limit":
            return
        self.moves.append((info["limit"], self.bucket.refused, self.raised))
        if info["limit"] == 1 and len([m for m in self.moves if m[0] == 1]) == 1:
            asyncio.get_running_loop().call_later(1.0, self.raise_rate)

    def raise_rate(self) -> None:
        self.bucket.rate, self.bucket.burst = 1000.0, 100.0
        self.raised, self.refused_when_raised = True, self.bucket.refused


async def test_a_sweep_backs_off_under_429s_and_grows_again_once_they_stop(
    home: Path, tmp_path: Path
) -> None:
    bucket = TokenBucket(rate=3, burst=1)
    watch = Watch(bucket)
    with LoopbackServer(scripted_responder, latency=0.05, fault=bucket) as srv:
        exp = experiment(srv.base_url, seeds=4, rounds=2, concurrency="auto", max_concurrency=16)
        assert worker_count(exp, 4, sweep_configs(exp, home)) == 1
        result = await run_sweep(exp, tmp_path / "sweep", home, progress=watch)
    assert not result.failed and len(result.done) == 4
    limits = [limit for limit, _, _ in watch.moves]
    assert limits[:4] == [4, 3, 2, 1], "it starts at four and falls under the first 429s"
    refused = [(limit, n) for limit, n, raised in watch.moves if not raised]
    assert max(limit for limit, _ in refused[3:]) <= 2, "and stays low while they go on"
    assert refused[-1][1] > refused[3][1] + 1, "as they do"
    after = [limit for limit, _, raised in watch.moves if raised]
    assert after and max(after) >= 8, "once the refusals stop it rises past its start"
    assert bucket.refused - watch.refused_when_raised <= 1, "(the refusals did stop)"


def test_the_sweep_command_takes_auto(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    with LoopbackServer(scripted_responder) as srv:
        spec = tmp_path / "exp.yaml"
        experiment(srv.base_url, path=spec, name="cli", seeds=1, rounds=1)
        args = ["sweep", str(spec), "--out", str(tmp_path / "sw"), "--no-cache"]
        res = runner.invoke(app, [*args, "--home", str(home), "--concurrency", "auto"])
        assert res.exit_code == 0, res.output
        assert "auto: " in res.output and "calls at once" in res.output
        bad = runner.invoke(app, [*args, "--home", str(home), "--concurrency", "lots"])
    assert bad.exit_code == 2
    assert "--concurrency must be a whole number of at least 1 or auto" in bad.output


def test_the_progress_line_adds_up_each_workers_limit() -> None:
    assert limit_text({}) == ""
    assert limit_text({("a", 0): 3, ("a", 1): 4}) == "auto: 7 calls at once"
    assert limit_text({("a", 0): 3, ("b", 0): 2}) == "auto: 3 at a, 2 at b"


def test_under_auto_workers_are_capped_by_the_ceiling_not_the_models(home: Path) -> None:
    exp = experiment(
        "http://127.0.0.1:9/v1",
        seeds=8,
        workers=4,
        concurrency="auto",
        max_concurrency=3,
        default={"concurrency": 1},
    )
    configs = sweep_configs(exp, home)
    assert worker_count(exp, 8, configs) == 3, "each worker needs a share of the ceiling"
    assert worker_count(exp.model_copy(update={"max_concurrency": 64}), 8, configs) == 4
    fixed = exp.model_copy(update={"concurrency": 8})
    assert worker_count(fixed, 8, configs) == 1, "a fixed model concurrency of one still caps"
