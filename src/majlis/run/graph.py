"""The negotiation protocol as a langgraph StateGraph.

    facilitator -> turn -> turn ... -> vote -> adjudicate -> facilitator (next round) | end

The facilitator opens a round and announces its injects; each party takes a turn in order;
everyone votes in secret on the standing proposal; adjudication applies the deal rule.
Rules live in `rules`, prompts in `prompting`, model calls in `client`: nodes only wire them.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel

from ..errors import ModelBehaviourError
from ..model import Answer, ModelClient
from ..protocol import rules
from ..protocol.moves import (
    CompactVote,
    Vote,
    canonical_move,
    canonical_vote,
    compact_move_model,
    move_model,
    strict_schema,
)
from ..protocol.prompting import PartyPrompter
from ..scenario.load import LoadedScenario


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


@dataclass
class Deps:
    """What nodes need that is not state: never checkpointed."""

    loaded: LoadedScenario
    prompters: dict[str, PartyPrompter]
    clients: dict[str, ModelClient]
    moves: dict[str, tuple[type[BaseModel], dict[str, Any]]] = field(default_factory=dict)

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


class _Events:
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


def _failed(ev: _Events, party: str, task: str, exc: ModelBehaviourError) -> None:
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


async def facilitator(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    s = runtime.context.scenario
    ev = _Events(state)
    ev.round = state["round"] + 1
    rounds = s.deal_rule.max_rounds
    order = rules.turn_order(s, ev.round)
    ev.add(
        "round",
        "facilitator",
        "all",
        {"text": f"Round {ev.round} of {rounds} begins.", "order": order},
    )
    for inject in s.injects:
        if inject.round == ev.round:
            ev.add(
                "inject",
                "facilitator",
                "all",
                {"id": inject.id, "title": inject.title, "text": inject.text},
            )
    return {"round": ev.round, "order": order, "turn": 0, "events": ev.items}


async def turn(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    d = runtime.context
    party = state["order"][state["turn"]]
    model, schema = d.move_for(party)
    messages = d.prompters[party].messages(
        "move", state["events"], state["round"], state["standing"]
    )
    ev = _Events(state)
    update: dict[str, Any] = {"turn": state["turn"] + 1}
    try:
        answer = await d.clients[party].ask(messages, model, schema)
    except ModelBehaviourError as exc:
        _failed(ev, party, "move", exc)
        return {**update, "events": ev.items}
    data = canonical_move(answer.value)
    note: dict[str, Any] = {"reasoning": data["private_reasoning"]}
    if data["private_positions"] is not None:
        note["private_positions"] = data["private_positions"]
    ev.add("private_note", party, [party], note, answer, first_of_call=True)
    ev.add(
        "message",
        party,
        "all",
        {"text": data["public_message"], "positions": data["positions"]},
        answer,
    )
    if data["side_message"]:
        to = data["side_message"]["to"]
        ev.add(
            "side_message",
            party,
            [party, to],
            {"to": to, "text": data["side_message"]["text"]},
            answer,
        )
    if data["proposal"]:
        seq = ev.add("proposal", party, "all", {"package": data["proposal"]}, answer)
        update["standing"] = {"by": party, "package": data["proposal"], "seq": seq}
    update["positions"] = {**state["positions"], party: data["positions"]}
    return {**update, "events": ev.items}


async def vote(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    d = runtime.context
    standing = state["standing"]
    assert standing is not None
    parties = list(d.scenario.parties)

    async def ballot(party: str) -> Answer[Any] | ModelBehaviourError:
        messages = d.prompters[party].messages("vote", state["events"], state["round"], standing)
        try:
            return await d.clients[party].ask(messages, *d.vote_for(party))
        except ModelBehaviourError as exc:
            return exc

    # people vote first: their interrupt re-runs this node, which must not repeat model calls
    humans = [p for p in parties if getattr(d.clients[p], "is_human", False)]
    got = {p: await ballot(p) for p in humans}
    machines = [p for p in parties if p not in got]
    got |= dict(zip(machines, await asyncio.gather(*(ballot(p) for p in machines)), strict=True))
    answers = [got[p] for p in parties]
    ev = _Events(state)
    ballots: dict[str, str | None] = {}
    for party, answer in zip(parties, answers, strict=True):
        if isinstance(answer, ModelBehaviourError):
            _failed(ev, party, "vote", answer)
            ballots[party] = None
            continue
        cast = canonical_vote(answer.value)
        ev.add(
            "private_note", party, [party], {"reasoning": cast["private_reasoning"]}, answer, True
        )
        ballots[party] = cast["vote"]
    for party in parties:  # ballots are secret until all are in, then the room sees them
        if ballots[party] is not None:
            ev.add("vote", party, "all", {"vote": ballots[party], "proposal_seq": standing["seq"]})
    votes = {"round": state["round"], "proposal_seq": standing["seq"], "ballots": ballots}
    return {"events": ev.items, "votes": votes}


async def adjudicate(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    s = runtime.context.scenario
    ev = _Events(state)
    update: dict[str, Any] = {}
    votes = state["votes"]
    if votes and votes["round"] == state["round"]:
        ballots = votes["ballots"]
        passed = rules.deal_passes({p: b == "accept" for p, b in ballots.items()}, s.deal_rule)
        ev.add(
            "tally",
            "facilitator",
            "all",
            {
                "proposal_seq": votes["proposal_seq"],
                "passed": passed,
                "accept": [p for p, b in ballots.items() if b == "accept"],
                "reject": [p for p, b in ballots.items() if b == "reject"],
                "abstain": [p for p, b in ballots.items() if b is None],
            },
        )
        if passed:
            update["deal_round"] = state["round"]
    update["done"] = "deal_round" in update or state["round"] >= s.deal_rule.max_rounds
    return {**update, "events": ev.items}


async def end(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    s = runtime.context.scenario
    deal = state["deal_round"] is not None
    if deal and state["standing"]:
        agreed: dict[str, str | None] = dict(state["standing"]["package"])
    else:
        agreed = rules.issue_agreement(state["positions"], s)
    kind = rules.outcome_kind(deal, agreed)
    ev = _Events(state)
    ev.add(
        "outcome",
        "facilitator",
        "all",
        {
            "kind": kind,
            "branch": rules.classify_branch(s, kind, agreed),
            "package": agreed,
            "deal_round": state["deal_round"],
            "stopped": state.get("stopped"),
        },
    )
    return {"events": ev.items}


# The routers are async only so that langgraph calls them on the loop: a plain function it
# would hand to a worker thread at every step.
async def _after_turn(state: State) -> str:
    if state["turn"] < len(state["order"]):
        return "turn"
    return "vote" if state["standing"] else "adjudicate"


async def _after_adjudicate(state: State) -> str:
    return "end" if state["done"] else "facilitator"


_COMPILED: Any = None


def build_graph(checkpointer: Any = None) -> Any:
    """The compiled protocol with this checkpointer (compiled once per process, then copied)."""
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = _compile()
    return _COMPILED.copy({"checkpointer": checkpointer})


def _compile() -> Any:
    g = StateGraph(State, context_schema=Deps)
    g.add_node("facilitator", facilitator)
    g.add_node("turn", turn)
    g.add_node("vote", vote)
    g.add_node("adjudicate", adjudicate)
    g.add_node("end", end)
    g.add_edge(START, "facilitator")
    g.add_edge("facilitator", "turn")
    g.add_conditional_edges("turn", _after_turn, ["turn", "vote", "adjudicate"])
    g.add_edge("vote", "adjudicate")
    g.add_conditional_edges("adjudicate", _after_adjudicate, ["facilitator", "end"])
    g.add_edge("end", END)
    return g.compile()
