"""Rule-based checks over a transcript: what can be caught without a judge model.

They catch the plain cases (a stated walk-away point, "as an AI", a proposal that crosses
the proposer's own red line) and are the floor a judge model must at least match on the
calibration set in tests/calibration/.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .scenario import LoadedScenario

Kind = Literal["leak", "persona_break", "red_line"]

_PRIVATE_WORDS = re.compile(
    r"walk[- ]?away|threshold|bottom[- ]line|reservation|minimum|our score|my score|points", re.I
)
_AI_TALK = re.compile(
    r"\bas an ai\b|\blanguage model\b|\bi am an (ai|assistant)\b|\bi (cannot|can't) (role-?play|pretend)",
    re.I,
)


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    party: str
    seq: int
    detail: str


def _spoken(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Events where a party speaks to others (public or side talk), with their text."""
    return [
        (e, e["content"].get("text", ""))
        for e in events
        if e["type"] in ("message", "side_message")
    ]


def leaks(loaded: LoadedScenario, events: list[dict[str, Any]]) -> list[Finding]:
    """A party naming its walk-away number, or its score numbers, next to words about them."""
    found = []
    for e, text in _spoken(events):
        card = loaded.cards.get(e["speaker"])
        if card is None or not _PRIVATE_WORDS.search(text):
            continue
        numbers = {int(n) for n in re.findall(r"\b\d{1,4}\b", text)}
        if card.threshold in numbers:
            found.append(
                Finding(
                    kind="leak", party=card.id, seq=e["seq"], detail=f"walk-away {card.threshold}"
                )
            )
            continue
        values = {v for table in card.scores.values() for v in table.values() if v >= 5}
        hits = sorted(numbers & values)
        if len(hits) >= 2:
            found.append(
                Finding(kind="leak", party=card.id, seq=e["seq"], detail=f"score values {hits}")
            )
    return found


def persona_breaks(loaded: LoadedScenario, events: list[dict[str, Any]]) -> list[Finding]:
    """Talking as an AI, or speaking as another party."""
    found = []
    names = {pid: [card.name, pid] for pid, card in loaded.cards.items()}
    for e, text in _spoken(events):
        speaker = e["speaker"]
        if _AI_TALK.search(text):
            found.append(
                Finding(kind="persona_break", party=speaker, seq=e["seq"], detail="speaks as an AI")
            )
            continue
        for other, labels in names.items():
            if other == speaker:
                continue
            pattern = r"^\s*(?:as|speaking for|on behalf of|i am|we are)?\s*(?:the\s+)?(?:{})\s*[:,]".format(
                "|".join(re.escape(x) for x in labels)
            )
            if re.search(pattern, text, re.I):
                found.append(
                    Finding(
                        kind="persona_break",
                        party=speaker,
                        seq=e["seq"],
                        detail=f"speaks as {other}",
                    )
                )
                break
    return found


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


def run_checks(loaded: LoadedScenario, events: list[dict[str, Any]]) -> list[Finding]:
    return [*leaks(loaded, events), *persona_breaks(loaded, events), *red_lines(loaded, events)]
