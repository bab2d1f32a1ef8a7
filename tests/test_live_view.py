"""The live view says who is speaking and how far the model has got, so a long turn shows life."""

from __future__ import annotations

import io
import time
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from conftest import event
from rich.console import Console

from majlis.cli.live import BALLOT, LiveView
from majlis.model import Activity, Snapshot
from majlis.scenario import LoadedScenario, load_scenario

REPO = Path(__file__).parents[1]
ORDER = ["sudani", "washington", "tehran", "militias", "kurds", "sunnis"]
PACKAGE = {"us_forces": "phased_withdrawal", "pmf": "integrate"}


@pytest.fixture(scope="module")
def loaded() -> LoadedScenario:
    return load_scenario("cornered-in-iraq", REPO)


class Clock:
    """A stand-in for time.monotonic, so seconds and tokens/s are exact."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Drives both the view's turn timer and the `Activity` meter (both read time.monotonic)."""
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


def make_view(
    loaded: LoadedScenario, activity: Activity | None = None
) -> tuple[LiveView, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    return LiveView(loaded, console, progress=True, activity=activity), out


class Feed:
    """Events as graph.py makes them: numbered, stamped, fed to the view one by one."""

    def __init__(self, view: LiveView) -> None:
        self.view = view
        self.seq = count()
        self.round = 0

    def event(self, type_: str, speaker: str, audience: Any, content: dict[str, Any]) -> None:
        seq, ts = next(self.seq), "2025-01-01T00:00:00.000+00:00"
        self.view(event(seq, self.round, type_, speaker, audience, content, ts))

    def round_(self, order: list[str] = ORDER) -> None:
        self.round += 1
        text = f"Round {self.round} of 6 begins."
        self.event("round", "facilitator", "all", {"text": text, "order": order})

    def inject(self) -> None:
        content = {"id": "strike", "title": "Strike", "text": "A drone strike near the airport."}
        self.event("inject", "facilitator", "all", content)

    def move(self, party: str, proposal: bool = False, side_to: str | None = None) -> None:
        """One turn: the private note first, then the message, then side talk and proposal."""
        note = {"reasoning": "Hold firm.", "private_positions": {}, "attempts": 1}
        self.event("private_note", party, [party], note)
        self.event("message", party, "all", {"text": f"{party} speaks.", "positions": {}})
        if side_to:
            self.event("side_message", party, [party, side_to], {"to": side_to, "text": "Psst."})
        if proposal:
            self.event("proposal", party, "all", {"package": PACKAGE})

    def failed(self, party: str, task: str) -> None:
        content = {"party": party, "task": task, "error": "bad JSON", "attempts": 3, "raw": "{"}
        self.event("error", party, [], content)

    def votes(self, parties: list[str] = ORDER, failed: str | None = None) -> None:
        for p in parties:
            if p == failed:
                self.failed(p, "vote")
            else:
                self.event("private_note", p, [p], {"reasoning": "Fine.", "attempts": 1})
        for p in parties:
            if p != failed:
                self.event("vote", p, "all", {"vote": "accept", "proposal_seq": 7})

    def tally(self, passed: bool = False) -> None:
        content = {
            "proposal_seq": 7,
            "passed": passed,
            "accept": [p for p in ORDER if p != "tehran"],
            "reject": ["tehran"],
            "abstain": [],
        }
        self.event("tally", "facilitator", "all", content)

    def outcome(self) -> None:
        content = {
            "kind": "no_deal",
            "branch": "slow_burn",
            "package": {},
            "deal_round": None,
            "stopped": None,
        }
        self.event("outcome", "facilitator", "all", content)


def round_one(loaded: LoadedScenario, activity: Activity | None = None) -> tuple[LiveView, Feed]:
    """A view, and a feed that has just begun round 1 on it."""
    view, _ = make_view(loaded, activity)
    feed = Feed(view)
    feed.round_()
    return view, feed


def test_the_first_in_order_speaks_once_the_round_begins(loaded: LoadedScenario) -> None:
    view, _ = make_view(loaded)
    assert view.waiting_on() is None and view.status_text() == ""
    feed = Feed(view)
    feed.round_(["kurds", *[p for p in ORDER if p != "kurds"]])
    feed.inject()
    assert view.waiting_on() == "kurds"
    assert view.status_text().startswith("Kurdish parties is speaking · ")


def test_each_message_passes_the_turn_to_the_next_in_order(loaded: LoadedScenario) -> None:
    view, feed = round_one(loaded)
    seen = [view.waiting_on()]
    for i, party in enumerate(ORDER[:-1]):
        # the private note comes first and does not end the turn
        feed.event("private_note", party, [party], {"reasoning": "x", "private_positions": {}})
        assert view.waiting_on() == party
        feed.event("message", party, "all", {"text": "y", "positions": {}})
        # side talk and a proposal come after the message and do not end the next turn
        feed.event("side_message", party, [party, "tehran"], {"to": "tehran", "text": "z"})
        if i == 1:
            feed.event("proposal", party, "all", {"package": PACKAGE})
        seen.append(view.waiting_on())
    assert seen == ORDER
    assert view.status_text().startswith("Sunni parties is speaking")


def test_a_failed_move_passes_the_turn_but_a_failed_vote_does_not(
    loaded: LoadedScenario,
) -> None:
    view, feed = round_one(loaded)
    feed.move("sudani", proposal=True)
    feed.move("washington")
    feed.failed("tehran", "move")
    assert view.waiting_on() == "militias"
    for p in ORDER[3:]:
        feed.move(p)
    assert view.waiting_on() == BALLOT
    feed.failed("kurds", "vote")
    assert view.waiting_on() == BALLOT


def test_the_room_votes_after_the_last_turn_while_a_proposal_stands(
    loaded: LoadedScenario,
) -> None:
    view, feed = round_one(loaded)
    for p in ORDER[:-1]:
        feed.move(p)
    assert view.waiting_on() == "sunnis"
    feed.move("sunnis", proposal=True)  # the proposal comes after the last message
    assert view.waiting_on() == BALLOT
    assert view.status_text().startswith("Secret ballot · ")
    feed.votes(failed="tehran")
    assert view.waiting_on() == BALLOT
    feed.tally()
    assert view.waiting_on() is None and view.status_text() == ""
    # the proposal still stands next round: that round too ends in a vote
    feed.round_()
    assert view.waiting_on() == "sudani"
    for p in ORDER:
        feed.move(p)
    assert view.waiting_on() == BALLOT


def test_without_a_proposal_nobody_is_awaited_after_the_last_turn(
    loaded: LoadedScenario,
) -> None:
    view, feed = round_one(loaded)
    for p in ORDER:
        feed.move(p, side_to="washington" if p != "washington" else None)
    assert view.waiting_on() is None and view.status_text() == ""
    feed.round_()
    assert view.waiting_on() == "sudani"


def test_nothing_is_pending_after_the_outcome(loaded: LoadedScenario) -> None:
    view, feed = round_one(loaded)
    feed.move("sudani", proposal=True)
    feed.outcome()  # e.g. a budget stop mid-round ends the session at once
    assert view.waiting_on() is None
    assert view.status_text() == ""
    assert view.status_text(Snapshot(True, 812, 40, 3.0, 9.0)) == ""


def test_status_without_a_meter_shows_who_and_seconds_since_the_turn_began(
    loaded: LoadedScenario, clock: Clock
) -> None:
    view, feed = round_one(loaded)
    clock.now += 30
    feed.move("sudani")
    clock.now += 14.6
    assert view.status_text() == "Washington is speaking · 14 s"
    markup = view.status_text(markup=True)
    assert "#2166ac" in markup and "Washington" in markup


def test_status_reads_then_writes_with_a_rate(loaded: LoadedScenario, clock: Clock) -> None:
    meter = Activity()
    view, _ = round_one(loaded, meter)
    assert view.status_text() == "Prime Minister Sudani is speaking · 0 s"  # meter idle
    meter.begin(prompt_tokens=812)
    clock.now += 3
    assert view.status_text() == "Prime Minister Sudani is speaking · reading 812 tokens · 3 s"
    for _ in range(38):  # 38 tokens over 3 seconds after the first: 37 / 3 tok/s
        meter.token()
        clock.now += 3 / 37
    assert view.status_text() == (
        "Prime Minister Sudani is speaking · writing 38 tokens · 12.3 tok/s · 6 s"
    )
    meter.end()
    assert view.status_text() == "Prime Minister Sudani is speaking · 6 s"
    meter.begin()  # a prompt of unknown length
    assert view.status_text() == "Prime Minister Sudani is speaking · reading · 6 s"


def test_ballot_status_shows_the_meter(loaded: LoadedScenario, clock: Clock) -> None:
    meter = Activity()
    view, feed = round_one(loaded, meter)
    for p in ORDER:
        feed.move(p, proposal=p == "kurds")
    clock.now += 5
    snap = Snapshot(busy=True, prompt_tokens=900, tokens=12, elapsed_s=1.0, tokens_per_s=20.1)
    assert view.status_text(snap) == "Secret ballot · writing 12 tokens · 20.1 tok/s · 5 s"
    meter.begin(prompt_tokens=900)
    meter.token()  # a single token: no rate yet
    assert view.status_text() == "Secret ballot · writing 1 token · 5 s"


def test_the_status_line_is_drawn_under_the_bar_and_climbs_between_events(
    loaded: LoadedScenario, clock: Clock
) -> None:
    meter = Activity()
    view, out = make_view(loaded, meter)
    feed = Feed(view)
    feed.round_()
    feed.move("sudani", proposal=True)
    meter.begin(prompt_tokens=812)

    def frame() -> str:
        """What the progress display would draw now (it redraws on its own timer)."""
        probe = Console(file=io.StringIO(), width=120, force_terminal=False)
        probe.print(view.progress.get_renderable())
        return probe.file.getvalue()  # type: ignore[attr-defined]

    first = frame()
    assert "1/36" in first
    bar, status = first.rstrip("\n").splitlines()
    assert "Cornered in Iraq" in bar
    assert status == "Washington is speaking · reading 812 tokens · 0 s"
    for _ in range(5):
        meter.token()
        clock.now += 0.5
    assert frame().splitlines()[1] == "Washington is speaking · writing 5 tokens · 2.0 tok/s · 2 s"
    # events are still printed one line each, the status line never is
    printed = out.getvalue()
    assert "Prime Minister Sudani: sudani speaks." in printed
    assert "is speaking" not in printed
    feed.outcome()
    assert len(frame().rstrip("\n").splitlines()) == 1  # nothing pending: the bar alone
