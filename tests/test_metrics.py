"""Table-driven tests of the negotiation metrics, on a tiny hand-made scenario.

Three parties, a (veto), b and c; two issues, x in {x1, x2, x3} and y in {y1, y2}; a deal
needs two acceptances including a. Every package's scores, as (a, b, c):

    (x1,y1) 6,3,3   (x1,y2) 10,4,1   (x2,y1) 3,6,5   (x2,y2) 7,7,3   (x3,y1) 0,8,3   (x3,y2) 4,9,1

Thresholds are a 5, b 6, c 2. Only (x1,y1) is dominated, by (x2,y2), at distance
sqrt(1 + 16 + 0). Red lines: a x=x3, b x=x1, c y=y2. Leans: x1 +1, x3 -1, y1 -1, y2 +1;
an outcome leaning >= 1 muddles through.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest

from majlis.evals import metrics, pareto
from majlis.evals.metrics import Offer, compute_metrics, summary_row
from majlis.model import ModelConfig
from majlis.run import RunOptions, load_snapshot, run_session
from majlis.scenario import (
    AgentCard,
    BranchRule,
    DealRule,
    Issue,
    LoadedScenario,
    Option,
    RedLine,
    Scenario,
)

REPO = Path(__file__).resolve().parents[1]
ISSUES = ["x", "y"]


def _card(pid: str, scores: dict[str, dict[str, int]], threshold: int, red: str) -> AgentCard:
    issue, option = red.split("=")
    return AgentCard(
        id=pid,
        name=pid.upper(),
        role="party",
        persona="personas/none.md.j2",
        public_stance="-",
        private_brief="-",
        scores=scores,
        threshold=threshold,
        red_lines=[RedLine(issue=issue, option=option)],
        veto=pid == "a",
    )


def _options(*pairs: tuple[str, int]) -> list[Option]:
    return [Option(id=o, label=o, lean=lean) for o, lean in pairs]


TINY = LoadedScenario(
    scenario=Scenario(
        id="tiny",
        title="Tiny",
        brief="-",
        convener="a",
        parties=["a", "b", "c"],
        agenda=[
            Issue(id="x", title="X", options=_options(("x1", 1), ("x2", 0), ("x3", -1))),
            Issue(id="y", title="Y", options=_options(("y1", -1), ("y2", 1))),
        ],
        deal_rule=DealRule(veto=["a"], min_accept=2, max_rounds=3),
        branches=BranchRule(muddle_through_at=1),
    ),
    cards={
        "a": _card("a", {"x": {"x1": 6, "x2": 3, "x3": 0}, "y": {"y1": 0, "y2": 4}}, 5, "x=x3"),
        "b": _card("b", {"x": {"x1": 0, "x2": 3, "x3": 5}, "y": {"y1": 3, "y2": 4}}, 6, "x=x1"),
        "c": _card("c", {"x": {"x1": 1, "x2": 3, "x3": 1}, "y": {"y1": 2, "y2": 0}}, 2, "y=y2"),
    },
    root=Path("."),
    files=[],
)


# ---------------------------------------------------------------------------------------
# Building transcripts by hand: each helper makes one event; log() numbers them in order.


def log(*events: dict[str, Any]) -> list[dict[str, Any]]:
    extra = {"audience": "all", "call_id": None, "usage": None, "latency_ms": None, "ts": ""}
    return [{"seq": i, **extra, **e} for i, e in enumerate(events)]


def ev(type_: str, speaker: str, content: dict[str, Any], r: int = 1) -> dict[str, Any]:
    return {"round": r, "type": type_, "speaker": speaker, "content": content}


def pkg(x: str, y: str) -> dict[str, str]:
    return {"x": x, "y": y}


def msg(p: str, x: str, y: str, text: str = "", r: int = 1) -> dict[str, Any]:
    return ev("message", p, {"text": text, "positions": pkg(x, y)}, r)


def note(p: str, x: str, y: str, r: int = 1) -> dict[str, Any]:
    return ev("private_note", p, {"reasoning": "-", "private_positions": pkg(x, y)}, r)


def prop(p: str, x: str, y: str, r: int = 1) -> dict[str, Any]:
    return ev("proposal", p, {"package": pkg(x, y)}, r)


def vote(p: str, v: str, on: int, r: int = 1) -> dict[str, Any]:
    return ev("vote", p, {"vote": v, "proposal_seq": on}, r)


def tally(on: int, passed: bool, r: int = 1) -> dict[str, Any]:
    return ev("tally", "facilitator", {"proposal_seq": on, "passed": passed}, r)


def side(p: str, to: str, r: int = 1) -> dict[str, Any]:
    return ev("side_message", p, {"to": to, "text": "psst"}, r)


def inject(r: int) -> dict[str, Any]:
    return ev("inject", "facilitator", {"id": "shock", "title": "Shock", "text": "-"}, r)


def error(p: str, task: str = "move", r: int = 1) -> dict[str, Any]:
    return ev("error", p, {"party": p, "task": task, "error": "bad", "attempts": 3, "raw": ""}, r)


# ---------------------------------------------------------------------------------------
# Outcome and welfare


@pytest.mark.parametrize(
    ("events", "scored", "package", "deal_round"),
    [
        ([], None, None, None),
        ([prop("a", "x1", "y1")], "last_proposal", pkg("x1", "y1"), None),
        (
            [prop("a", "x1", "y1"), prop("b", "x3", "y2"), tally(1, False)],
            "last_proposal",
            pkg("x3", "y2"),
            None,
        ),
        # the deal is the package voted on, not whichever came last
        (
            [prop("a", "x1", "y1"), prop("b", "x3", "y2"), tally(0, True, r=2)],
            "deal",
            pkg("x1", "y1"),
            2,
        ),
    ],
)
def test_scored_package_and_deal(
    events: list[dict[str, Any]], scored: str | None, package: dict | None, deal_round: int | None
) -> None:
    events = log(*events)
    assert metrics.scored_package(events) == (scored, package)
    assert metrics.deal_tally(events)[0] == deal_round


@pytest.mark.parametrize(
    ("margins", "nash"),
    [
        ([2, 1, 1], 2),
        ([5, 3, 4], 60),
        ([2, 0, 7], 0),  # a party exactly at its walk-away point
        ([5, -2, -1], 0),  # two negatives do not multiply into a positive
        ([-1, 3, -1], 0),
    ],
)
def test_nash_product(margins: list[int], nash: int) -> None:
    assert metrics.nash_product(margins) == nash


@pytest.mark.parametrize(
    ("package", "total", "nash", "min_margin", "efficient", "distance"),
    [
        # margins (a 5, b 6, c 2) are worked out in the module docstring's table
        (pkg("x2", "y2"), 17, 2, 1, True, 0.0),  # margins 2, 1, 1
        (pkg("x1", "y1"), 12, 0, -3, False, math.sqrt(17)),  # 1, -3, 1; (7,7,3) beats (6,3,3)
        (pkg("x1", "y2"), 15, 0, -2, True, 0.0),  # 5, -2, -1: nobody else gives a 10
        (pkg("x2", "y1"), 14, 0, -2, True, 0.0),  # -2, 0, 3: nobody else gives c 5
        (pkg("x3", "y1"), 11, 0, -5, True, 0.0),  # -5, 2, 1
        (pkg("x3", "y2"), 14, 0, -1, True, 0.0),  # -1, 3, -1
    ],
)
def test_welfare(
    package: dict[str, str],
    total: int,
    nash: int,
    min_margin: int,
    efficient: bool,
    distance: float,
) -> None:
    w = metrics.welfare(TINY, package)
    assert (w.sum, w.nash, w.min_margin, w.pareto_efficient) == (total, nash, min_margin, efficient)
    assert w.pareto_distance == pytest.approx(distance)


def test_pareto_frontier_of_the_whole_space_is_cached() -> None:
    front = pareto.pareto_frontier(TINY)
    assert set(front) == {(10, 4, 1), (3, 6, 5), (7, 7, 3), (0, 8, 3), (4, 9, 1)}
    assert pareto.pareto_frontier(TINY) is front


@pytest.mark.parametrize(
    ("vectors", "frontier"),
    [
        ([(1, 1), (2, 2)], {(2, 2)}),
        ([(3, 0), (0, 3), (1, 1)], {(3, 0), (0, 3), (1, 1)}),
        ([(2, 2), (2, 2), (1, 2)], {(2, 2)}),  # duplicates collapse; >= everywhere and > once
        ([(2, 1), (1, 2), (2, 2)], {(2, 2)}),
        ([(1, 2, 3), (3, 2, 1), (1, 1, 1), (3, 2, 0)], {(1, 2, 3), (3, 2, 1)}),
        ([(5,)], {(5,)}),
    ],
)
def test_frontier_of(vectors: list[tuple[int, ...]], frontier: set[tuple[int, ...]]) -> None:
    front = pareto.frontier_of(vectors)
    assert set(front) == frontier and len(front) == len(frontier)


@pytest.mark.parametrize(
    ("vector", "efficient", "distance"),
    [
        ((3, 3), True, 0.0),  # on the frontier
        ((1, 1), False, math.sqrt(8)),  # (3,3) is nearer than (4,0) or (0,4) at sqrt(10)
        ((3, 0), False, 1.0),  # (4,0) at 1, (3,3) at 3
        ((2, 3), False, 1.0),  # only (3,3) weakly dominates it
        ((0, 5), True, 0.0),  # nothing weakly dominates it
    ],
)
def test_pareto_position(vector: tuple[int, int], efficient: bool, distance: float) -> None:
    frontier = [(4, 0), (0, 4), (3, 3)]
    eff, dist = pareto.pareto_position(vector, frontier)
    assert eff is efficient and dist == pytest.approx(distance)


# ---------------------------------------------------------------------------------------
# Per-party behaviour


@pytest.mark.parametrize(
    ("events", "party", "expected"),
    [
        ([], "a", (None, 0, 0)),
        ([prop("b", "x3", "y1")], "a", (None, 0, 0)),  # a neither proposed nor accepted
        ([prop("a", "x2", "y2")], "a", (0.0, 0, 1)),  # a: 7 >= 5
        # proposing and accepting the same proposal counts it once; a: 3 < 5
        ([prop("a", "x2", "y1"), vote("a", "accept", 0)], "a", (1.0, 1, 1)),
        ([prop("a", "x1", "y1"), prop("b", "x3", "y1"), vote("a", "accept", 1)], "a", (0.5, 1, 2)),
        ([prop("a", "x1", "y1"), prop("b", "x3", "y1"), vote("a", "reject", 1)], "a", (0.0, 0, 1)),
        ([prop("b", "x3", "y2"), vote("a", "accept", 0)], "a", (1.0, 1, 1)),  # a: 4 < 5
        # b: (x1,y2) 4 < 6, (x2,y2) 7 >= 6, (x3,y1) 8 >= 6
        (
            [
                prop("a", "x1", "y2"),
                vote("b", "accept", 0),
                prop("b", "x2", "y2"),
                prop("b", "x3", "y1"),
            ],
            "b",
            (1 / 3, 1, 3),
        ),
    ],
)
def test_wrong_deal_ratio(
    events: list[dict[str, Any]], party: str, expected: tuple[float | None, int, int]
) -> None:
    acts = metrics.backing(log(*events), party)
    assert metrics.wrong_deal_ratio(TINY.cards[party], acts) == expected


@pytest.mark.parametrize(
    ("events", "party", "breaches"),
    [
        ([prop("a", "x3", "y2")], "a", [(0, "proposal", "x", "x3")]),
        ([prop("b", "x3", "y1"), vote("a", "accept", 0)], "a", [(1, "accept", "x", "x3")]),
        ([prop("b", "x3", "y1"), vote("a", "reject", 0)], "a", []),  # rejecting is fine
        ([prop("a", "x1", "y1")], "a", []),
        ([prop("b", "x1", "y1")], "b", [(0, "proposal", "x", "x1")]),
        (
            [prop("c", "x1", "y2"), vote("c", "accept", 0)],
            "c",
            [(0, "proposal", "y", "y2"), (1, "accept", "y", "y2")],
        ),
    ],
)
def test_red_line_breaches(
    events: list[dict[str, Any]], party: str, breaches: list[tuple[int, str, str, str]]
) -> None:
    acts = metrics.backing(log(*events), party)
    found = metrics.red_line_breaches(TINY.cards[party], acts)
    assert [(b.seq, b.act, b.issue, b.option) for b in found] == breaches


@pytest.mark.parametrize(
    ("events", "scores", "rate"),
    [
        ([], [], None),
        ([prop("a", "x1", "y2")], [10], None),
        ([prop("a", "x1", "y2"), prop("a", "x2", "y2", r=3)], [10, 7], 1.5),  # (10-7)/(3-1)
        (
            [prop("a", "x1", "y2"), prop("a", "x1", "y1", r=2), prop("a", "x2", "y2", r=4)],
            [10, 6, 7],
            1.0,  # first and last only: (10-7)/(4-1)
        ),
        ([prop("a", "x2", "y1"), prop("a", "x1", "y2", r=2)], [3, 10], -7.0),  # hardening
        ([prop("a", "x1", "y2"), prop("a", "x2", "y2")], [10, 7], None),  # one round
        ([prop("b", "x1", "y2"), prop("a", "x2", "y2", r=2)], [7], None),  # only its own
    ],
)
def test_concessions(events: list[dict[str, Any]], scores: list[int], rate: float | None) -> None:
    offers = metrics.offers(TINY.cards["a"], log(*events), "a")
    assert [o.score for o in offers] == scores
    assert metrics.concession_rate(offers) == rate


def test_concession_rate_uses_the_rounds_of_first_and_last_offer() -> None:
    offers = [Offer(seq=1, round=2, score=90), Offer(seq=9, round=6, score=70)]
    assert metrics.concession_rate(offers) == 5.0


@pytest.mark.parametrize(
    ("events", "share"),
    [
        ([note("a", "x1", "y2"), msg("a", "x1", "y2")], 1.0),
        ([note("a", "x1", "y2"), msg("a", "x2", "y2")], 0.5),
        ([note("a", "x1", "y2"), msg("a", "x2", "y1")], 0.0),
        (  # moves are averaged: (1 + 0) / 2
            [
                note("a", "x1", "y2"),
                msg("a", "x1", "y2"),
                note("a", "x1", "y2"),
                msg("a", "x3", "y1"),
            ],
            0.5,
        ),
        ([note("a", "x1", "y2"), msg("a", "x1", "y2"), msg("a", "x2", "y1")], 1.0),  # no reuse
        ([msg("a", "x1", "y2")], None),  # no private positions to compare
        ([note("b", "x1", "y2"), msg("a", "x1", "y2")], None),  # someone else's note
        ([ev("private_note", "a", {"reasoning": "vote"}), msg("a", "x1", "y2")], None),
    ],
)
def test_position_consistency(events: list[dict[str, Any]], share: float | None) -> None:
    assert metrics.position_consistency(log(*events), "a", ISSUES) == share


@pytest.mark.parametrize(
    ("events", "checks"),
    [
        ([msg("a", "x1", "y1"), prop("b", "x1", "y1"), vote("a", "accept", 1)], [(1.0, True)]),
        ([msg("a", "x1", "y1"), prop("b", "x1", "y1"), vote("a", "reject", 1)], [(1.0, False)]),
        ([msg("a", "x1", "y1"), prop("b", "x1", "y2"), vote("a", "accept", 1)], [(0.5, True)]),
        ([msg("a", "x1", "y1"), prop("b", "x1", "y2"), vote("a", "reject", 1)], [(0.5, False)]),
        ([msg("a", "x1", "y1"), prop("b", "x2", "y2"), vote("a", "reject", 1)], [(0.0, True)]),
        ([msg("a", "x1", "y1"), prop("b", "x2", "y2"), vote("a", "accept", 1)], [(0.0, False)]),
        ([prop("b", "x2", "y2"), vote("a", "accept", 0)], []),  # no position yet: not judged
        ([prop("b", "x2", "y2"), vote("a", "accept", 0), msg("a", "x2", "y2")], []),
        (  # the latest position before each vote counts
            [
                msg("a", "x1", "y1"),
                prop("b", "x2", "y2"),
                vote("a", "reject", 1),
                msg("a", "x2", "y2", r=2),
                vote("a", "accept", 1, r=2),
            ],
            [(0.0, True), (1.0, True)],
        ),
    ],
)
def test_vote_checks(events: list[dict[str, Any]], checks: list[tuple[float, bool]]) -> None:
    found = metrics.vote_checks(log(*events), "a", ISSUES)
    assert [(v.match, v.consistent) for v in found] == checks


# ---------------------------------------------------------------------------------------
# The room


@pytest.mark.parametrize(
    ("events", "talk", "shares"),
    [
        ([], {}, {"a": None, "b": None, "c": None}),
        (
            [
                msg("a", "x1", "y1", "hello"),
                msg("b", "x1", "y1", "no"),
                msg("a", "x1", "y1", "abc"),
            ],
            {"a": (2, 8), "b": (1, 2)},
            {"a": 0.8, "b": 0.2, "c": 0.0},
        ),
        (
            [msg("a", "x1", "y1", ""), side("a", "b")],
            {"a": (1, 0)},
            {"a": None, "b": None, "c": None},
        ),
    ],
)
def test_talk_share(
    events: list[dict[str, Any]],
    talk: dict[str, tuple[int, int]],
    shares: dict[str, float | None],
) -> None:
    events = log(*events)
    assert metrics.talk(events) == talk
    for p, share in shares.items():
        pm = metrics.party_metrics(TINY, events, p, None)
        assert pm.talk_share == share and pm.messages == talk.get(p, (0, 0))[0]


@pytest.mark.parametrize(
    ("events", "graph"),
    [
        ([], {}),
        ([msg("a", "x1", "y1")], {}),
        (
            [side("a", "b"), side("a", "b"), side("b", "a"), side("c", "a"), side("a", "c")],
            {"a": {"b": 2, "c": 1}, "b": {"a": 1}, "c": {"a": 1}},
        ),
    ],
)
def test_side_talk(events: list[dict[str, Any]], graph: dict[str, dict[str, int]]) -> None:
    assert metrics.side_talk(log(*events)) == graph


@pytest.mark.parametrize(
    ("events", "changed"),
    [
        (
            [msg("a", "x1", "y1"), msg("b", "x1", "y1"), inject(2), msg("a", "x2", "y2", r=2)],
            {"a": 2, "b": None, "c": None},  # b says nothing after, c nothing at all
        ),
        (  # last message before against first message after
            [
                msg("a", "x1", "y1"),
                msg("a", "x2", "y1"),
                inject(2),
                msg("a", "x2", "y1", r=2),
                msg("a", "x3", "y2", r=2),
            ],
            {"a": 0, "b": None, "c": None},
        ),
        (
            [msg("c", "x1", "y1"), inject(2), msg("b", "x1", "y1"), msg("c", "x1", "y2", r=2)],
            {"a": None, "b": None, "c": 1},
        ),
    ],
)
def test_inject_responses(events: list[dict[str, Any]], changed: dict[str, int | None]) -> None:
    [response] = metrics.inject_responses(log(*events), ["a", "b", "c"], ISSUES)
    assert response.id == "shock" and response.changed == changed


@pytest.mark.parametrize(
    ("events", "failed"),
    [
        ([], {}),
        ([error("a"), error("a", "vote"), error("b")], {"a": 2, "b": 1}),
        ([msg("a", "x1", "y1"), error("c", "vote")], {"c": 1}),
    ],
)
def test_failed_turns(events: list[dict[str, Any]], failed: dict[str, int]) -> None:
    assert dict(metrics.failed_turns(log(*events))) == failed


# ---------------------------------------------------------------------------------------
# A whole hand-made transcript, and cuts of it


SESSION = log(
    ev("round", "facilitator", {"text": "Round 1", "order": ["a", "b", "c"]}),  # 0
    note("a", "x1", "y2"),
    msg("a", "x1", "y2", "We open."),  # 2: 8 characters
    prop("a", "x1", "y2"),
    note("b", "x3", "y1"),  # 4: b's public y differs from its private y
    msg("b", "x3", "y2", "No."),
    side("b", "a"),
    prop("b", "x3", "y2"),  # 7
    error("c"),
    vote("a", "reject", 7),  # 9: matches a's positions on y only (0.5): inconsistent
    vote("b", "accept", 7),
    vote("c", "reject", 7),  # 11: c has no public positions yet: not judged
    tally(7, False),
    ev("round", "facilitator", {"text": "Round 2", "order": ["a", "b", "c"]}, 2),  # 13
    inject(2),
    note("a", "x2", "y2", r=2),
    msg("a", "x2", "y2", "Meet halfway.", r=2),  # 16: 13 characters
    prop("a", "x2", "y2", r=2),  # 17
    note("b", "x2", "y2", r=2),
    msg("b", "x2", "y2", "Fine.", r=2),
    note("c", "x2", "y2", r=2),
    msg("c", "x2", "y2", "Agreed.", r=2),  # 21: 7 characters
    vote("a", "accept", 17, r=2),
    vote("b", "accept", 17, r=2),
    vote("c", "accept", 17, r=2),  # 24: c crosses its red line y=y2
    tally(17, True, r=2),
    ev("outcome", "facilitator", {"kind": "deal", "branch": "muddle_through"}, 2),
)


@pytest.mark.parametrize(
    ("cut", "incomplete", "rounds", "deal_round", "kind", "branch"),
    [
        (None, False, 2, 2, "deal", "muddle_through"),
        (26, True, 2, 2, "deal", "muddle_through"),  # killed before the outcome event
        (13, True, 1, None, "partial", "muddle_through"),  # a and b (a veto) agree y2: +1
        (4, True, 1, None, "none", "rupture"),  # only a has spoken
        (0, True, 0, None, "none", "rupture"),
    ],
)
def test_outcome_of_whole_and_cut_transcripts(
    cut: int | None, incomplete: bool, rounds: int, deal_round: int | None, kind: str, branch: str
) -> None:
    m = compute_metrics(TINY, SESSION[:cut])
    assert (m.incomplete, m.rounds, m.deal_round, m.kind, m.branch) == (
        incomplete,
        rounds,
        deal_round,
        kind,
        branch,
    )
    assert m.deal is (deal_round is not None)
    assert m.max_rounds == 3 and m.deal_in_final_round is False


@pytest.mark.parametrize(
    ("cut", "scored", "package", "agreement", "welfare"),
    [
        (None, "deal", pkg("x2", "y2"), pkg("x2", "y2"), (17, 2, 1, True)),
        (13, "last_proposal", pkg("x3", "y2"), {"x": None, "y": "y2"}, (14, 0, -1, True)),
        (4, "last_proposal", pkg("x1", "y2"), {"x": None, "y": None}, (15, 0, -2, True)),
        (0, None, None, {"x": None, "y": None}, None),
    ],
)
def test_scoring_of_whole_and_cut_transcripts(
    cut: int | None,
    scored: str | None,
    package: dict[str, str] | None,
    agreement: dict[str, str | None],
    welfare: tuple[int, int, int, bool] | None,
) -> None:
    m = compute_metrics(TINY, SESSION[:cut])
    w = m.welfare
    assert (m.scored, m.package, m.agreement) == (scored, package, agreement)
    assert (w and (w.sum, w.nash, w.min_margin, w.pareto_efficient)) == welfare


def test_deal_in_the_final_round() -> None:
    late = [{**e, "round": 3} if e["type"] == "tally" else e for e in SESSION]
    m = compute_metrics(TINY, late)
    assert m.deal_round == 3 and m.deal_in_final_round is True


def test_compute_metrics_per_party_on_the_whole_transcript() -> None:
    m = compute_metrics(TINY, SESSION)
    a, b, c = (m.parties[p] for p in "abc")
    assert (a.score, a.margin, b.score, b.margin, c.score, c.margin) == (7, 2, 7, 1, 3, 1)
    # a backed 3 (x1,y2) = 10 and 17 (x2,y2) = 7; b backed 7 (x3,y2) = 9 and 17 = 7; c 17 = 3
    assert [(p.wrong_deal_ratio, p.backed) for p in (a, b, c)] == [(0.0, 2), (0.0, 2), (0.0, 1)]
    assert [(o.seq, o.round, o.score) for o in a.offers] == [(3, 1, 10), (17, 2, 7)]
    assert (a.first_offer, a.last_offer, a.concession_rate) == (10, 7, 3.0)
    assert (b.first_offer, b.last_offer, b.concession_rate) == (9, 9, None)
    assert c.offers == [] and c.first_offer is None and c.concession_rate is None
    assert [(r.seq, r.round, r.act, r.issue, r.option) for r in c.red_line_breaches] == [
        (24, 2, "accept", "y", "y2")
    ]
    assert a.red_line_breaches == [] and b.red_line_breaches == []
    assert (a.position_consistency, b.position_consistency, c.position_consistency) == (
        1.0,
        0.75,
        1.0,
    )
    assert [v.seq for v in a.votes] == [9, 22] and a.vote_consistency == 0.5
    assert b.vote_consistency == 1.0
    assert [v.seq for v in c.votes] == [24] and c.vote_consistency == 1.0
    assert [(p.messages, p.message_chars) for p in (a, b, c)] == [(2, 21), (2, 8), (1, 7)]
    assert a.talk_share == pytest.approx(21 / 36) and c.talk_share == pytest.approx(7 / 36)
    assert [p.failed_turns for p in (a, b, c)] == [0, 0, 1] and m.failed_turns == 1
    assert m.side_talk == {"b": {"a": 1}}
    [shock] = m.injects
    assert (shock.seq, shock.round, shock.changed) == (14, 2, {"a": 1, "b": 1, "c": None})


def test_summary_row() -> None:
    row = summary_row(compute_metrics(TINY, SESSION))
    assert row == {
        "scenario_id": "tiny",
        "incomplete": 0,
        "deal": 1,
        "deal_round": 2,
        "rounds": 2,
        "kind": "deal",
        "branch": "muddle_through",
        "branch_label": "Muddle through",  # the older form's branches are named from their ids
        "scored": "deal",
        "welfare_sum": 17,
        "nash": 2,
        "min_margin": 1,
        "pareto_efficient": 1,
        "pareto_distance": 0.0,
        "failed_turns": 1,
        **{"score.a": 7, "margin.a": 2, "wrong_deal_ratio.a": 0.0, "red_line_breaches.a": 0},
        **{"score.b": 7, "margin.b": 1, "wrong_deal_ratio.b": 0.0, "red_line_breaches.b": 0},
        **{"score.c": 3, "margin.c": 1, "wrong_deal_ratio.c": 0.0, "red_line_breaches.c": 1},
    }
    empty = summary_row(compute_metrics(TINY, []))
    assert empty["welfare_sum"] is None and empty["pareto_efficient"] is None
    assert empty["score.a"] is None and empty["wrong_deal_ratio.a"] is None


# ---------------------------------------------------------------------------------------
# A real scripted session, checked against numbers recomputed here from events and cards


async def test_metrics_of_a_scripted_session(tmp_path: Path) -> None:
    result = await run_session(
        RunOptions(model=ModelConfig(model="scripted"), home=REPO, runs_root=tmp_path, command=[])
    )
    loaded = load_snapshot(result.run_dir)
    events, _ = result.run_dir.read_events()
    m = compute_metrics(loaded, events)
    cards, parties = loaded.cards, loaded.scenario.parties

    def own(p: str, package: dict[str, str]) -> int:
        return sum(cards[p].scores[issue][option] for issue, option in package.items())

    props = {e["seq"]: e for e in events if e["type"] == "proposal"}
    passed = [e for e in events if e["type"] == "tally" and e["content"]["passed"]]
    if passed:
        scored = "deal", props[passed[0]["content"]["proposal_seq"]]["content"]["package"]
    else:
        scored = "last_proposal", props[max(props)]["content"]["package"]
    assert (m.scored, m.package) == scored
    package = scored[1]

    outcome = result.outcome
    assert not m.incomplete and m.deal == (outcome.kind == "deal")
    assert (m.kind, m.branch, m.deal_round) == (outcome.kind, outcome.branch, outcome.deal_round)
    assert m.rounds == outcome.rounds_used and m.failed_turns == outcome.failed_turns
    for p in parties:
        score, margin = own(p, package), own(p, package) - cards[p].threshold
        assert (m.parties[p].score, m.parties[p].margin) == (score, margin)
        assert (outcome.parties[p].score, outcome.parties[p].margin) == (score, margin)

    margins = [own(p, package) - cards[p].threshold for p in parties]
    assert m.welfare is not None
    assert m.welfare.sum == sum(own(p, package) for p in parties)
    assert m.welfare.min_margin == min(margins)
    assert m.welfare.nash == (math.prod(margins) if min(margins) >= 0 else 0)

    # Pareto, by brute force over every package built here from the agenda
    agenda = loaded.scenario.agenda
    space = [
        dict(zip([i.id for i in agenda], combo, strict=True))
        for combo in itertools.product(*([o.id for o in i.options] for i in agenda))
    ]
    vectors = {tuple(own(p, q) for p in parties) for q in space}
    mine = tuple(own(p, package) for p in parties)
    dominators = [
        v for v in vectors if v != mine and all(x >= y for x, y in zip(v, mine, strict=True))
    ]
    assert m.welfare.pareto_efficient is (not dominators)
    if dominators:  # the distance is to an undominated dominator, and no frontier one is nearer
        undominated = [
            v for v in dominators if not any(w != v and all(map(int.__ge__, w, v)) for w in vectors)
        ]
        assert m.welfare.pareto_distance == pytest.approx(
            min(math.dist(v, mine) for v in undominated)
        )
    else:
        assert m.welfare.pareto_distance == 0.0

    for p in parties:
        backed = {s for s, e in props.items() if e["speaker"] == p}
        backed |= {
            e["content"]["proposal_seq"]
            for e in events
            if e["type"] == "vote" and e["speaker"] == p and e["content"]["vote"] == "accept"
        }
        below = sum(own(p, props[s]["content"]["package"]) < cards[p].threshold for s in backed)
        pm = m.parties[p]
        assert (pm.wrong_deals, pm.backed) == (below, len(backed))
        assert pm.wrong_deal_ratio == (below / len(backed) if backed else None)
        red = {(r.issue, r.option) for r in cards[p].red_lines}
        acts = [e["content"]["package"] for e in props.values() if e["speaker"] == p] + [
            props[e["content"]["proposal_seq"]]["content"]["package"]
            for e in events
            if e["type"] == "vote" and e["speaker"] == p and e["content"]["vote"] == "accept"
        ]
        hits = sum((i, o) in red for act in acts for i, o in act.items())
        assert len(pm.red_line_breaches) == hits
        assert pm.messages == sum(e["type"] == "message" and e["speaker"] == p for e in events)

    assert sum(n for edges in m.side_talk.values() for n in edges.values()) == sum(
        e["type"] == "side_message" for e in events
    )
    assert [i.seq for i in m.injects] == [e["seq"] for e in events if e["type"] == "inject"]

    cut = compute_metrics(loaded, events[:-1])  # as if killed before the outcome event
    assert cut.incomplete and cut.package == m.package and cut.branch == m.branch
