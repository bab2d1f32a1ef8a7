"""`majlis zone`: a scenario's zone of agreement, its split by branch, and each party's best
and worst packages, over every package and inside the zone."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import small_home

from majlis.cli import main
from majlis.protocol import Zone

AGENDA = {"x": ["a1", "a2"], "y": ["b1", "b2", "b3"]}
# Scores of the six packages, worked by hand (alpha / beta / gamma; thresholds 8 / 5 / 5):
#   a1 b1: 5 / 6 / 2    a1 b2: 8 / 3 / 6    a1 b3: 11 / 0 / 6
#   a2 b1: 0 / 11 / 2   a2 b2: 3 / 8 / 6    a2 b3: 6 / 5 / 6
# alpha holds the veto and one more acceptance is needed: only a1 b2 (alpha, gamma) and
# a1 b3 (alpha, gamma) pass. b3 leans toward rupture, so the zone splits one and one.
CARDS: dict[str, dict[str, Any]] = {
    "alpha": {
        "scores": {"x": {"a1": 5, "a2": 0}, "y": {"b1": 0, "b2": 3, "b3": 6}},
        "threshold": 8,
    },
    "beta": {"scores": {"x": {"a1": 0, "a2": 5}, "y": {"b1": 6, "b2": 3, "b3": 0}}, "threshold": 5},
    "gamma": {
        "scores": {"x": {"a1": 2, "a2": 2}, "y": {"b1": 0, "b2": 4, "b3": 4}},
        "threshold": 5,
    },
}


def zone_command(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, list[str]]:
    """(exit code, stdout, stderr lines) of `majlis zone ARGS`."""
    code = main(["zone", *args])
    captured = capsys.readouterr()
    return code, captured.out, [x for x in captured.err.splitlines() if x.strip()]


def test_the_default_scenario_zone_through_the_command(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = zone_command(capsys, "--home", str(home))
    assert code == 0 and err == []
    lines = out.splitlines()
    assert lines[0] == (
        "cornered-in-iraq: zone of agreement 32 of 2,304 packages (muddle through 30, rupture 2)"
    )
    assert any("Muddle through" in x and "30" in x and "94%" in x for x in lines)
    assert sum("(veto)" in x for x in lines) == 2, "sudani and washington are marked"
    code, out, _ = zone_command(capsys, "cornered-in-iraq", "--home", str(home), "--json")
    report = Zone.model_validate_json(out)
    assert (report.packages, report.passing) == (2304, 32)
    assert {b.branch: b.packages for b in report.branches} == {"muddle_through": 30, "rupture": 2}
    sudani = next(p for p in report.parties if p.party == "sudani")
    assert sudani.accepts == 32 and sudani.min_margin == 0, "a veto party clears every zone package"


def test_figures_worked_by_hand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    futures = [
        {"id": "muddle_through", "label": "Muddle through", "when": {"lean_at_least": 0}},
        {"id": "rupture", "label": "Rupture"},
    ]
    home = small_home(tmp_path, AGENDA, CARDS, leans={"y": {"b3": -1}}, branches=futures)
    code, out, err = zone_command(capsys, "--home", str(home), "--json")
    assert code == 0 and err == []
    report = Zone.model_validate_json(out)
    assert (report.scenario, report.packages, report.passing) == ("small", 6, 2)
    split = {b.branch: (b.label, b.packages) for b in report.branches}
    assert split == {"muddle_through": ("Muddle through", 1), "rupture": ("Rupture", 1)}
    ends = {p.party: p for p in report.parties}

    def seen(scored: Any) -> tuple[str, str, int, int]:
        return (scored.package["x"], scored.package["y"], scored.score, scored.margin)

    alpha, beta, gamma = ends["alpha"], ends["beta"], ends["gamma"]
    assert alpha.veto and not beta.veto and alpha.threshold == 8
    assert seen(alpha.best) == ("a1", "b3", 11, 3) and seen(alpha.worst) == ("a2", "b1", 0, -8)
    assert seen(alpha.best_in_zone) == ("a1", "b3", 11, 3)
    assert seen(alpha.worst_in_zone) == ("a1", "b2", 8, 0)
    assert (alpha.accepts, alpha.min_margin, alpha.median_margin) == (2, 0, 1.5)
    assert seen(beta.best) == ("a2", "b1", 11, 6) and seen(beta.worst) == ("a1", "b3", 0, -5)
    assert seen(beta.best_in_zone) == ("a1", "b2", 3, -2)
    assert seen(beta.worst_in_zone) == ("a1", "b3", 0, -5)
    assert (beta.accepts, beta.min_margin, beta.median_margin) == (0, -5, -3.5)
    # gamma scores four packages 6 and two 2: of equals, the first in the agenda's order
    assert seen(gamma.best) == ("a1", "b2", 6, 1) and seen(gamma.worst) == ("a1", "b1", 2, -3)
    assert seen(gamma.best_in_zone) == seen(gamma.worst_in_zone) == ("a1", "b2", 6, 1)
    assert (gamma.accepts, gamma.min_margin, gamma.median_margin) == (2, 1, 1)

    code, out, err = zone_command(capsys, str(home / "scenarios" / "small"), "--home", str(home))
    assert code == 0 and err == []
    assert out.splitlines()[0] == (
        "small: zone of agreement 2 of 6 packages (muddle through 1, rupture 1)"
    )
    rows = [x for x in out.splitlines() if x.startswith("│ alpha")]
    assert "11 (+3)" in rows[0] and "0 (-8)" in rows[0] and "8 (+0)" in rows[0]


def test_an_empty_zone_is_said_and_is_no_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """alpha now wants 11, which only a1 b3 gives it, and gamma (b3 worth 0 to it now) and
    beta both fall short there: no package passes."""
    gamma = {"x": CARDS["gamma"]["scores"]["x"], "y": {"b1": 0, "b2": 4, "b3": 0}}
    cards = {
        **CARDS,
        "alpha": {**CARDS["alpha"], "threshold": 11},
        "gamma": {**CARDS["gamma"], "scores": gamma},
    }
    home = small_home(tmp_path, AGENDA, cards)
    code, out, err = zone_command(capsys, "--home", str(home))
    assert code == 0
    assert out.splitlines()[0] == "small: zone of agreement 0 of 6 packages"
    assert len(err) == 1 and err[0].startswith("majlis: warning: small: no package clears")
    assert "no deal is possible" in err[0]
    code, out, _ = zone_command(capsys, "--home", str(home), "--json")
    report = Zone.model_validate_json(out)
    assert report.passing == 0 and report.branches == []
    assert all(p.best_in_zone is None and p.min_margin is None for p in report.parties)


def test_without_a_name_a_home_of_several_scenarios_lists_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = small_home(tmp_path, AGENDA, CARDS)
    shutil.copytree(home / "scenarios" / "small", home / "scenarios" / "other")
    code, _, err = zone_command(capsys, "--home", str(home))
    assert code == 2 and len(err) == 1
    assert err[0].startswith("majlis: error: ") and "known: other, small" in err[0]
    code, _, err = zone_command(capsys, "nosuch", "--home", str(home))
    assert code == 2 and "unknown scenario 'nosuch' (known: other, small; shipped: " in err[0]
