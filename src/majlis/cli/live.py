"""The live view of a session in the terminal: one line per event, each party in its colour.

Under the progress bar a status line says who the session waits on (the party speaking, or
the secret ballot), for how long, and, given an `Activity` meter, how far the model has got.
It is redrawn by the progress display (about ten times a second), never printed, so a long
model call shows its tokens climbing instead of a frozen "0/36 turns".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..model import Activity, Snapshot
from ..scenario import LoadedScenario

BALLOT = "(ballot)"  # what `LiveView.waiting_on()` returns while the room votes in secret


class _StatusProgress(Progress):
    """A progress display that draws a status line under its bar, read afresh at each redraw."""

    def __init__(self, *columns: Any, status: Callable[[], str], **kwargs: Any) -> None:
        self._status = status  # first: Progress.__init__ already renders once
        super().__init__(*columns, **kwargs)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield from super().get_renderables()
        line = self._status()
        if line:  # nothing pending: no empty line under the bar
            text = Text.from_markup(line, overflow="ellipsis")
            text.no_wrap = True
            yield text


class LiveView:
    """Prints events as they happen and keeps a progress bar of turns below them."""

    def __init__(
        self,
        loaded: LoadedScenario,
        console: Console | None = None,
        show_private: bool = False,
        progress: bool = True,
        activity: Activity | None = None,
    ) -> None:
        """`progress=False` when a person types at the same terminal (no live bar under them).

        `activity` is the meter of the embedded model, if any: the status line then shows its
        tokens read and written; without it, only who is speaking and for how long.
        """
        self.loaded = loaded
        self.live = progress
        self.console = console or Console(stderr=False)
        self.show_private = show_private
        self.activity = activity
        # Who speaks is followed from the events alone: the round's order, turns ended so far.
        self.order: list[str] = []
        self.turns = 0  # turns of this round that have ended (a message or a failed move)
        self.standing = False  # a proposal has been made this session: the round ends in a vote
        self.tallied = False  # this round's vote is counted
        self.over = False  # the outcome is out: nobody is awaited any more
        self.since = time.monotonic()  # when the current wait began
        s = loaded.scenario
        self.progress = _StatusProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("turns"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            status=lambda: self.status_text(markup=True),
        )
        self.task = self.progress.add_task(s.title, total=s.deal_rule.max_rounds * len(s.parties))

    def __enter__(self) -> LiveView:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def name(self, party: str) -> str:
        card = self.loaded.cards.get(party)
        if card is None:
            return escape(party)
        return f"[bold {card.color}]{escape(card.name)}[/]"

    def waiting_on(self) -> str | None:
        """The party id whose turn it is, `BALLOT` during the secret vote, or None.

        Decided when asked, not when an event comes: a turn's proposal arrives after its
        message, and only then is it known that the last turn of a round leads to a vote.
        """
        if self.over:
            return None
        if self.turns < len(self.order):
            return self.order[self.turns]
        if self.order and self.standing and not self.tallied:
            return BALLOT
        return None

    def status_text(
        self, snapshot: Snapshot | None = None, now: float | None = None, markup: bool = False
    ) -> str:
        """The status line: who is awaited, the model's progress, seconds waited; "" if nobody.

        Plain text by default (for tests and logs); `markup=True` gives rich markup with the
        party in its colour, as drawn under the bar. `snapshot` defaults to the meter's
        current one and `now` to `time.monotonic()`, so tests can pass both.
        """
        who = self.waiting_on()
        if who is None:
            return ""
        if who == BALLOT:
            head = "Secret ballot"
        else:
            card = self.loaded.cards.get(who)
            head = (self.name(who) if markup else (card.name if card else who)) + " is speaking"
        parts = [head]
        if snapshot is None and self.activity is not None:
            snapshot = self.activity.snapshot()
        if snapshot is not None and snapshot.busy:
            if snapshot.tokens:
                unit = "token" if snapshot.tokens == 1 else "tokens"
                parts.append(f"writing {snapshot.tokens} {unit}")
                if snapshot.tokens_per_s > 0:
                    parts.append(f"{snapshot.tokens_per_s:.1f} tok/s")
            elif snapshot.prompt_tokens:
                parts.append(f"reading {snapshot.prompt_tokens} tokens")
            else:
                parts.append("reading")
        waited = (time.monotonic() if now is None else now) - self.since
        parts.append(f"{max(0, int(waited))} s")
        return " · ".join(parts)

    def _follow(self, t: str, c: dict[str, Any]) -> None:
        """Update who is awaited from one event (see `waiting_on`)."""
        if t == "round":
            self.order = [str(p) for p in c.get("order", [])]
            self.turns, self.tallied = 0, False
        elif t == "message" or (t == "error" and c.get("task") == "move"):
            self.turns += 1
        else:
            self.standing |= t == "proposal"
            self.tallied |= t == "tally"
            self.over |= t == "outcome"
            return
        self.since = time.monotonic()  # a new wait begins: the next speaker's, or the ballot's

    def __call__(self, e: dict[str, Any]) -> None:
        c = e["content"]
        t = e["type"]
        self._follow(t, c)
        line: str | None = None
        if t == "round":
            line = f"\n[bold reverse] Round {e['round']} [/]"
        elif t == "inject":
            line = f"[bold yellow]⚡ {escape(c['title'])}[/]: {escape(c['text'])}"
        elif t == "message":
            line = f"{self.name(e['speaker'])}: {escape(c['text'])}"
            self.progress.advance(self.task)
        elif t == "proposal":
            pkg = ", ".join(f"{k}={v}" for k, v in c["package"].items())
            line = f"   [cyan]proposal by {self.name(e['speaker'])}[/]: {escape(pkg)}"
        elif t == "side_message":
            line = f"   [dim]side talk {self.name(e['speaker'])} → {self.name(c['to'])}: {escape(c['text'])}[/]"
        elif t == "private_note" and self.show_private:
            line = f"   [dim italic]({escape(e['speaker'])} thinks) {escape(c['reasoning'])}[/]"
        elif t == "tally":
            verdict = "[green]PASSED[/]" if c["passed"] else "[red]failed[/]"
            line = f"   vote {verdict}: accept {', '.join(c['accept']) or '-'}; reject {', '.join(c['reject']) or '-'}"
            if c["abstain"]:
                line += f"; no valid vote {', '.join(c['abstain'])}"
        elif t == "error":
            line = f"   [red]failed {c['task']} by {self.name(c['party'])}[/]: {escape(c['error'])}"
            if c["task"] == "move":
                self.progress.advance(self.task)
        elif t == "outcome":
            branch = self.loaded.scenario.branch_label(c["branch"])
            line = f"\n[bold]Outcome: {c['kind']}[/] ({escape(branch)})"
        if line is not None:
            self.progress.console.print(line, highlight=False)
        if e.get("retries"):  # the endpoint's faults, which the call got past
            kinds = ", ".join(r["kind"] for r in e["retries"])
            waited = sum(r["wait_s"] for r in e["retries"])
            self.progress.console.print(
                f"   [dim]{escape(e['speaker'])}: a request sent again after {kinds} "
                f"({waited:.1f} s waited)[/]",
                highlight=False,
            )
