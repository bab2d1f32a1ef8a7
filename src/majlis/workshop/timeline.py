"""The run at a glance: injects, proposals, votes and turning points, in transcript order.

One list serves the viewer's timeline strip and the debrief's timeline chart. It is built
from the events the page may show: for participants only public events come in, and the
items that read hidden scores (which proposal every veto party could accept) or the
facilitator's tags are added for the facilitator alone.
"""

from __future__ import annotations

from typing import Any

from ..protocol import score
from ..scenario import LoadedScenario

KINDS = ("inject", "proposal", "tally", "turning_point", "tag", "outcome")


def timeline(
    loaded: LoadedScenario,
    events: list[dict[str, Any]],
    annotations: list[dict[str, Any]],
    facilitator: bool,
) -> list[dict[str, Any]]:
    """Items {seq, round, kind, label, ...}, sorted by seq; a turning point after the
    proposal it marks."""
    names = {p: c.name for p, c in loaded.cards.items()}
    rounds = {e["seq"]: e.get("round", 0) for e in events}
    items: list[dict[str, Any]] = []
    cleared = False
    for e in events:
        kind, c, seq = e.get("type"), e.get("content") or {}, e["seq"]
        at = {"seq": seq, "round": e.get("round", 0)}
        if kind == "inject":
            items.append(at | {"kind": "inject", "label": str(c.get("title") or c.get("id"))})
        elif kind == "proposal" and isinstance(c.get("package"), dict):
            who = names.get(e["speaker"], str(e["speaker"]))
            items.append(
                at | {"kind": "proposal", "party": e["speaker"], "label": f"{who} proposes"}
            )
            if facilitator and not cleared and clears_vetoes(loaded, c["package"]):
                cleared = True
                label = "first proposal every veto party could accept"
                items.append(at | {"kind": "turning_point", "label": label})
        elif kind == "tally":
            passed = bool(c.get("passed"))
            label = f"vote on #{c.get('proposal_seq')} {'passed' if passed else 'failed'}"
            items.append(at | {"kind": "tally", "passed": passed, "label": label})
        elif kind == "outcome":
            items.append(at | {"kind": "outcome", "label": f"outcome: {c.get('kind')}"})
    if facilitator:
        for a in annotations:
            if a["seq"] in rounds:
                label = a["tag"].replace("_", " ") + (f": {a['note']}" if a.get("note") else "")
                items.append(
                    {"seq": a["seq"], "round": rounds[a["seq"]], "kind": "tag", "label": label}
                )
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(items, key=lambda i: (i["seq"], order[i["kind"]]))


def clears_vetoes(loaded: LoadedScenario, package: dict[str, Any]) -> bool:
    """Would every veto party score this package at or above its walk-away point?"""
    vetoes = [p for p in loaded.scenario.deal_rule.veto if p in loaded.cards]
    return bool(vetoes) and all(
        score(loaded.cards[p].scores, package) >= loaded.cards[p].threshold for p in vetoes
    )
