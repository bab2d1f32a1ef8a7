"""A session's spans: the session, each round, and each turn and vote, under which the
model layer's call spans nest (see `majlis.tracing` for when tracing is on at all).

    majlis.session > majlis.round > majlis.turn | majlis.vote > chat MODEL

A round is no node of the graph (it runs from the facilitator to the adjudication), so its
span is held here, on the session's `SessionTrace`, which rides in the graph's `Deps`; the
nodes are wrapped at compile time (`traced_node`), leaving the protocol's code as it is.

What a span may hold: the run's id, scenario, variant and seed, a round's number, a turn's
party and the sequence numbers of the events it made, whether it failed, an outcome's kind
and the number of events; with `MAJLIS_TRACE_CONTENT=1`, also a turn's public message.
Never a private note, private positions, a side message, a brief, a score or a threshold:
every party's spans are in one trace, and whoever reads it could read them.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from .. import tracing

Node = Callable[[Any, Any], Awaitable[dict[str, Any]]]


class SessionTrace:
    """The open spans of one session: its own and the current round's (None when off); the
    context a turn's or vote's span starts in (the round's, else the session's), built
    once per round rather than once per turn; and the round's model calls, whose spans are
    made together when it ends (see `tracing.over`)."""

    def __init__(self, span: Any = None) -> None:
        self.span = span
        self.round: Any = None
        self.under: Any = tracing.within(span)
        self.calls: Any = None if span is None else tracing.Held()

    @classmethod
    def begin(cls, manifest: Any, fresh: bool) -> SessionTrace:
        """The session's span, a child of whatever span is current (a sweep's)."""
        attrs = {
            "majlis.run_id": manifest.run_id,
            "majlis.scenario": manifest.scenario.get("id"),
            "majlis.variant": manifest.variant,
            "majlis.seed": manifest.seed,
            "majlis.rounds": manifest.rounds,
            "majlis.parties": list(manifest.parties),
            "majlis.resumed": not fresh,
        }
        return cls(tracing.start("majlis.session", tracing.attributes(attrs)))

    def begin_round(self, number: int) -> None:
        if self.span is None:
            return
        self.end_round()
        self.round = tracing.start("majlis.round", {"majlis.round": number}, self.span)
        self.under = tracing.within(self.round)
        self.calls = tracing.Held()

    def end_round(self) -> None:
        """The round's call spans made, then the round's own ended."""
        if self.calls:
            self.calls.make()
        if self.round is not None:
            self.round.end()
            self.round = None
            self.under = tracing.within(self.span)

    def close(self, exc: BaseException | None = None, outcome: Any = None) -> None:
        """End the open round and the session: failed by the error's type, or with the
        outcome's public facts (its kind, rounds used, calls made)."""
        if self.span is None:
            return
        self.end_round()
        if exc is not None:
            tracing.failed(self.span, exc)
        elif outcome is not None:
            self.span.set_attributes(
                {
                    "majlis.outcome": outcome.kind,
                    "majlis.rounds_used": outcome.rounds_used,
                    "majlis.calls": outcome.calls,
                }
            )
        self.span.end()
        self.span = self.under = self.calls = None


def traced_node(kind: str, node: Node) -> Node:
    """The graph node `node` with its spans: `facilitator` opens a round, `adjudicate`
    closes it, `turn` and `vote` run inside a span of their own under the round, current
    there so that the model calls the node makes nest under it."""
    name = f"majlis.{kind}"

    @functools.wraps(node)
    async def wrapped(state: Any, runtime: Any) -> dict[str, Any]:
        trace: SessionTrace = runtime.context.trace
        if trace.span is None:
            return await node(state, runtime)
        if kind == "facilitator":
            trace.begin_round(state["round"] + 1)
        if kind not in ("turn", "vote"):
            update = await node(state, runtime)
            if kind == "adjudicate":
                trace.end_round()
            return update
        attrs = {"majlis.round": state["round"]}
        if kind == "turn":
            attrs["majlis.party"] = state["order"][state["turn"]]
        with tracing.Current(tracing.start(name, attrs, within=trace.under), trace.calls) as span:
            update = await node(state, runtime)
            made = _made(update.get("events"))
            if made and span is not None:
                span.set_attributes(made)
        return update

    return wrapped


def _made(events: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """What a span may say of the events its node made: their sequence numbers, whether a
    turn failed, and (if asked for) the public message: no other content."""
    if not events:
        return None
    out: dict[str, Any] = {
        "majlis.seq.first": events[0]["seq"],
        "majlis.seq.last": events[-1]["seq"],
    }
    if any(e["type"] == "error" for e in events):
        out["majlis.failed"] = True
    if tracing.content():
        said = [e["content"]["text"] for e in events if e["type"] == "message"]
        if said:
            out["majlis.public_message"] = said[0]
    return out
