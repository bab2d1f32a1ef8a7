"""Cheap responders for the benchmark server: canned replies that validate for every party.

A canned reply is built once per response schema from the schema itself (the structured
output every request carries), so it validates for whichever party asked, and then served
from a dict: the server spends microseconds per call, not the scripted player's
milliseconds. The choice of values keeps the session busy for every round:

- every enum takes its first value, except `vote`, which is always "reject", so no
  package passes and the session runs all its rounds;
- `proposal` and `side_message` take their object branch (not null), so each move makes
  a proposal (the vote step then runs every round) and a side message, as real moves do;
- free text is one fixed sentence.

`PrefixCachingResponder` also reports, per party, the shared prefix with that party's
previous request as `cached_tokens` (chars / 4), the way a provider's prompt cache would.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from majlis.model import Completion

TEXT = "We hear the room and hold our position for now."


def request_schema(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema a request asks its reply to fit, in any structured dialect."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return fmt["json_schema"]["schema"]
    if fmt.get("type") == "json_object":
        return fmt.get("schema") or {}
    raise ValueError("the canned responder needs a response_format with a schema")


def example(schema: dict[str, Any], key: str | None = None) -> Any:
    """A value that fits `schema` (the strict subset majlis sends)."""
    if "enum" in schema:
        values = schema["enum"]
        return "reject" if key == "vote" and "reject" in values else values[0]
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"] or schema["anyOf"]
        return example(branches[0], key)
    kind = schema.get("type")
    if kind == "object":
        return {k: example(v, k) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    if kind == "string":
        return TEXT
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return None


class CannedResponder:
    """One reply per distinct schema, built on first sight and then looked up."""

    def __init__(self) -> None:
        self._replies: dict[str, str] = {}

    def text_for(self, body: dict[str, Any]) -> str:
        schema = request_schema(body)
        key = json.dumps(schema, sort_keys=True)
        text = self._replies.get(key)
        if text is None:
            text = self._replies[key] = json.dumps(example(schema))
        return text

    def __call__(self, body: dict[str, Any]) -> Completion:
        text = self.text_for(body)
        chars = sum(len(m.get("content") or "") for m in body["messages"])
        return Completion(text, prompt_tokens=chars // 4, completion_tokens=len(text) // 4)


def serialized(messages: list[dict[str, Any]]) -> str:
    """The messages as the request body carries them (compact JSON, as the SDK sends it)."""
    return json.dumps(messages, ensure_ascii=False, separators=(",", ":"))


def common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of two strings (binary search on slices)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def record_lines(messages: list[dict[str, Any]]) -> list[str]:
    """The lines of the <record> block in a request's last message."""
    user = messages[-1]["content"]
    start, end = user.find("<record>"), user.find("</record>")
    if start < 0 or end < 0:
        return []
    return [x for x in user[start + len("<record>") : end].split("\n") if x]


class PrefixCachingResponder(CannedResponder):
    """A canned reply, plus the prompt-cache figures a provider would report.

    Each party is recognised by its system message (the same for all its calls). For each
    request it records (party, task, round, prompt chars, shared prefix chars) and reports
    cached_tokens = shared prefix / 4.
    """

    def __init__(self) -> None:
        super().__init__()
        self.previous: dict[str, str] = {}
        self.lines: dict[str, set[str]] = {}
        self.calls: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> Completion:
        out = super().__call__(body)
        messages = body["messages"]
        party = hashlib.sha256(messages[0]["content"].encode()).hexdigest()[:12]
        text = serialized(messages)
        before = self.previous.get(party)
        shared = common_prefix(before, text) if before is not None else 0
        self.previous[party] = text
        lines = record_lines(messages)
        seen = self.lines.get(party, set())
        self.lines[party] = set(lines)
        # record lines this prompt is the first to carry (events since the party's last call),
        # measured as the body carries them: no earlier prompt could have held them
        new = sum(len(json.dumps(x + "\n", ensure_ascii=False)) - 2 for x in lines if x not in seen)
        turn = json.loads(messages[-1]["content"].split("<turn>")[1].split("</turn>")[0])
        self.calls.append(
            {
                "party": turn["party"],
                "task": turn["task"],
                "round": turn["round"],
                "chars": len(text),
                "shared": shared,
                "first": before is None,
                # where the previous prompt's record ended: all of it can be reused, nothing
                # after it (the new events and the turn block) can be
                "reusable": before.find("</record>") if before is not None else 0,
                "new_events": new if before is not None else 0,
            }
        )
        out.prompt_tokens = len(text) // 4  # the same measure as the cached share
        out.cached_tokens = shared // 4
        return out
