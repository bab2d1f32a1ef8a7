"""Red lines: a party proposing, or voting for, a package that holds one of its own."""

from __future__ import annotations

from typing import Any

from ...scenario import LoadedScenario
from .base import Finding


def red_lines(loaded: LoadedScenario, events: list[dict[str, Any]]) -> list[Finding]:
    """Proposing, or voting to accept, a package holding one of the party's own red lines."""
    packages = {e["seq"]: e["content"]["package"] for e in events if e["type"] == "proposal"}
    found = []
    for e in events:
        if e["type"] == "proposal":
            package = e["content"]["package"]
        elif e["type"] == "vote" and e["content"]["vote"] == "accept":
            package = packages.get(e["content"]["proposal_seq"], {})
        else:
            continue
        card = loaded.cards.get(e["speaker"])
        for rl in card.red_lines if card else []:
            if package.get(rl.issue) == rl.option:
                verb = "proposed" if e["type"] == "proposal" else "accepted"
                found.append(
                    Finding(
                        kind="red_line",
                        party=card.id,
                        seq=e["seq"],
                        detail=f"{verb} {rl.issue}={rl.option}",
                    )
                )
    return found
