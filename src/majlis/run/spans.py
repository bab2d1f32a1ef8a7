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
    """The open spans of one session: its own and the current round's (None when off)."""

    def __init__(self, span: Any = None) -> None:
        self.span = span
        self.round: Any = None

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
        return cls(tracing.start("majlis.session", attrs))

    def begin_round(self, number: int) -> None:
        if self.span is None:
            return
        self.end_round()
        self.round = tracing.start("majlis.round", {"majlis.round": number}, parent=self.span)

    def end_round(self) -> None:
        if self.round is not None:
            self.round.end()
            self.round = None

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
        self.span = None


def traced_node(kind: str, node: Node) -> Node:
    """The graph node `node` with its spans: `facilitator` opens a round, `adjudicate`
    closes it, `turn` and `vote` run inside a span of their own under the round."""

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
        with tracing.span(f"majlis.{kind}", attrs, parent=trace.round or trace.span) as span:
            update = await node(state, runtime)
            span.set_attributes(_made(update.get("events") or []))
        return update

    return wrapped


def _made(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What a span may say of the events its node made: their sequence numbers, whether a
    turn failed, and (if asked for) the public message: no other content."""
    if not events:
        return {}
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
