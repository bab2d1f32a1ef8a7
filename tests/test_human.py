"""Trainee play: a person plays one party through a langgraph interrupt."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import click
import click.testing
import pytest
from conftest import FEDERAL_ONLY, MAJLIS, environment, events_of
from typer.testing import CliRunner

from majlis.cli import app
from majlis.model import ModelConfig
from majlis.protocol import PartyPrompter, Templates, briefing
from majlis.run import RunOptions, Terminal, run_session
from majlis.scenario import load_scenario

runner = CliRunner()

MOVE = [
    "Hold the line on accountability",  # private reasoning
    "1",
    "2",
    "1",
    "2",
    "1",
    "2",  # public positions, one per issue (by number)
    "y",  # privately the same
    "We want a partnership, not a rupture.",  # public message
    "y",
    "y",  # propose, and propose the public positions
    "y",
    "kurds",
    "Erbil stays with us.",  # a side message
]
VOTE = ["reject", "Not enough on accountability."]


def test_trainee_plays_washington_from_the_terminal(home: Path, tmp_path: Path) -> None:
    answers = [*MOVE, *VOTE, *MOVE, "9", "accept", ""]  # "9" is refused and asked again
    res = runner.invoke(
        app,
        [
            "run",
            "--model",
            "scripted",
            "--human",
            "washington",
            "--rounds",
            "2",
            "--quiet",
            "--home",
            str(home),
            "--out",
            str(tmp_path),
        ],
        input="\n".join(answers) + "\n",
    )
    assert res.exit_code == 0, res.output
    (run,) = tmp_path.iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["parties"]["washington"]["played_by"] == "human"
    assert manifest["parties"]["tehran"]["played_by"] == "model"
    events = events_of(run)
    said = [e for e in events if e["type"] == "message" and e["speaker"] == "washington"]
    assert [e["content"]["text"] for e in said] == ["We want a partnership, not a rupture."] * 2
    assert said[0]["content"]["positions"] == {
        "coalition": "remain",
        "bilateral": "advisers",
        "militias": "prosecute",
        "us_response": "consent",
        "guarantees": "us_presence",
        "economy": "conditional",
    }
    side = [e for e in events if e["type"] == "side_message" and e["speaker"] == "washington"]
    assert side and side[0]["audience"] == ["washington", "kurds"]
    votes = [
        e["content"]["vote"] for e in events if e["type"] == "vote" and e["speaker"] == "washington"
    ]
    assert votes == ["reject", "accept"]
    assert "please answer with one of" in res.output
    loaded = load_scenario("cornered-in-iraq", home)
    assert loaded.cards["washington"].private_brief[:60] in res.output, (
        "the trainee reads their own brief"
    )
    for other in ("tehran", "militias", "kurds"):
        assert loaded.cards[other].private_brief[:60] not in res.output, (
            f"{other}'s brief leaked to the trainee"
        )


async def test_the_person_sees_exactly_what_the_agent_would(home: Path, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def person(payload: dict[str, Any]) -> dict[str, Any]:
        seen.append(payload)
        if payload["task"] == "vote":
            return {"private_reasoning": "", "vote": "accept"}
        turn = json.loads(payload["messages"][-1]["content"].split("<turn>")[1].split("</turn>")[0])
        package = turn["standing_proposal"] or {
            i: s["enum"][0]
            for i, s in payload["schema"]["properties"]["positions"]["properties"].items()
        }
        return {
            "private_reasoning": "",
            "private_positions": package,
            "public_message": "Agreed in principle.",
            "positions": package,
            "proposal": None,
            "side_message": None,
        }

    result = await run_session(
        RunOptions(
            model=ModelConfig(model="scripted"),
            humans=["sunnis"],
            home=home,
            runs_root=tmp_path,
            rounds=2,
        ),
        ask_human=person,
    )
    assert result.manifest.status == "complete"
    assert [p["task"] for p in seen] == ["move", "vote", "move", "vote"]
    assert {p["party"] for p in seen} == {"sunnis"}
    loaded = load_scenario("cornered-in-iraq", home)
    agent_view = PartyPrompter(
        loaded.model_copy(
            update={
                "scenario": loaded.scenario.model_copy(
                    update={
                        "deal_rule": loaded.scenario.deal_rule.model_copy(update={"max_rounds": 2}),
                        "injects": [i for i in loaded.scenario.injects if i.round <= 2],
                    }
                )
            }
        ),
        "sunnis",
        Templates(home / "prompts"),
    )
    events = events_of(result)
    first_move_seq = next(e["seq"] for e in events if e["speaker"] == "sunnis")
    proposal = next(e for e in reversed(events[:first_move_seq]) if e["type"] == "proposal")
    standing = {
        "by": proposal["speaker"],
        "package": proposal["content"]["package"],
        "seq": proposal["seq"],
    }
    expected = agent_view.messages("move", events[:first_move_seq], 1, standing)
    assert seen[0]["messages"] == expected
    assert result.outcome.calls == sum(
        1 for e in events if e.get("usage") and e["call_id"] != "human"
    )


def _vote_payload(home: Path, party: str, package: dict[str, str]) -> dict[str, Any]:
    """What the graph asks a person at a vote on `package`, as HumanClient builds it."""
    loaded = load_scenario("cornered-in-iraq", home)
    prompter = PartyPrompter(loaded, party, Templates(home / "prompts"))
    standing = {"by": "sudani", "package": package, "seq": 3}
    return {
        "party": party,
        "task": "vote",
        "messages": prompter.messages("vote", [], 1, standing),
        "schema": {},
        "briefing": briefing(loaded, party).model_dump(),
    }


def _answer(terminal: Terminal, payload: dict[str, Any], typed: str) -> dict[str, Any]:
    with click.testing.CliRunner().isolation(input=typed):
        return terminal(payload)


KURDS_RED_LINE = FEDERAL_ONLY


def test_the_trainee_reads_a_plain_brief_not_the_prompt(home: Path) -> None:
    shown: list[str] = []
    _answer(Terminal(echo=shown.append), _vote_payload(home, "kurds", KURDS_RED_LINE), "reject\n\n")
    text = "\n".join(shown)
    card = load_scenario("cornered-in-iraq", home).cards["kurds"]
    assert card.private_brief.split()[0] in text and "Your walk-away point is" in text
    assert "<private_scores>" not in text and "<rules>" not in text and '"threshold"' not in text
    assert "Federal forces only" in text  # options by their labels, with the party's scores
    assert "Your red lines (never accept these):" in text


@pytest.mark.parametrize(
    ("typed", "vote"), [("accept\nn\n\n", "reject"), ("accept\ny\n\n", "accept")]
)
def test_accepting_across_a_red_line_is_confirmed_first(home: Path, typed: str, vote: str) -> None:
    shown: list[str] = []
    answer = _answer(
        Terminal(echo=shown.append), _vote_payload(home, "kurds", KURDS_RED_LINE), typed
    )
    assert answer["vote"] == vote
    assert any("it crosses your red line" in line for line in shown)


def test_enter_alone_never_accepts(home: Path) -> None:
    shown: list[str] = []
    answer = _answer(
        Terminal(echo=shown.append), _vote_payload(home, "kurds", KURDS_RED_LINE), "\n\nreject\n\n"
    )
    assert answer["vote"] == "reject"


def test_a_package_worth_the_walk_away_point_needs_no_confirmation(home: Path) -> None:
    loaded = load_scenario("cornered-in-iraq", home)
    card = loaded.cards["kurds"]
    best = {i: max(t, key=t.__getitem__) for i, t in card.scores.items()}
    shown: list[str] = []
    answer = _answer(Terminal(echo=shown.append), _vote_payload(home, "kurds", best), "accept\n\n")
    assert answer["vote"] == "accept" and not any("careful" in line for line in shown)


def test_ctrl_c_at_a_question_ends_the_process_at_once(home: Path, tmp_path: Path) -> None:
    """The question waits in a thread of its own for a line that will never come: Ctrl-C
    must still end majlis (exit 130, the resume line), not leave it waiting at exit."""
    proc = subprocess.Popen(
        [*MAJLIS, "run", "--model", "scripted", "--human", "sunnis",
         "--home", str(home), "--out", str(tmp_path)],
        env=environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    said: list[str] = []
    assert proc.stdout is not None
    # the question's prompt ends its line without a newline: read it character by character
    reader = threading.Thread(target=lambda: said.extend(iter(lambda: proc.stdout.read(1), "")))
    reader.start()
    deadline = time.monotonic() + 60
    while "only you see it" not in "".join(said):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("no question came: " + "".join(said[-300:]))
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("majlis still waits for an answer after Ctrl-C")
    reader.join(5)
    assert proc.stderr is not None
    last = proc.stderr.read().strip().splitlines()[-1]
    assert proc.returncode == 130, last
    assert last.startswith("majlis: interrupted; the run is kept, to go on with: majlis resume ")


def test_an_input_that_ends_at_a_question_is_one_line_and_exit_2(
    home: Path, tmp_path: Path
) -> None:
    """`majlis run --human` with nothing more to read (a closed stdin, Ctrl-D): one line
    that says so and where the run is kept, exit 2, and no traceback."""
    from conftest import majlis_process

    res = majlis_process(
        "run", "--model", "scripted", "--human", "sunnis", "--quiet",
        "--home", str(home), "--out", str(tmp_path), timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    (run,) = tmp_path.iterdir()
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [
        "majlis: error: the input ended before an answer for sunnis; the run is kept, to go "
        f"on with: majlis resume {run}"
    ]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "input ended" in manifest["error"]
