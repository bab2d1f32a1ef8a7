"""The live view of a session in the terminal: one line per event, each party in its colour."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .scenario import LoadedScenario


class LiveView:
    """Prints events as they happen and keeps a progress bar of turns below them."""

    def __init__(
        self,
        loaded: LoadedScenario,
        console: Console | None = None,
        show_private: bool = False,
        progress: bool = True,
    ) -> None:
        """`progress=False` when a person types at the same terminal (no live bar under them)."""
        self.loaded = loaded
        self.live = progress
        self.console = console or Console(stderr=False)
        self.show_private = show_private
        s = loaded.scenario
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("turns"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
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

    def __call__(self, e: dict[str, Any]) -> None:
        c = e["content"]
        t = e["type"]
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
            line = f"\n[bold]Outcome: {c['kind']}[/] ({c['branch'].replace('_', ' ')})"
        if line is not None:
            self.progress.console.print(line, highlight=False)
