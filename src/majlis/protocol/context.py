"""Context policies: how much of the record a party's prompt carries.

`full` sends every event the party may see, append-only, so consecutive prompts share a
byte-identical prefix (good for prompt caches) but grow with the square of the rounds in
total tokens. `window:N` sends the last N rounds in full and, before them, a rolling
summary kept per party: the facts a party needs from earlier rounds, in bounded size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UserError

SIDE_KEPT = 2  # latest side messages kept verbatim per counterpart


@dataclass(frozen=True)
class ContextPolicy:
    window: int | None = None  # None: the full record

    @classmethod
    def parse(cls, text: str) -> ContextPolicy:
        if text == "full":
            return cls()
        name, _, n = text.partition(":")
        if name == "window" and n.isdigit() and int(n) >= 1:
            return cls(int(n))
        raise UserError(f"--context must be 'full' or 'window:N' with N >= 1, not {text!r}")

    def __str__(self) -> str:
        return "full" if self.window is None else f"window:{self.window}"


def split(events: list[dict[str, Any]], policy: ContextPolicy, round_no: int) -> tuple[list, list]:
    """(older events to summarise, recent events to show in full)."""
    if policy.window is None:
        return [], events
    first_full = round_no - policy.window + 1
    return [e for e in events if e["round"] < first_full], [
        e for e in events if e["round"] >= first_full
    ]


def _latest_side(thread: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The end of one side-talk thread: its last SIDE_KEPT messages, plus the last message
    each way when it is older than those (a counterpart's last word is never dropped because
    the party wrote twice since), in order: at most SIDE_KEPT + 1 messages."""
    kept = thread[-SIDE_KEPT:]
    for sender in {m["from"] for m in thread}:
        last = next(m for m in reversed(thread) if m["from"] == sender)
        if last not in kept:
            kept = [last, *kept]
    return sorted(kept, key=lambda m: m["seq"])


def summary(party: str, older: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What a party keeps from the rounds that left its window, in a size that does not grow
    with the rounds: each party's latest public positions, its own proposals and last stated
    positions (its commitments), the latest side talk with each counterpart (the last
    messages of the thread and the last word each way), vote results and the injects
    announced."""
    if not older:
        return None
    positions: dict[str, dict[str, str]] = {}
    own_proposals: list[dict[str, Any]] = []
    side: dict[str, list[dict[str, Any]]] = {}
    tallies: list[dict[str, Any]] = []
    injects: list[str] = []
    for e in older:
        c = e["content"]
        if e["type"] == "message":
            positions[e["speaker"]] = c["positions"]
        elif e["type"] == "proposal" and e["speaker"] == party:
            own_proposals = [
                *own_proposals[-1:],
                {"seq": e["seq"], "round": e["round"], "package": c["package"]},
            ]
        elif e["type"] == "side_message":
            other = c["to"] if e["speaker"] == party else e["speaker"]
            side.setdefault(other, []).append(
                {"seq": e["seq"], "from": e["speaker"], "text": c["text"]}
            )
        elif e["type"] == "tally":
            tallies.append({"round": e["round"], "passed": c["passed"], "accept": c["accept"]})
        elif e["type"] == "inject":
            injects.append(c["title"])
    return {
        "type": "summary",
        "rounds": f"1-{max(e['round'] for e in older)}",
        "latest_positions": positions,
        "your_last_proposals": own_proposals,
        "side_talk": {other: _latest_side(thread) for other, thread in side.items()},
        "votes": tallies[-3:],
        "injects": injects,
    }
