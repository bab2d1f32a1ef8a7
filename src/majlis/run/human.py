"""Trainee play: a person plays one party from the terminal, through a langgraph interrupt.

`HumanClient` stands where a model client stands. Its `ask` pauses the graph with the very
messages the party's agent would get; the command line shows them, collects the move,
validates it, and resumes the graph with it. The graph never knows a person is playing.
"""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic import BaseModel, ValidationError

from ..errors import ModelBehaviourError
from ..model import Answer, Backend, ModelConfig, Reply, Usage
from .log import HUMAN


class HumanClient:
    """A 'model client' whose answers come from a person via `interrupt`."""

    is_human = True

    def __init__(self, party: str) -> None:
        self.party = party
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
    """Asks a trainee for a move or a vote, showing what their party's agent would see."""

    def __init__(self, echo: Any = click.echo) -> None:
        self.echo = echo
        self.shown_system = False
        self.seen: set[int] = set()

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        system, user = payload["messages"][0]["content"], payload["messages"][-1]["content"]
        if not self.shown_system:
            self.echo(
                f"\n===== You play {payload['party']}. Your brief (no one else sees it) =====\n{system}\n"
            )
            self.shown_system = True
        self._show_record(user)
        self.echo(user.split("</record>", 1)[1].strip() + "\n")
        return self._vote(payload) if payload["task"] == "vote" else self._move(payload)

    def _show_record(self, user: str) -> None:
        record = user.split("<record>", 1)[1].split("</record>", 1)[0]
        for line in record.splitlines():
            if not line.strip():
                continue
            e = json.loads(line)
            if e["seq"] in self.seen:
                continue
            self.seen.add(e["seq"])
            who = e.get("from", "facilitator")
            body = {k: v for k, v in e.items() if k not in ("seq", "round", "type", "from")}
            self.echo(
                f"  [{e['seq']}] round {e['round']} {e['type']} {who}: {json.dumps(body, ensure_ascii=False)}"
            )

    def _pick(self, title: str, options: list[str], default: str | None = None) -> str:
        listing = ", ".join(f"{i + 1}={o}" for i, o in enumerate(options))
        while True:
            answer = click.prompt(f"{title} [{listing}]", default=default or options[0]).strip()
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
            issue: self._pick(f"{label} on {issue}", spec["enum"], (defaults or {}).get(issue))
            for issue, spec in props.items()
        }

    def _move(self, payload: dict[str, Any]) -> dict[str, Any]:
        props = payload["schema"]["properties"]
        package_schema = props["positions"]
        turn = json.loads(payload["messages"][-1]["content"].split("<turn>")[1].split("</turn>")[0])
        standing = turn.get("standing_proposal")
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
        vote = self._pick("Your secret vote", ["accept", "reject"])
        reasoning = click.prompt("Why (only you see it)", default="", show_default=False)
        return {"private_reasoning": reasoning, "vote": vote}
