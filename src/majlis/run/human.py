"""Trainee play: a person plays one party from the terminal, through a langgraph interrupt.

`HumanClient` stands where a model client stands. Its `ask` pauses the graph with the very
messages the party's agent would get, and the party's brief in plain words; the terminal
shows the brief and the record as a person reads them (never the raw prompt and its JSON),
collects the move, asks for confirmation before a vote or a proposal that goes under the
person's walk-away point or across a red line, and resumes the graph with the move. The
graph never knows a person is playing.
"""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic import BaseModel, ValidationError

from ..errors import ModelBehaviourError, UserError
from ..model import Answer, Backend, ModelConfig, Reply, Usage
from ..protocol import Briefing, briefing_text, record_line
from .log import HUMAN


class HumanClient:
    """A 'model client' whose answers come from a person via `interrupt`."""

    is_human = True

    def __init__(self, party: str, brief: Briefing | None = None) -> None:
        self.party = party
        self.brief = brief
        self.config = ModelConfig(model=HUMAN, temperature=0)
        self.backend = Backend()

    async def ask(
        self, messages: list[dict[str, str]], output: type[BaseModel], schema: dict[str, Any]
    ) -> Answer:
        # imported here, not at the top: the command line imports Terminal when it starts
        from langgraph.types import interrupt

        raw = interrupt(
            {
                "party": self.party,
                "task": output.__name__.lower(),
                "messages": messages,
                "schema": schema,
                "briefing": self.brief.model_dump() if self.brief else None,
            }
        )
        try:
            value = output.model_validate(raw)
        except ValidationError as exc:
            raise ModelBehaviourError(
                f"invalid move from the human player: {exc.errors()[0]['msg']}",
                raw=json.dumps(raw),
                attempts=1,
            ) from None
        reply = Reply(json.dumps(raw), Usage(), HUMAN, 0.0, HUMAN)
        return Answer(value=value, reply=reply, attempts=1, usage=Usage())


