"""What every rule-based check returns, and the events it reads."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Kind = Literal["leak", "side_leak", "persona_break", "red_line"]
KINDS: tuple[Kind, ...] = ("leak", "side_leak", "persona_break", "red_line")


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    party: str
    seq: int
    detail: str


def spoken(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Events where a party speaks to others (public or side talk), with their text."""
    return [
        (e, e["content"].get("text", ""))
        for e in events
        if e["type"] in ("message", "side_message")
    ]
