"""Table-driven tests of the pure negotiation rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from majlis.protocol import rules
from majlis.scenario import DealRule, load_scenario

RULE = DealRule(veto=["a", "b"], min_accept=3, max_rounds=4)
# the middle ground on every issue: a deal on it muddles through
MIDDLE = {
    "coalition": "phased",
    "bilateral": "advisers",
    "militias": "truce",
    "us_response": "consent",
    "guarantees": "monitored",
    "economy": "conditional",
}


@pytest.mark.parametrize(
    ("accepts", "passes"),
    [
        ({"a", "b", "c"}, True),
        ({"a", "b", "c", "d"}, True),
        ({"a", "c", "d"}, False),  # veto b missing
        ({"b", "c", "d"}, False),  # veto a missing
        ({"a", "b"}, False),  # too few
        (set(), False),
    ],
)
def test_deal_rule(accepts: set[str], passes: bool) -> None:
    votes = {p: p in accepts for p in "abcd"}
    assert rules.deal_passes(votes, RULE) is passes


def test_turn_order(home: Path) -> None:
    s = load_scenario("cornered-in-iraq", home).scenario
    assert rules.turn_order(s, 1) == [
        "sudani",
        "washington",
        "tehran",
        "militias",
        "kurds",
        "sunnis",
    ]
    assert rules.turn_order(s, 3)[0] == "sudani"
    rotating = s.model_copy(update={"turn_order": "rotate"})
    assert rules.turn_order(rotating, 1)[0] == "sudani"
    assert rules.turn_order(rotating, 2) == [
        "washington",
        "tehran",
        "militias",
        "kurds",
        "sunnis",
        "sudani",
    ]


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        ({"x": "p", "y": "q"}, 10 + 3),
        ({"x": "r", "y": "q"}, 0 + 3),
        ({"x": "p"}, 10),  # an unsettled issue scores nothing
        ({}, 0),
    ],
)
def test_score(package: dict[str, str], expected: int) -> None:
    scores = {"x": {"p": 10, "r": 0}, "y": {"q": 3, "s": 7}}
    assert rules.score(scores, package) == expected


def test_issue_agreement_and_outcome_kind(home: Path) -> None:
    s = load_scenario("cornered-in-iraq", home).scenario
    positions = {p: dict(MIDDLE) for p in s.parties}
    positions["tehran"]["coalition"] = "expel"  # one dissenter: still 5 of 6 with both vetoes
    positions["militias"]["coalition"] = "expel"  # two dissenters: 4 of 6, coalition not agreed
    positions["washington"]["economy"] = "sanctions"  # a veto dissents: not agreed
    agreed = rules.issue_agreement(positions, s)
    assert agreed["coalition"] is None
    assert agreed["economy"] is None
    assert agreed["militias"] == "truce"
    assert rules.outcome_kind(False, agreed) == "partial"
    assert rules.outcome_kind(False, dict.fromkeys(agreed)) == "none"
    assert rules.outcome_kind(True, MIDDLE) == "deal"


@pytest.mark.parametrize(
    ("kind", "package", "branch"),
    [
        ("none", {}, "rupture"),
        ("deal", MIDDLE, "muddle_through"),
        ("partial", {"coalition": "phased", "us_response": "consent"}, "muddle_through"),  # lean 4
        ("partial", {"coalition": "phased"}, "rupture"),  # lean 2 < 4
        (
            "deal",
            {
                "coalition": "expel",
                "bilateral": "none",
                "militias": "amnesty",
                "us_response": "free_hand",
                "guarantees": "monitored",
                "economy": "conditional",
            },
            "rupture",
        ),
    ],
)
def test_branch_rule(home: Path, kind: str, package: dict[str, str], branch: str) -> None:
    s = load_scenario("cornered-in-iraq", home).scenario
    assert rules.classify_branch(s, kind, package) == branch  # type: ignore[arg-type]
