"""The scripted player reads an option's place in its list only where the scenario says the
options run along a scale (`ordered`); elsewhere the order of the list changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import event, events_of, small_home, stable

from majlis import ModelConfig, RunOptions, run_session
from majlis.model.scripted import respond
from majlis.protocol import PartyPrompter, Templates
from majlis.scenario import load_scenario

# Worked so that the game takes several rounds, and so that the player as it was (which read
# every list as a scale and broke ties by place) struck different deals under the two lists.
CARDS: dict[str, dict[str, Any]] = {
    "alpha": {
        "scores": {"x": {"p": 8, "q": 6, "r": 6, "s": 10}, "y": {"u": 0, "v": 8, "w": 5}},
        "threshold": 10,
    },
    "beta": {
        "scores": {"x": {"p": 8, "q": 6, "r": 8, "s": 0}, "y": {"u": 0, "v": 5, "w": 0}},
        "threshold": 9,
    },
    "gamma": {
        "scores": {"x": {"p": 6, "q": 6, "r": 0, "s": 4}, "y": {"u": 5, "v": 5, "w": 8}},
        "threshold": 6,
    },
}
MOVES = ("message", "proposal", "side_message", "private_note", "vote", "tally", "outcome")


async def play(root: Path, agenda: dict[str, list[str]]) -> tuple[Any, list[dict[str, Any]]]:
    home = small_home(root, agenda, CARDS, rounds=6)
    result = await run_session(
        RunOptions(
            scenario="small", model=ModelConfig(model="scripted"), home=home, runs_root=root / "r"
        )
    )
    return result.outcome, [e for e in stable(events_of(result)) if e["type"] in MOVES]


async def test_unordered_options_in_another_order_make_the_same_game(tmp_path: Path) -> None:
    outcome_a, moves_a = await play(
        tmp_path / "a", {"x": ["p", "q", "r", "s"], "y": ["u", "v", "w"]}
    )
    outcome_b, moves_b = await play(
        tmp_path / "b", {"x": ["s", "r", "p", "q"], "y": ["w", "u", "v"]}
    )
    assert outcome_a.kind == "deal" and outcome_a.deal_round > 1, "a game of several rounds"
    assert moves_a == moves_b
    assert (outcome_b.kind, outcome_b.package) == (outcome_a.kind, outcome_a.package)


def first_move(home: Path, profile: str, stated: str) -> dict[str, Any]:
    """alpha's move in round 2, after beta has said it wants `stated` on `level`."""
    loaded = load_scenario("small", home)
    prompter = PartyPrompter(loaded, "alpha", Templates(home / "prompts"), profile=profile)
    events = [
        event(0, 1, "round", "facilitator", "all", {"text": "Round 1", "order": ["alpha", "beta"]}),
        event(1, 1, "message", "beta", "all", {"text": "Ours.", "positions": {"level": stated}}),
    ]
    return json.loads(respond(prompter.messages("move", events, 2, None)))


@pytest.mark.parametrize("profile", ["full", "compact"])
def test_on_an_ordered_issue_the_player_moves_to_a_neighbour(tmp_path: Path, profile: str) -> None:
    """alpha can live with l1 to l4 alike, not with l5, which beta asked for: along a scale
    it offers l4, next to l5; where the options are only names, none is nearer than another,
    and its tie-break (its own score, then the option's id) takes l1."""
    levels = {"level": ["l1", "l2", "l3", "l4", "l5"]}
    cards = {
        "alpha": {"scores": {"level": {"l1": 10, "l2": 10, "l3": 10, "l4": 10, "l5": 0}}},
        "beta": {"scores": {"level": {"l1": 0, "l2": 2, "l3": 4, "l4": 6, "l5": 10}}},
    }
    cards["alpha"]["threshold"], cards["beta"]["threshold"] = 10, 5
    scale = small_home(tmp_path, levels, cards, ordered=["level"], name="small")
    system = PartyPrompter(
        load_scenario("small", scale), "alpha", Templates(scale / "prompts")
    ).system
    assert json.loads(system.split("<rules>")[1].split("</rules>")[0])["ordered"] == ["level"]
    assert "## level: Issue level (ordered)" in system
    assert first_move(scale, profile, "l5")["positions"] == {"level": "l4"}
    assert first_move(scale, profile, "l2")["positions"] == {"level": "l2"}
    names = small_home(tmp_path / "names", levels, cards, name="small")
    assert first_move(names, profile, "l5")["positions"] == {"level": "l1"}
    assert first_move(names, profile, "l3")["positions"] == {"level": "l3"}
