"""What a session's graph carries from node to node, and what it is handed beside that.

- `State`: the checkpointed values, with the event log on its own channel (`_events_channel`)
  so that a checkpoint stores each step's new events, not the whole log again.
- `Deps`: the scenario, prompters and clients: never checkpointed, rebuilt on resume.
- `NodeEvents`: numbers the events one node makes, continuing the log; `failed_turn`
  records a turn the model could not play, with what its attempts cost.

These are kept apart from `graph.py` so that the graph module is the protocol alone (its
nodes, routers and edges), readable in one screen; the data they pass is defined here.
"""

from __future__ import annotations

import importlib.metadata
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, TypedDict

from pydantic import BaseModel

from ..errors import BudgetExceeded, ModelBehaviourError
from ..model import Answer, ModelClient, RetryNote
from ..protocol import (
    CompactVote,
    PartyPrompter,
    Vote,
    compact_move_model,
    move_model,
    strict_schema,
)
from ..scenario import LoadedScenario
from .spans import SessionTrace


def _append(log: list[dict[str, Any]], batches: Sequence[list[dict[str, Any]]]) -> list:
    """The event log's reducer: each step's new events go on the end."""
    out = list(log)
    for batch in batches:
        out.extend(batch)
    return out


def _events_channel() -> Any:
    """How the event log is checkpointed.

    langgraph's sqlite saver stores every channel's whole value in every checkpoint, so a
    plain list reducer writes the whole log again at each step: O(n^2) bytes over a session
    (2 MB of checkpoints for an 87 kB six-round transcript). A DeltaChannel stores only
    each step's new events (the step's writes, which are saved anyway) plus a full snapshot
    every 100 updates, and rebuilds the log from them on resume; it reads checkpoints made
    the old way too. It is marked beta and was fixed up to langgraph 1.2.18, so older
    versions keep the plain reducer.
    """
    try:
        from langgraph.channels import DeltaChannel
    except ImportError:  # langgraph < 1.2
        return operator.add
    version = tuple(int(x) for x in re.findall(r"\d+", importlib.metadata.version("langgraph"))[:3])
    return DeltaChannel(_append) if version >= (1, 2, 18) else operator.add


class State(TypedDict):
    round: int
    order: list[str]  # who speaks this round, in turn
    turn: int
    events: Annotated[list[dict[str, Any]], _events_channel()]  # the whole log, in seq order
    standing: dict[str, Any] | None  # {"by", "package", "seq"}
    positions: dict[str, dict[str, str]]  # each party's latest public positions
    votes: dict[str, Any]  # {"round", "proposal_seq", "ballots": {party: "accept"|"reject"|None}}
    deal_round: int | None
    done: bool
    stopped: str | None  # why the session ended early (a budget), if it did


def initial_state() -> State:
    return State(
        round=0,
        order=[],
        turn=0,
        events=[],
        standing=None,
        positions={},
        votes={},
        deal_round=None,
        done=False,
        stopped=None,
    )


_SCHEMAS: dict[type[BaseModel], dict[str, Any]] = {}


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The strict JSON schema of a reply model, built once per process (never mutated)."""
    if model not in _SCHEMAS:
        _SCHEMAS[model] = strict_schema(model)
    return _SCHEMAS[model]


class LiveHooks(Protocol):
    """A live session's say in the graph (`run.live.LiveSession`): nodes wait at `gate`
    while the facilitator has paused, and write `news` (injects pushed now) into the record
    before they prompt anyone."""

    async def gate(self) -> None: ...

    def news(self) -> list[dict[str, str]]: ...


@dataclass
class Deps:
    """What nodes need that is not state: never checkpointed."""

    loaded: LoadedScenario
    prompters: dict[str, PartyPrompter]
    clients: dict[str, ModelClient]
    moves: dict[str, tuple[type[BaseModel], dict[str, Any]]] = field(default_factory=dict)
    trace: SessionTrace = field(default_factory=SessionTrace)  # its open spans, if traced
    live: LiveHooks | None = None

    @property
    def scenario(self):
        return self.loaded.scenario

    def move_for(self, party: str) -> tuple[type[BaseModel], dict[str, Any]]:
        """A party's Move model, in its prompt profile's shape, and its strict JSON schema,
        built once per session."""
        if party not in self.moves:
            if self.prompters[party].profile == "compact":
                scores = self.loaded.cards[party].scores
                model = compact_move_model(self.scenario, party, scores)
            else:
                model = move_model(self.scenario, party)
            self.moves[party] = (model, schema_of(model))
        return self.moves[party]

    def vote_for(self, party: str) -> tuple[type[BaseModel], dict[str, Any]]:
        model = CompactVote if self.prompters[party].profile == "compact" else Vote
        return model, schema_of(model)


class NodeEvents:
    """Numbers the events a node makes, continuing from the state's log."""

    def __init__(self, state: State) -> None:
        self.base = len(state["events"])
        self.round = state["round"]
        self.items: list[dict[str, Any]] = []

    def add(
        self,
        type_: str,
        speaker: str,
        audience: Any,
        content: dict[str, Any],
        answer: Answer[Any] | None = None,
        first_of_call: bool = False,
        round_: int | None = None,
    ) -> int:
        seq = self.base + len(self.items)
        event: dict[str, Any] = {
            "seq": seq,
            "round": self.round if round_ is None else round_,
            "type": type_,
            "speaker": speaker,
            "audience": audience,
            "content": content,
            "call_id": answer.reply.call_id if answer else None,
            "usage": None,
            "latency_ms": None,
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        if answer and first_of_call:  # a call's cost is counted once, on its first event
            event["usage"] = answer.usage.model_dump()
            event["latency_ms"] = round(answer.reply.latency_ms, 2)
            event["content"] = {**content, "attempts": answer.attempts}
        self.items.append(event)
        return seq

    def retried(self, notes: list[RetryNote]) -> None:
        """Put a call's transport retries on the event just added, its first (or the error
        that records it): each request sent again, why and after how long, so a run's cost
        and its endpoint's health can be read from the log. Nothing if there were none."""
        if notes:
            event = self.items[-1]
            ts = event.pop("ts")  # the field order of the Event model: retries, then ts
            event["retries"] = [n.model_dump() for n in notes]
            event["ts"] = ts


def failed_turn(ev: NodeEvents, party: str, task: str, exc: ModelBehaviourError) -> None:
    """The `error` event of a turn the model could not play. Its attempts were real calls:
    their summed usage (and the last one's call id and latency) goes on the event, as an
    answer's goes on its first event, so the transcript's tokens are the server's."""
    ev.add(
        "error",
        party,
        [],
        {
            "party": party,
            "task": task,
            "error": str(exc),
            "attempts": exc.attempts,
            "raw": (exc.raw or "")[:2000],
        },
    )
    if exc.attempts and exc.usage is not None:
        event = ev.items[-1]
        event["call_id"] = exc.call_id
        event["usage"] = exc.usage.model_dump()
        if exc.latency_ms is not None:
            event["latency_ms"] = round(exc.latency_ms, 2)


def budget_stop(outcomes: Sequence[object]) -> str | None:
    """Why a budget stopped the session among these calls' outcomes, if it did: a call it
    refused (BudgetExceeded), or a question it cut short between attempts."""
    for out in outcomes:
        if isinstance(out, BudgetExceeded):
            return str(out)
        if isinstance(out, ModelBehaviourError) and out.stopped:
            return out.stopped
    return None
