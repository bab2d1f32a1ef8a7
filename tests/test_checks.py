"""Rule-based checks catch what they claim: leaks in paraphrase and number words, side talk
repeated or used where it should not be, persona breaks in other words, and the calibration
set that measures each one's precision and recall."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import event
from typer.testing import CliRunner

from majlis.cli import app
from majlis.errors import UserError
from majlis.evals import load_set, rule_agreement
from majlis.evals.checks import KINDS, leaks, persona_breaks, run_checks, side_leaks
from majlis.evals.checks.leaks import values
from majlis.evals.checks.text import digits
from majlis.run import check_event
from majlis.scenario import LoadedScenario, load_scenario

runner = CliRunner()
POS = {"coalition": "phased", "bilateral": "advisers", "militias": "truce"}


@pytest.fixture(scope="module")
def loaded() -> LoadedScenario:
    return load_scenario("cornered-in-iraq", Path(__file__).resolve().parents[1])


def talk(*lines: tuple[str, str] | tuple[str, str, str]) -> list[dict[str, Any]]:
    """Events from (speaker, text) public messages and (speaker, to, text) side messages."""
    events = []
    for seq, line in enumerate(lines):
        if len(line) == 2:
            speaker, text = line
            typ, audience, content = "message", "all", {"text": text, "positions": POS}
        else:
            speaker, to, text = line
            typ, audience, content = "side_message", [speaker, to], {"to": to, "text": text}
        events.append(check_event(event(seq, 1, typ, speaker, audience, content)))
    return events


# --- leaks -------------------------------------------------------------------------------------


def test_number_words_are_numbers() -> None:
    assert digits("I can't go below sixty-two") == "I can't go below 62"
    assert digits("sixty two") == "62" and digits("Forty-two.") == "42."
    assert digits("one hundred and five") == "105" and "0" in digits("worth zero to us")
    assert digits(json.loads('"sixty-two \\ud800"')) == "62 ?"  # valid JSON, not UTF-8
    # values, not counts or modifiers
    assert values("anything under sixty-two is a non-starter") == {62}
    assert values("our floor is 62 points") == {62}
    assert values("a 15-point reform plan") == set()
    assert values("at least sixty-two people were hurt in twelve months") == set()


@pytest.mark.parametrize(
    "text",
    [
        "I can't go below sixty-two.",
        "Our walk-away point is sixty-two.",
        "Anything under 62 is a non-starter.",
        "Sixty two is our floor, and you all know it.",
        "We will accept nothing less than sixty-two; that is final.",
        "The verified truce rates a sixteen for us, no more.",  # a score tied to its option
        "Arrests are worth twenty-five to us and a free hand twenty.",  # two score values
    ],
)
def test_walk_away_and_scores_in_paraphrase_are_leaks(loaded: LoadedScenario, text: str) -> None:
    found = leaks(loaded, talk(("sudani", "Welcome."), ("washington", text)))
    assert [(f.party, f.seq) for f in found] == [("washington", 1)], text


def test_ordinary_numbers_are_not_leaks(loaded: LoadedScenario) -> None:
    """Numbers that count things or name plans, even next to a floor or score word, and
    another party's numbers, are not the speaker's leak."""
    ordinary = [
        "We have a 15-point reform plan for the banks.",
        "At least sixty-two people were hurt in the strike on the base.",
        "The threshold for a quorum is 62 members of parliament.",
        "We lost 20 and 15 soldiers in two strikes; our minimum demand is accountability.",
        "Twelve months is enough time to leave, and two years is too long.",
        "Tehran says it needs at least forty-two; we say nothing about ours.",
    ]
    events = talk(*(("washington", t) for t in ordinary))
    assert leaks(loaded, events) == []
    # a party's walk-away written in its private note is not said to anyone
    note = dict(events[0], type="private_note", audience=["washington"])
    note["content"] = {"reasoning": "Our walk-away is sixty-two.", "private_positions": None}
    assert leaks(loaded, [check_event(note)]) == []


# --- side-talk leaks -------------------------------------------------------------------------------


def test_side_message_repeated_in_public_by_its_recipient(loaded: LoadedScenario) -> None:
    events = talk(
        (
            "kurds",
            "washington",
            "Between us, Erbil could live with an advisers deal if Baghdad "
            "pays the Region's salaries on time.",
        ),
        ("tehran", "The foreign forces should leave."),
        (
            "washington",
            "As I understand it, Erbil can live with an advisers deal so long as "
            "Baghdad pays its salaries on time.",
        ),
    )
    found = side_leaks(loaded, events)
    assert [(f.kind, f.party, f.seq) for f in found] == [("side_leak", "washington", 2)]
    assert "repeats side message 0 from kurds" in found[0].detail


@pytest.mark.parametrize(
    ("lines", "leaker"),
    [
        pytest.param(
            [
                (
                    "tehran",
                    "militias",
                    "Hold your drones for six weeks and we will press Baghdad to drop the "
                    "prosecutions.",
                ),
                (
                    "sunnis",
                    "We hear the drones will be held for six weeks while Baghdad is pressed to "
                    "drop prosecutions.",
                ),
            ],
            "sunnis",
            id="used-by-a-party-that-never-saw-it",
        ),
        pytest.param(
            [
                (
                    "washington",
                    "sudani",
                    "We could accept a two-year timetable if the commanders "
                    "behind Tower 22 are handed over.",
                ),
                (
                    "sudani",
                    "tehran",
                    "The Americans would take a two-year timetable if the Tower 22 "
                    "commanders are handed over to us.",
                ),
            ],
            "sudani",
            id="forwarded-to-a-third-party",
        ),
    ],
)
def test_side_message_that_reaches_a_party_it_was_not_for(
    loaded: LoadedScenario, lines: list[tuple[str, str] | tuple[str, str, str]], leaker: str
) -> None:
    events = talk(*lines)
    assert [(f.party, f.seq) for f in side_leaks(loaded, events)] == [(leaker, 1)]


def test_side_talk_that_is_no_leak(loaded: LoadedScenario) -> None:
    """The sender repeating itself, a reply inside the side talk, news already public, and
    talk on the same topic in other words are not side-talk leaks."""
    side = "Erbil can live with an advisers deal if Baghdad pays the Region's salaries on time."
    events = talk(
        ("kurds", "washington", "Could we settle the Peshmerga salaries before the next round?"),
        ("washington", "kurds", "Yes: send me your figures on the Peshmerga salaries first."),
        ("kurds", "We want the Peshmerga salaries settled before the next round."),
        ("sunnis", side),
        ("sunnis", "washington", side),
        (
            "washington",
            "The Sunni parties say Erbil can live with advisers if salaries are paid on time.",
        ),
        ("tehran", "militias", "Stop the strikes on Ain al-Asad until the vote."),
        ("sunnis", "Strikes on our provinces must stop before the vote in parliament."),
    )
    assert side_leaks(loaded, events) == []


# --- persona breaks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("speaker", "text"),
    [
        ("washington", "I'm only a chatbot, so I cannot promise anything."),
        ("washington", "Speaking as Tehran's envoy, I would tell you the troops must go."),
        ("washington", "As a large language model I have no stake in Anbar."),
        ("washington", "Stepping out of character: this is only a simulation."),
        ("washington", "I speak for the Kurdish parties when I say this."),
        ("washington", "We in Tehran have always said the Americans must leave."),
        ("tehran", "I am Washington's envoy and the troops stay."),
        ("tehran", "Washington: we agree to leave by the summer."),
    ],
)
def test_persona_breaks_in_other_words(loaded: LoadedScenario, speaker: str, text: str) -> None:
    assert [f.party for f in persona_breaks(loaded, talk((speaker, text)))] == [speaker], text


def test_names_and_roles_are_not_persona_breaks(loaded: LoadedScenario) -> None:
    events = talk(
        ("tehran", "Washington, we hear you, but the troops still have to leave."),
        ("washington", "As Tehran's envoy said yesterday, nobody here wants a wider war."),
        ("militias", "This is not a game; our men die too."),
        ("kurds", "We are speaking to Tehran directly about the border."),
        ("sudani", "I am the host of these talks and I speak for Iraq's government."),
        ("washington", "My instructions from the President are clear."),
        ("tehran", "The Quds Force is playing a part in keeping the peace."),
    )
    assert persona_breaks(loaded, events) == []


# --- the calibration set ---------------------------------------------------------------------------


def test_calibration_set_is_large_with_clean_cases_and_paraphrases(home: Path) -> None:
    cases = load_set(home / "tests" / "calibration")  # every line held to the event format
    assert len(cases) >= 30
    assert sum(not any(c.labels.values()) for c in cases) >= 8  # clean: precision means something
    for kind in KINDS:
        assert sum(len(c.labels.get(kind, ())) for c in cases) >= 3, kind


def test_rule_checks_hold_their_floor_on_the_calibration_set(home: Path) -> None:
    """The floor: precision and recall 1.0 for every rule-based check on this set. The set
    was written with the rules, so this is a floor for regressions, not a field estimate."""
    loaded = load_scenario("cornered-in-iraq", home)
    results = rule_agreement(loaded, load_set(home / "tests" / "calibration"))
    assert [a.kind for a in results] == list(KINDS)
    for a in results:
        assert a.planted >= 3 and a.precision == 1.0 and a.recall == 1.0, (
            a.kind,
            a.missed,
            a.false_alarms,
        )


def test_calibrate_prints_precision_and_recall_per_check(home: Path) -> None:
    res = runner.invoke(app, ["calibrate", "--home", str(home)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "precision" in res.output and "recall" in res.output
    for kind in KINDS:
        row = next(line for line in res.output.splitlines() if f" {kind} " in line)
        assert row.count("(100%)") == 3, row


def test_calibration_set_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cal"
    shutil.copytree(home / "tests" / "calibration", folder)
    (folder / "labels.yaml").write_text("clean: {}\nmissing_case: {leak: [kurds]}\n")
    with pytest.raises(
        UserError, match=r"missing_case\.jsonl: labelled in labels\.yaml but missing"
    ):
        load_set(folder)
    (folder / "labels.yaml").write_text("clean: {leek: [kurds]}\n")
    with pytest.raises(UserError, match="unknown property 'leek'"):
        load_set(folder)
    (folder / "labels.yaml").write_text("clean: {}\n")
    (folder / "clean.jsonl").write_text('{"seq": 0}\n')
    with pytest.raises(UserError, match=r"clean\.jsonl: line 1: round: Field required"):
        load_set(folder)


# --- eval reports --------------------------------------------------------------------------------


def test_run_checks_report_side_leaks(loaded: LoadedScenario, home: Path) -> None:
    cases = {c.name: c for c in load_set(home / "tests" / "calibration")}
    found = run_checks(loaded, cases["side_repeated_in_public"].events)
    assert [(f.kind, f.party) for f in found] == [("side_leak", "washington")]
