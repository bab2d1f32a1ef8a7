"""outcome.json: what a session came to, read from its final graph state and event log:
the outcome, each party's score of it against its walk-away point, and what it cost
(calls, tokens, and the transport retries they needed)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..model import RetryNote, RetryTotals, Usage
from ..protocol import rules
from ..scenario import LoadedScenario
from .log import HUMAN, Outcome, PartyResult


def build_outcome(
    loaded: LoadedScenario, state: dict[str, Any], stopped_calls: Iterable[RetryNote] = ()
) -> Outcome:
    """outcome.json from the final graph state and its events; `stopped_calls`: the
    transport retries of calls that stopped the run, which no event records (the
    manifest's `failed_call_retries`)."""
    events = state["events"]
    final = next(e for e in reversed(events) if e["type"] == "outcome")["content"]
    standing = state.get("standing")
    last_proposal = dict(standing["package"]) if standing else None
    package = final["package"]
    scored = {k: v for k, v in package.items() if v is not None}
    if final["kind"] != "deal" and last_proposal:
        scored = last_proposal
    ballots = (state.get("votes") or {}).get("ballots", {})
    parties = {}
    for pid, card in loaded.cards.items():
        sc = rules.score(card.scores, scored)
        parties[pid] = PartyResult(
            score=sc, threshold=card.threshold, margin=sc - card.threshold, vote=ballots.get(pid)
        )
    spent = [e for e in events if e.get("usage") and e.get("call_id") != HUMAN]
    usage = Usage.total(e["usage"] for e in spent)
    failed = [e for e in events if e["type"] == "error" and not any(e is s for s in spent)]
    calls = sum(e["content"].get("attempts", 1) for e in spent + failed)
    return Outcome(
        kind=final["kind"],
        stopped=final.get("stopped"),
        branch=final["branch"],
        deal_round=final["deal_round"],
        package=package,
        last_proposal=last_proposal,
        parties=parties,
        rounds_used=state["round"],
        calls=calls,
        failed_turns=sum(e["type"] == "error" for e in events),
        usage=usage,
        transport_retries=RetryTotals.of(
            [*(r for e in events for r in e.get("retries") or ()), *stopped_calls]
        ),
    )
