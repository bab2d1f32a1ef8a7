"""Which injects the facilitator announces at the start of a round.

An inject is set for a fixed round, or fires on a condition: no proposal by some round, a
party's margin on the standing proposal under a value, a red line crossed by the standing
proposal, a number of failed votes. Conditions are read from the record at the start of a
round (what happened in the rounds before it), and a conditional inject fires once.

Why one fired is not written into its event: the event is public, every party reads it,
and "Washington's margin fell under 2" would tell the room something of Washington's
hidden scores. The facilitator can ask `reasons` with the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..scenario import Inject, InjectWhen, LoadedScenario
from .rules import red_line_hits, score


def due(
    loaded: LoadedScenario,
    round_no: int,
    events: list[dict[str, Any]],
    standing: Mapping[str, Any] | None,
) -> list[Inject]:
    """The injects to announce at the start of `round_no`, in the scenario's order."""
    fired = {e["content"].get("id") for e in events if e["type"] == "inject"}
    out: list[Inject] = []
    for inject in loaded.scenario.injects:
        if inject.round is not None:
            fires = inject.round == round_no
        else:
            fires = (
                round_no >= 2
                and inject.id not in fired
                and inject.when is not None
                and reasons(inject.when, loaded, round_no, events, standing) is not None
            )
        if fires:
            out.append(inject)
    return out


def reasons(
    when: InjectWhen,
    loaded: LoadedScenario,
    round_no: int,
    events: list[dict[str, Any]],
    standing: Mapping[str, Any] | None,
) -> str | None:
    """Why the condition holds at the start of `round_no`, in words; None if any part of
    it does not."""
    said: list[str] = []
    package = (standing or {}).get("package")
    if when.no_proposal_by is not None:
        proposed = any(
            e["type"] == "proposal" and e["round"] <= when.no_proposal_by for e in events
        )
        if proposed or round_no <= when.no_proposal_by:
            return None
        said.append(f"no proposal by round {when.no_proposal_by}")
    if when.margin_below is not None:
        who, below = when.margin_below.party, when.margin_below.value
        if package is None:
            return None
        card = loaded.cards[who]
        margin = score(card.scores, package) - card.threshold
        if margin >= below:
            return None
        said.append(f"the standing proposal leaves {who} at a margin of {margin:+d}")
    if when.red_line_crossed is not None:
        if package is None:
            return None
        who = when.red_line_crossed
        parties = loaded.scenario.parties if who == "any" else [who]
        crossed = [
            p
            for p in parties
            if red_line_hits([(r.issue, r.option) for r in loaded.cards[p].red_lines], package)
        ]
        if not crossed:
            return None
        said.append(f"the standing proposal crosses a red line of {', '.join(crossed)}")
    if when.votes_failed is not None:
        failed = sum(e["type"] == "tally" and not e["content"].get("passed") for e in events)
        if failed < when.votes_failed:
            return None
        said.append(f"{failed} vote(s) failed")
    return "; ".join(said)
