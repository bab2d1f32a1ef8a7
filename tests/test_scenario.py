"""The default scenario is complete, has a zone of agreement, and reaches both branches."""

from __future__ import annotations

from pathlib import Path

import pytest

from majlis.errors import ScenarioError
from majlis.protocol import rules
from majlis.scenario import load_scenario

PARTIES = {"sudani", "washington", "tehran", "militias", "kurds", "sunnis"}


def test_default_scenario_has_six_parties_and_a_full_agenda(home: Path) -> None:
    loaded = load_scenario("cornered-in-iraq", home)
    s = loaded.scenario
    assert set(s.parties) == PARTIES
    assert len(s.agenda) >= 5
    assert all(3 <= len(i.options) <= 5 for i in s.agenda)
    assert {"sudani", "washington"} <= set(s.deal_rule.veto)
    assert s.injects, "the scenario schedules injects"
    for pid, card in loaded.cards.items():
        assert card.private_brief and card.public_stance and card.red_lines
        assert card.veto == (pid in s.deal_rule.veto)
        for issue in s.agenda:
            assert set(card.scores[issue.id]) == set(issue.option_ids())


def test_a_zone_of_agreement_exists(home: Path) -> None:
    """Enumerate every package: at least one clears every veto's threshold and enough others'."""
    loaded = load_scenario("cornered-in-iraq", home)
    rule = loaded.scenario.deal_rule
    total = sum(1 for _ in rules.all_packages(loaded.scenario))
    zone = rules.zone_of_agreement(loaded)
    assert total == 4 * 4 * 4 * 4 * 3 * 3
    assert 0 < len(zone) < total // 10, "a zone exists but it is narrow"
    for package in zone:
        ok = rules.acceptable_to(loaded, package)
        assert all(ok[v] for v in rule.veto)
        assert sum(ok.values()) >= rule.min_accept


def test_both_branches_are_reachable(home: Path) -> None:
    loaded = load_scenario("cornered-in-iraq", home)
    s = loaded.scenario
    zone = rules.zone_of_agreement(loaded)
    branches = {rules.classify_branch(s, "deal", p) for p in zone}
    assert "muddle_through" in branches
    assert rules.classify_branch(s, "none", dict.fromkeys(s.parties)) == "rupture"
    # a deal can still be a rupture when its options pull toward escalation
    hawkish = {
        "coalition": "expel",
        "bilateral": "none",
        "militias": "no_commitment",
        "us_response": "free_hand",
        "guarantees": "federal_only",
        "economy": "sanctions",
    }
    assert rules.classify_branch(s, "deal", hawkish) == "rupture"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


SCN = "scenarios/cornered-in-iraq/scenario.yaml"

BROKEN = [
    # (file, old text, new text, field named in the error, words in the message)
    (SCN, "convener: sudani", "convener: sudani\ncolour: red", "colour", "unknown key"),
    (
        SCN,
        "veto: [sudani, washington]",
        "veto: [sudani, pentagon]",
        "deal_rule.veto.1",
        "unknown party",
    ),
    (SCN, "parties: [sudani,", "parties: [sudani, sudani,", "parties", "duplicate"),
    (SCN, "max_rounds: 6", "max_rounds: -1", "deal_rule.max_rounds", "greater than or equal"),
    (SCN, "  - round: 5", "  - round: 9", "injects.2.round", "after the last round"),
    (SCN, "min_accept: 5", "min_accept: 9", "deal_rule.min_accept", "only 6 parties"),
    (SCN, "title: Cornered in Iraq", "title: [unclosed", None, "invalid YAML"),
    ("agents/kurds.yaml", "threshold: 66", "threshold: 66\nmood: calm", "mood", "unknown key"),
    (
        "agents/kurds.yaml",
        "economy: {sanctions: 0, conditional: 14, unconditional: 20}",
        "economy: {sanctions: 0, conditional: 14}",
        "scores.economy.unconditional",
        "missing score",
    ),
    (
        "agents/kurds.yaml",
        "economy: {sanctions: 0,",
        "economy: {embargo: 0, sanctions: 0,",
        "scores.economy.embargo",
        "no such option",
    ),
    (
        "agents/kurds.yaml",
        "option: federal_only",
        "option: partition",
        "red_lines.0.option",
        "no such option",
    ),
    ("agents/kurds.yaml", "veto: false", "veto: true", "veto", "deal_rule.veto"),
    ("agents/kurds.yaml", "threshold: 66", "threshold: 500", "threshold", "above the best"),
]


@pytest.mark.parametrize(("file", "old", "new", "field", "words"), BROKEN)
def test_broken_files_name_the_file_and_field(
    home_copy: Path, file: str, old: str, new: str, field: str | None, words: str
) -> None:
    _edit(home_copy / file, old, new)
    with pytest.raises(ScenarioError) as info:
        load_scenario("cornered-in-iraq", home_copy)
    exc = info.value
    assert exc.path.endswith(Path(file).name)
    assert exc.field == field
    assert words in str(exc)


def test_empty_agenda_is_refused(home_copy: Path) -> None:
    path = home_copy / SCN
    text = path.read_text()
    start, stop = text.index("agenda:"), text.index("deal_rule:")
    path.write_text(text[:start] + "agenda: []\n" + text[stop:])
    with pytest.raises(ScenarioError, match="agenda"):
        load_scenario("cornered-in-iraq", home_copy)


def test_unknown_party_without_a_card(home_copy: Path) -> None:
    _edit(home_copy / SCN, "parties: [sudani,", "parties: [ankara, sudani,")
    with pytest.raises(ScenarioError, match="unknown party 'ankara'"):
        load_scenario("cornered-in-iraq", home_copy)


def test_a_reload_reuses_the_parse_and_sees_every_edit(home_copy: Path) -> None:
    first = load_scenario("cornered-in-iraq", home_copy)
    assert load_scenario("cornered-in-iraq", home_copy) is first  # parsed once per process
    # an edit that keeps the file's size, made at once: still seen
    _edit(home_copy / "agents/kurds.yaml", "threshold: 66", "threshold: 65")
    edited = load_scenario("cornered-in-iraq", home_copy)
    assert edited.cards["kurds"].threshold == 65
    # a scenario-local card that now shadows the shared one: seen too
    local = home_copy / Path(SCN).parent / "agents" / "kurds.yaml"
    local.parent.mkdir(exist_ok=True)
    text = (home_copy / "agents/kurds.yaml").read_text()
    local.write_text(text.replace("threshold: 65", "threshold: 60"))
    shadowed = load_scenario("cornered-in-iraq", home_copy)
    assert shadowed.cards["kurds"].threshold == 60
    assert local in shadowed.files
