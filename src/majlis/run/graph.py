"""The negotiation protocol as a langgraph StateGraph.

    facilitator -> turn -> turn ... -> vote -> adjudicate -> facilitator (next round) | end

The facilitator opens a round and announces its injects (set for the round, or whose
condition now holds: `protocol.injects`); each party takes a turn in order;
everyone votes in secret on the standing proposal; adjudication applies the deal rule.
A budget that runs out in the middle of a turn or a vote ends the session from there, the
spent attempts recorded (one that runs out before a call is the session's to stop).
Rules live in `rules`, prompts in `prompting`, model calls in `client`: nodes only wire them.
What the nodes pass and are handed (State, Deps, the event numbering) is in `state.py`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from ..errors import BudgetExceeded, ModelBehaviourError
from ..model import Answer, RetryNote, noting_retries
from ..protocol import canonical_move, canonical_vote, injects, rules
from .spans import traced_node
from .state import Deps, NodeEvents, State, budget_stop, failed_turn


async def facilitator(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    s = runtime.context.scenario
    ev = NodeEvents(state)
    ev.round = state["round"] + 1
    rounds = s.deal_rule.max_rounds
    order = rules.turn_order(s, ev.round)
    ev.add(
        "round",
        "facilitator",
        "all",
        {"text": f"Round {ev.round} of {rounds} begins.", "order": order},
    )
    for inject in injects.due(runtime.context.loaded, ev.round, state["events"], state["standing"]):
        content = {"id": inject.id, "title": inject.title, "text": inject.text}
        ev.add("inject", "facilitator", "all", content)
    await _live(state, runtime.context, ev)
    return {"round": ev.round, "order": order, "turn": 0, "events": ev.items}


async def _live(state: State, d: Deps, ev: NodeEvents) -> list[dict[str, Any]]:
    """In a live session: wait while the facilitator pauses, then write the injects they
    pushed into the record (each once), so the prompts this node makes carry them. Returns
    the log as the node's prompts should read it."""
    if d.live is not None:
        await d.live.gate()
        written = {e["content"].get("id") for e in [*state["events"], *ev.items]}
        for inject in d.live.news():
            if inject["id"] not in written:
                ev.add("inject", "facilitator", "all", inject)
    return [*state["events"], *ev.items] if ev.items else state["events"]


async def turn(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    d = runtime.context
    party = state["order"][state["turn"]]
    model, schema = d.move_for(party)
    ev = NodeEvents(state)
    log = await _live(state, d, ev)
    messages = d.prompters[party].messages("move", log, state["round"], state["standing"])
    update: dict[str, Any] = {"turn": state["turn"] + 1}
    with noting_retries() as retries:
        try:
            answer = await d.clients[party].ask(messages, model, schema)
        except ModelBehaviourError as exc:
            failed_turn(ev, party, "move", exc)
            ev.retried(retries)
            if exc.stopped:  # the budget ran out between attempts: what they spent is recorded
                update["stopped"] = exc.stopped
            return {**update, "events": ev.items}
    data = canonical_move(answer.value)
    note: dict[str, Any] = {"reasoning": data["private_reasoning"]}
    if data["private_positions"] is not None:
        note["private_positions"] = data["private_positions"]
    ev.add("private_note", party, [party], note, answer, first_of_call=True)
    ev.retried(retries)
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
    ev = NodeEvents(state)
    log = await _live(state, d, ev)

    Ballot = Answer[Any] | ModelBehaviourError | BudgetExceeded

    async def ballot(party: str) -> tuple[Ballot, list[RetryNote]]:
        messages = d.prompters[party].messages("vote", log, state["round"], standing)
        with noting_retries() as retries:
            try:
                return await d.clients[party].ask(messages, *d.vote_for(party)), retries
            except (ModelBehaviourError, BudgetExceeded) as exc:  # the others' ballots count
                return exc, retries

    # people vote first: their interrupt re-runs this node, which must not repeat model calls
    humans = [p for p in parties if getattr(d.clients[p], "is_human", False)]
    got = {p: await ballot(p) for p in humans}
    machines = [p for p in parties if p not in got]
    got |= dict(zip(machines, await asyncio.gather(*(ballot(p) for p in machines)), strict=True))
    ballots: dict[str, str | None] = {}
    answers = [got[p][0] for p in parties]
    for party in parties:
        answer, retries = got[party]
        if isinstance(answer, BudgetExceeded):  # asked nothing: nothing to record
            continue
        if isinstance(answer, ModelBehaviourError):
            failed_turn(ev, party, "vote", answer)
            ev.retried(retries)
            ballots[party] = None
            continue
        cast = canonical_vote(answer.value)
        ev.add(
            "private_note", party, [party], {"reasoning": cast["private_reasoning"]}, answer, True
        )
        ev.retried(retries)
        ballots[party] = cast["vote"]
    stopped = budget_stop(answers)
    if stopped:  # no vote is held, but what its ballots cost is on the record
        return {"events": ev.items, "stopped": stopped}
    for party in parties:  # ballots are secret until all are in, then the room sees them
        if ballots[party] is not None:
            ev.add("vote", party, "all", {"vote": ballots[party], "proposal_seq": standing["seq"]})
    votes = {"round": state["round"], "proposal_seq": standing["seq"], "ballots": ballots}
    return {"events": ev.items, "votes": votes}


async def adjudicate(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    s = runtime.context.scenario
    ev = NodeEvents(state)
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
    update["done"] = (
        "deal_round" in update
        or bool(state.get("stopped"))
        or state["round"] >= s.deal_rule.max_rounds
    )
    return {**update, "events": ev.items}


async def end(state: State, runtime: Runtime[Deps]) -> dict[str, Any]:
    s = runtime.context.scenario
    deal = state["deal_round"] is not None
    if deal and state["standing"]:
        agreed: dict[str, str | None] = dict(state["standing"]["package"])
    else:
        agreed = rules.issue_agreement(state["positions"], s)
    kind = rules.outcome_kind(deal, agreed)
    ev = NodeEvents(state)
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
    if state.get("stopped"):  # a budget ran out during the turn
        return "adjudicate"
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
    for node in (facilitator, turn, vote, adjudicate):  # each with its spans, if traced
        g.add_node(node.__name__, traced_node(node.__name__, node))
    g.add_node("end", end)
    g.add_edge(START, "facilitator")
    g.add_edge("facilitator", "turn")
    g.add_conditional_edges("turn", _after_turn, ["turn", "vote", "adjudicate"])
    g.add_edge("vote", "adjudicate")
    g.add_conditional_edges("adjudicate", _after_adjudicate, ["facilitator", "end"])
    g.add_edge("end", END)
    return g.compile()
