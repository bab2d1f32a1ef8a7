"""Conditional injects: scenario data that fires when the record says so, once, and only
at the start of a round; each kind fired in a whole session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import events_of

from majlis.model import Completion, LoopbackServer, ModelConfig, scripted_responder
from majlis.protocol import injects
from majlis.run import RunOptions, run_session
from majlis.scenario import InjectWhen, load_scenario

INJECTS = """\
  - id: stalled
    title: Talks stall
    text: The room has seen no package yet.
    when: {no_proposal_by: 1}
  - id: vote_lost
    title: A vote is lost
    text: The first vote failed.
    when: {votes_failed: 1}
  - id: line_crossed
    title: A red line
    text: The package on the table crosses a red line.
    when: {red_line_crossed: any}
  - id: squeezed
    title: Washington squeezed
    text: Washington is under pressure.
    when: {margin_below: {party: washington, value: 100}}
  - id: never
    title: Never
    text: Washington's margin never falls this low.
    when: {margin_below: {party: washington, value: -100}}
"""


def with_injects(home: Path) -> None:
    scenario = home / "scenarios" / "cornered-in-iraq" / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace("injects:\n", "injects:\n" + INJECTS, 1))


def fired(events: list[dict[str, Any]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for e in events:
        if e["type"] == "inject":
            out.setdefault(e["content"]["id"], []).append(e["round"])
    return out


async def test_each_kind_fires_once_in_a_session(home_copy: Path, tmp_path: Path) -> None:
    with_injects(home_copy)
    result = await run_session(
        RunOptions(model=ModelConfig(model="scripted"), home=home_copy, runs_root=tmp_path)
    )
    events = events_of(result)
    rounds = fired(events)
    # the scripted players propose in round 1, its vote fails, the standing package
    # crosses a red line: each fires at the start of round 2, once; the fixed ones stay
    assert rounds["vote_lost"] == [2] and rounds["line_crossed"] == [2]
    assert rounds["squeezed"] == [2]
    assert "stalled" not in rounds and "never" not in rounds
    assert rounds["jordan_funerals"] == [2] and rounds["baghdad_strike"] == [3]
    announced = [e for e in events if e["type"] == "inject"]
    assert all(set(e["content"]) == {"id", "title", "text"} for e in announced)  # no why
    assert all(e["audience"] == "all" for e in announced)


def no_proposals(body: dict[str, Any]) -> Completion:
    """The scripted player, but it never puts a package to the vote."""
    out = scripted_responder(body)
    move = json.loads(out.text)
    if "proposal" in move:
        move["proposal"] = None
    if "propose" in move:
        move["propose"] = False
    return Completion(json.dumps(move), out.prompt_tokens, out.completion_tokens)


async def test_no_proposal_by_fires_when_nobody_proposes(home_copy: Path, tmp_path: Path) -> None:
    with_injects(home_copy)
    with LoopbackServer(no_proposals) as server:
        model = ModelConfig(model="scripted", base_url=server.base_url, api_key_env=None)
        result = await run_session(
            RunOptions(model=model, home=home_copy, runs_root=tmp_path, rounds=3)
        )
    rounds = fired(events_of(result))
    assert rounds["stalled"] == [2]
    assert not any(e["type"] == "proposal" for e in events_of(result))
    assert "vote_lost" not in rounds and "line_crossed" not in rounds  # nothing was voted on


def ev(seq: int, round_no: int, kind: str, **content: Any) -> dict[str, Any]:
    return {"seq": seq, "round": round_no, "type": kind, "speaker": "sudani", "content": content}


PACKAGE = {  # crosses the Kurds' red line on guarantees
    "coalition": "phased",
    "bilateral": "advisers",
    "militias": "truce",
    "us_response": "consent",
    "guarantees": "federal_only",
    "economy": "conditional",
}


@pytest.mark.parametrize(
    ("when", "round_no", "events", "standing", "expected"),
    [
        ({"no_proposal_by": 1}, 2, [ev(0, 1, "message")], None, "no proposal by round 1"),
        ({"no_proposal_by": 1}, 1, [], None, None),  # round 1 not over yet
        ({"no_proposal_by": 1}, 2, [ev(0, 1, "proposal", package=PACKAGE)], None, None),
        ({"no_proposal_by": 1}, 3, [ev(0, 2, "proposal", package=PACKAGE)], None,
         "no proposal by round 1"),
        ({"votes_failed": 2}, 3, [ev(0, 1, "tally", passed=False)], None, None),
        ({"votes_failed": 2}, 3, [ev(0, 1, "tally", passed=False), ev(1, 2, "tally", passed=False)],
         None, "2 vote(s) failed"),
        ({"red_line_crossed": "kurds"}, 2, [], {"package": PACKAGE},
         "the standing proposal crosses a red line of kurds"),
        ({"red_line_crossed": "sudani"}, 2, [], {"package": PACKAGE}, None),
        ({"red_line_crossed": "any"}, 2, [], None, None),  # nothing on the table
        ({"margin_below": {"party": "kurds", "value": 100}}, 2, [], {"package": PACKAGE},
         "the standing proposal leaves kurds at a margin of"),
        ({"margin_below": {"party": "kurds", "value": -100}}, 2, [], {"package": PACKAGE}, None),
        ({"votes_failed": 1, "red_line_crossed": "sudani"}, 2, [ev(0, 1, "tally", passed=False)],
         {"package": PACKAGE}, None),  # every condition must hold
    ],
)  # fmt: skip
def test_conditions(
    home: Path,
    when: dict[str, Any],
    round_no: int,
    events: list[dict[str, Any]],
    standing: dict[str, Any] | None,
    expected: str | None,
) -> None:
    loaded = load_scenario("cornered-in-iraq", home)
    why = injects.reasons(InjectWhen.model_validate(when), loaded, round_no, events, standing)
    if expected is None:
        assert why is None
    else:
        assert why is not None and why.startswith(expected)


@pytest.mark.parametrize(
    ("inject", "field", "message"),
    [
        ("{id: x, title: X, text: Y}", "injects.0", "give either `round` or `when`"),
        ("{id: x, title: X, text: Y, round: 2, when: {votes_failed: 1}}", "injects.0",
         "not both"),
        ("{id: x, title: X, text: Y, when: {}}", "injects.0.when", "names no condition"),
        ("{id: x, title: X, text: Y, when: {red_line_crossed: ankara}}",
         "injects.0.when.red_line_crossed", "unknown party 'ankara'"),
        ("{id: x, title: X, text: Y, when: {margin_below: {party: ankara, value: 1}}}",
         "injects.0.when.margin_below.party", "unknown party 'ankara'"),
        ("{id: x, title: X, text: Y, when: {no_proposal_by: 6}}",
         "injects.0.when.no_proposal_by", "leaves no round"),
        ("{id: jordan_funerals, title: X, text: Y, when: {votes_failed: 1}}", "injects",
         "duplicate inject 'jordan_funerals'"),
    ],
)  # fmt: skip
def test_bad_conditional_injects_are_named(
    home_copy: Path, inject: str, field: str, message: str
) -> None:
    from majlis.errors import ScenarioError

    scenario = home_copy / "scenarios" / "cornered-in-iraq" / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace("injects:\n", f"injects:\n  - {inject}\n", 1))
    with pytest.raises(ScenarioError) as caught:
        load_scenario("cornered-in-iraq", home_copy)
    assert f": {field}" in str(caught.value) and message in str(caught.value)
