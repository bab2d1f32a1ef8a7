"""Every token counted (issue 20): the transcript's usage is what the server reported,
failed attempts included, and the budget meters charge what the transcript records.

The server here keeps its own account: its responder writes down the usage it reports on
every request, and spoils chosen parties' replies a set number of times, so that some
turns fail after all their attempts and others succeed only at a re-ask.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import events_of

from majlis.errors import BudgetExceeded
from majlis.model import (
    Budget,
    Completion,
    LoopbackServer,
    Meter,
    ModelConfig,
    Price,
    PriceTable,
    ResponseCache,
    Spending,
    Usage,
    scripted_responder,
)
from majlis.run import RunOptions, run_session

SEED = 3
SPOILED = "Let me think about that before I answer."
# washington's moves never fit; tehran's first move fits at its third attempt; sudani's
# first ballot at its second
BAD = {("washington", "move"): 10**6, ("tehran", "move"): 2, ("sudani", "vote"): 1}


def turn_of(body: dict[str, Any]) -> tuple[str, str]:
    """(party, task) of a request, from the <turn> block of its last message holding one
    (a re-ask ends with the error fed back)."""
    text = next(m["content"] for m in reversed(body["messages"]) if "<turn>" in m["content"])
    start = text.rindex("<turn>") + len("<turn>")
    turn = json.loads(text[start : text.index("</turn>", start)])
    return turn["party"], turn["task"]


class Counting:
    """The scripted player (and a narrator's words) behind a server that writes down the
    usage it reports on each request, and spoils `bad[(party, task)]` replies."""

    def __init__(self, bad: dict[tuple[str, str], int]) -> None:
        self.bad = dict(bad)
        self.sent: list[tuple[str, str, Usage]] = []  # party, task, usage: one per request

    def __call__(self, body: dict[str, Any]) -> Completion:
        party, task = turn_of(body)
        if self.bad.get((party, task), 0) > 0:
            self.bad[(party, task)] -= 1
            text = SPOILED
        elif task == "narrate":
            text = words(body, party)
        else:
            text = scripted_responder(body).text
        chars = sum(len(m.get("content") or "") for m in body["messages"])
        # a different figure for each kind, so that no kind can stand in for another
        usage = Usage(
            prompt_tokens=chars // 4 + 3,
            completion_tokens=len(text) // 4 + 5,
            cached_tokens=chars // 16 + 1,
        )
        self.sent.append((party, task, usage))
        return Completion(text, **usage.model_dump())

    def total(self, party: str | None = None, task: str | None = None) -> Usage:
        """What the server reported, over all requests or those of a party and task."""
        return Usage.total(u for p, t, u in self.sent if party in (None, p) and task in (None, t))

    def first(self, task: str, party: str | None = None) -> int:
        """How many requests came before the first of this task (and party)."""
        return next(i for i, (p, t, _) in enumerate(self.sent) if t == task and party in (None, p))


def words(body: dict[str, Any], party: str) -> str:
    """A narrator's reply: the message, and the side note when the schema asks for one."""
    fmt = body["response_format"]
    schema = fmt["json_schema"]["schema"] if fmt["type"] == "json_schema" else fmt["schema"]
    out = {"message": f"{party} puts it plainly."}
    if "side" in schema["properties"]:
        out["side"] = "A quiet word between us."
    return json.dumps(out)


def recorded(events: list[dict[str, Any]]) -> Usage:
    """The usage summed over a transcript's events."""
    return Usage.total(e["usage"] for e in events if e["usage"])


async def session(
    server: LoopbackServer, home: Path, runs: Path, meter: Meter | None = None, **kw: Any
) -> Any:
    """Two rounds of the default scenario, every party on `server`, re-asked twice."""
    model = ModelConfig(model="scripted", base_url=server.base_url, output_retries=2)
    spending = Spending(shared=[meter]) if meter else None
    opts = RunOptions(
        model=model, home=home, runs_root=runs, rounds=2, seed=SEED, spending=spending, **kw
    )
    return await run_session(opts)


async def probe(home: Path, runs: Path) -> Counting:
    """What the server is asked, in order, in an unbudgeted session."""
    responder = Counting(BAD)
    with LoopbackServer(responder) as server:
        await session(server, home, runs)
    return responder


async def test_every_token_the_server_counted_is_in_the_transcript(
    home: Path, tmp_path: Path
) -> None:
    responder = Counting(BAD)
    with LoopbackServer(responder) as server:
        result = await session(server, home, tmp_path)
    events = events_of(result)
    assert len(responder.sent) == server.calls
    assert recorded(events) == responder.total(), "failed attempts included"
    assert result.outcome.usage == responder.total()
    assert result.outcome.calls == server.calls

    # washington's turns failed after three attempts each: their error events hold them
    errors = [e for e in events if e["type"] == "error"]
    assert [(e["speaker"], e["content"]["attempts"]) for e in errors] == [("washington", 3)] * 2
    assert recorded(errors) == responder.total("washington", "move")
    assert all(e["call_id"] and e["latency_ms"] is not None for e in errors)

    # tehran's first move fitted at its third attempt, sudani's first ballot at its second:
    # the first event of each call says how many attempts it took, and holds them all
    for party, task, attempts in (("tehran", "move", 3), ("sudani", "vote", 2)):
        first = responder.first(task, party)
        asked = [u for p, t, u in responder.sent[first:] if (p, t) == (party, task)]
        retried = [e for e in events if e["usage"] and e["content"].get("attempts", 1) > 1]
        mine = [e for e in retried if e["speaker"] == party]
        assert [e["content"]["attempts"] for e in mine] == [attempts]
        assert Usage.model_validate(mine[0]["usage"]) == Usage.total(asked[:attempts])


async def test_the_budget_meters_charge_what_the_transcript_records(
    home: Path, tmp_path: Path
) -> None:
    prices = PriceTable(prices={"scripted": Price(input=3.0, output=15.0)})
    meter = Meter(Budget(max_tokens=10**9), prices)
    responder = Counting(BAD)
    with LoopbackServer(responder) as server:
        result = await session(server, home, tmp_path, meter)
    spent = recorded(events_of(result))
    assert result.outcome.stopped is None
    assert meter.tokens == spent.tokens == responder.total().tokens
    assert meter.calls == result.outcome.calls == server.calls
    assert meter.cost == pytest.approx(prices.cost("scripted", spent))
    assert meter.cost > 0


@pytest.mark.parametrize(("party", "task"), [("washington", "move"), ("sudani", "vote")])
async def test_a_budget_that_runs_out_between_attempts_records_them(
    home: Path, tmp_path: Path, party: str, task: str
) -> None:
    """The budget allows the party's first attempt and refuses its re-ask: the session stops
    there, and the attempt that was made is on the record."""
    asked = await probe(home, tmp_path / "probe")
    # a vote's ballots are asked at once, so the first attempt of each is allowed
    meter = Meter(Budget(max_calls=asked.first(task, party) + 1))
    responder = Counting(BAD)
    with LoopbackServer(responder) as server:
        result = await session(server, home, tmp_path, meter)
    events = events_of(result)
    assert result.outcome.stopped and "model calls" in result.outcome.stopped
    assert recorded(events) == responder.total() == result.outcome.usage
    assert meter.calls == result.outcome.calls == server.calls
    assert meter.tokens == responder.total().tokens
    cut = [e for e in events if "budget ran out" in e["content"].get("error", "")]
    assert [(e["speaker"], e["content"]["task"], e["content"]["attempts"]) for e in cut] == [
        (party, task, 1)
    ]
    assert cut[0]["usage"] == responder.sent[responder.first(task, party)][2].model_dump()
    assert not [e for e in events if e["type"] in ("vote", "tally")], "no vote was held"


class RefusesOne(Meter):
    """No limit, except that it refuses the `n`th call asked of it: a sweep's shared budget
    spent to the end by another session between two ballots of this one."""

    def __init__(self, n: int) -> None:
        super().__init__(Budget())
        self.n, self.checks = n, 0

    def check(self) -> None:
        self.checks += 1
        if self.checks == self.n:
            raise BudgetExceeded("sweep budget: spent by another session")


async def test_a_ballot_the_budget_refuses_leaves_the_others_on_the_record(
    home: Path, tmp_path: Path
) -> None:
    asked = await probe(home, tmp_path / "probe")
    meter = RefusesOne(asked.first("vote") + 3)  # the third ballot of the first vote
    responder = Counting(BAD)
    with LoopbackServer(responder) as server:
        result = await session(server, home, tmp_path, meter)
    events = events_of(result)
    assert result.outcome.stopped == "sweep budget: spent by another session"
    assert recorded(events) == responder.total() == result.outcome.usage
    assert meter.calls == result.outcome.calls == server.calls
    voted = {p for p, t, _ in responder.sent if t == "vote"}
    assert len(voted) == 5, "every ballot but the refused one was asked"
    last_move = max(e["seq"] for e in events if e["type"] == "message")
    notes = {e["speaker"] for e in events[last_move:] if e["type"] == "private_note"}
    assert notes == voted, "each ballot asked has its note, and its cost, on the record"
    assert not [e for e in events if e["type"] in ("vote", "tally")], "no vote was held"


async def test_a_narrators_failed_and_repeated_attempts_are_counted(
    home: Path, tmp_path: Path
) -> None:
    responder = Counting({("washington", "narrate"): 10**6, ("tehran", "narrate"): 1})
    with LoopbackServer(responder) as server:
        result = await session(server, home, tmp_path, narrate=["all"])
    events = events_of(result)
    assert {t for _, t, _ in responder.sent} == {"narrate"}, "the decisions ask no model"
    assert recorded(events) == responder.total() == result.outcome.usage
    assert result.outcome.calls == server.calls, "a narrated vote is no model call"
    assert not [e for e in events if e["type"] == "error"], "the decisions stand"
    retried = [
        (e["speaker"], e["content"]["attempts"])
        for e in events
        if e["usage"] and e["content"].get("attempts", 1) > 1
    ]
    assert retried == [("washington", 3), ("tehran", 2), ("washington", 3)]
    failed = [e for e in events if e["speaker"] == "washington" and e["usage"]]
    assert recorded(failed) == responder.total("washington")


async def test_a_replayed_session_shows_what_its_replies_cost_and_charges_nothing(
    home: Path, tmp_path: Path
) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    responder = Counting(BAD)
    with LoopbackServer(responder) as server:
        first = await session(server, home, tmp_path / "first", Meter(Budget()), cache=cache)
        calls = server.calls
        meter = Meter(Budget())
        second = await session(server, home, tmp_path / "second", meter, cache=cache)
        assert server.calls == calls, "every reply, the spoiled ones too, came from the cache"
    a, b = events_of(first), events_of(second)
    assert [e["usage"] for e in a] == [e["usage"] for e in b]
    assert recorded(b) == responder.total() == second.outcome.usage
    assert (meter.calls, meter.tokens) == (0, 0), "the server was not asked: nothing spent"