class Terminal:
    """Asks a trainee for a move or a vote: their brief and the record in plain words, then
    the questions; a risky vote or proposal is confirmed first."""

    def __init__(self, echo: Any = click.echo) -> None:
        self.echo = echo
        self.shown_system = False
        self.seen: set[int] = set()
        self.brief: Briefing | None = None

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        system, user = payload["messages"][0]["content"], payload["messages"][-1]["content"]
        if payload.get("briefing"):
            self.brief = Briefing.model_validate(payload["briefing"])
        if not self.shown_system:
            text = briefing_text(self.brief) if self.brief else system
            self.echo(f"\n===== Your brief (no one else sees it) =====\n{text}\n")
            self.shown_system = True
        self._show_record(user)
        self._show_turn(user, payload["task"])
        try:
            return self._vote(payload) if payload["task"] == "vote" else self._move(payload)
        except click.Abort:  # the input ended (a closed stdin, Ctrl-D): no answer will come
            self.echo("")
            raise UserError(f"the input ended before an answer for {payload['party']}") from None

    def _show_record(self, user: str) -> None:
        record = user.split("<record>", 1)[1].split("</record>", 1)[0]
        for line in record.splitlines():
            if not line.strip():
                continue
            e = json.loads(line)
            seq = e.get("seq")
            if seq is not None and seq in self.seen:
                continue
            if seq is not None:
                self.seen.add(seq)
            if self.brief is not None:
                self.echo("  " + record_line(self.brief, e))
                continue
            who = e.get("from", "facilitator")
            body = {k: v for k, v in e.items() if k not in ("seq", "round", "type", "from")}
            self.echo(f"  [{seq}] round {e['round']} {e['type']} {who}: {json.dumps(body)}")

    def _show_turn(self, user: str, task: str) -> None:
        """Where the talks stand, in words: the round, and the package on the table with
        what it is worth to this person."""
        turn = turn_block(user)
        if self.brief is None or not turn:
            self.echo(user.split("</record>", 1)[-1].strip() + "\n")
            return
        what = "your secret vote" if task == "vote" else "your turn"
        self.echo(f"\nRound {turn.get('round')} of {turn.get('max_rounds')}: {what}.")
        standing = turn.get("standing_proposal")
        if standing:
            words = "; ".join(self.brief.label(i, o) for i, o in standing.items())
            self.echo(
                f"On the table: {words}. Worth {self.brief.value(standing)} to you "
                f"(walk-away {self.brief.threshold})."
            )

    def _confirm_risky(self, package: dict[str, Any] | None, doing: str) -> bool:
        """True to go on; asks first when the package is under the walk-away point or
        across a red line (the default answer is no)."""
        if self.brief is None or not package:
            return True
        warnings = self.brief.warnings(package)
        if not warnings:
            return True
        self.echo(f"  careful: {'; and '.join(warnings)}.")
        return click.confirm(f"  {doing} all the same?", default=False)

    def _pick(self, title: str, options: list[str], default: str | None = None) -> str:
        """One of `options`, by name or number; with no default, Enter alone is asked again."""
        listing = ", ".join(f"{i + 1}={o}" for i, o in enumerate(options))
        while True:
            answer = click.prompt(f"{title} [{listing}]", default=default).strip()
            if answer in options:
                return answer
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return options[int(answer) - 1]
            self.echo(f"  please answer with one of: {listing}")

    def _package(
        self, schema: dict[str, Any], label: str, defaults: dict[str, str] | None
    ) -> dict[str, str]:
        props = schema["properties"]
        return {
            issue: self._pick(
                f"{label} on {issue}", spec["enum"], (defaults or {}).get(issue) or spec["enum"][0]
            )
            for issue, spec in props.items()
        }

    def _move(self, payload: dict[str, Any]) -> dict[str, Any]:
        props = payload["schema"]["properties"]
        package_schema = props["positions"]
        standing = turn_block(payload["messages"][-1]["content"]).get("standing_proposal")
        while True:
            reasoning = click.prompt(
                "Private reasoning (only you see it)", default="", show_default=False
            )
            positions = self._package(package_schema, "Your public position", standing)
            same = click.confirm("Is that also what you privately want?", default=True)
            private = (
                positions
                if same
                else self._package(package_schema, "What you privately want", positions)
            )
            message = click.prompt("Your public message to the room").strip()
            proposal = None
            if click.confirm("Put a package to the vote?", default=False):
                proposal = (
                    positions
                    if click.confirm("Propose your public positions?", default=True)
                    else (self._package(package_schema, "Proposal", positions))
                )
                if not self._confirm_risky(proposal, "Propose it"):
                    proposal = None
            side = None
            if click.confirm("Send a private side message?", default=False):
                recipients = props["side_message"]["anyOf"][0]["properties"]["to"]["enum"]
                side = {
                    "to": self._pick("To whom", recipients),
                    "text": click.prompt("Side message").strip(),
                }
            move = {
                "private_reasoning": reasoning,
                "private_positions": private,
                "public_message": message,
                "positions": positions,
                "proposal": proposal,
                "side_message": side,
            }
            if message:
                return move
            self.echo("  the public message cannot be empty")

    def _vote(self, payload: dict[str, Any]) -> dict[str, Any]:
        """No default: Enter alone never accepts a package. Accepting one under the walk-away
        point or across a red line is confirmed first; a no is a reject."""
        standing = turn_block(payload["messages"][-1]["content"]).get("standing_proposal")
        vote = self._pick("Your secret vote", ["accept", "reject"])
        if vote == "accept" and not self._confirm_risky(standing, "Accept it"):
            vote = "reject"
            self.echo("  you vote reject.")
        reasoning = click.prompt("Why (only you see it)", default="", show_default=False)
        return {"private_reasoning": reasoning, "vote": vote}


def turn_block(user: str) -> dict[str, Any]:
    """The <turn> block of a move or vote prompt, as data ({} if there is none)."""
    if "<turn>" not in user:
        return {}
    return json.loads(user.split("<turn>", 1)[1].split("</turn>", 1)[0])
