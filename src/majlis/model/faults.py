"""Fault injection for the loopback server: what a flaky or broken endpoint does to a client.

A `FaultPlan` is the server's `fault` hook: `LoopbackServer(responder, fault=plan)`. For each
chat request (numbered from 1, every attempt counted, retries included) it decides whether
to answer normally or to misbehave, from a schedule (request number -> fault), a seeded
probability per fault, or both. It can be limited to one party's requests, switched off
(`plan.stop()`), and it records what it injected (`plan.injected`).

Faults, by what a client has to do about them:

    transport   429 (with Retry-After), 500, 503, drop (the connection closes mid-body),
                hang (no answer until past the client's timeout), cut_json (a 200 whose
                body stops halfway), bad_json (a 200 whose body is not JSON)
    output      refusal (message.refusal set, content null), bad_schema (valid JSON that
                breaks the move schema), empty_choices (a 200 with no choices)

Transport faults should be retried with backoff; output faults re-asked or recorded as a
failed turn. `TokenBucket`, another `fault` hook, is an endpoint's rate limit as hosted
APIs have one: past it, a 429 naming the wait until the next request would fit.
Everything here stays on 127.0.0.1: it only shapes the loopback server's replies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import MajlisError
from .loopback import Completion, completion_body

TRANSPORT = ("429", "500", "503", "drop", "hang", "cut_json", "bad_json")
OUTPUT = ("refusal", "bad_schema", "empty_choices")
KINDS = TRANSPORT + OUTPUT

# A reply that is JSON but fits no move: wrong keys, a vote where a move is due.
OFF_SCHEMA = {"public_message": "We walk out.", "vote": "maybe", "positions": "all of them"}


class DroppedConnection(MajlisError):
    """Raised inside the server after half a body was sent, so uvicorn closes the socket."""


class _MuteInjected(logging.Filter):
    """uvicorn logs an app exception as an error; an injected drop is not one."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_MUTE = _MuteInjected()
if _MUTE not in logging.getLogger("uvicorn.error").filters:
    logging.getLogger("uvicorn.error").addFilter(_MUTE)


class DropResponse(Response):
    """Headers promise the whole body; half of it is sent; then the connection goes."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.body
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
        )
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        raise DroppedConnection("injected: connection dropped mid-response")


class HangResponse(Response):
    """Says nothing for `seconds` (or until released), then a 504 nobody is waiting for."""

    def __init__(self, seconds: float, released: threading.Event) -> None:
        super().__init__(
            json.dumps({"error": {"message": "upstream hung", "type": "timeout", "code": 504}}),
            status_code=504,
            media_type="application/json",
        )
        self.seconds, self.released = seconds, released

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not self.released.is_set():
            await asyncio.sleep(0.02)
        await super().__call__(scope, receive, send)


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}},
        status_code=status,
        headers=headers,
    )


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return completion_body(body, Completion(text, prompt_tokens=1, completion_tokens=1))


def party_of(body: dict[str, Any]) -> str | None:
    """The party a chat request is for, read from its <turn> block (None if there is none)."""
    for m in reversed(body.get("messages") or []):
        content = m.get("content") or ""
        start = content.find("<turn>")
        if m.get("role") == "user" and start != -1:
            end = content.find("</turn>", start)
            try:
                return json.loads(content[start + len("<turn>") : end]).get("party")
            except (ValueError, AttributeError):
                return None
    return None


@dataclass
class FaultPlan:
    """Which requests misbehave, and how. Use as `LoopbackServer(responder, fault=plan)`.

    schedule: request number (1-based, every attempt counted) -> fault kind.
    rates:    fault kind -> probability per request; the draw is seeded by (seed, request
              number), so a plan misbehaves the same way on every run.
    parties:  only requests for these parties are touched (their number still counts).
    """

    schedule: dict[int, str] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    parties: frozenset[str] | None = None
    first: int = 1  # rates apply from this request number on
    retry_after: float = 1.0  # seconds, sent on 429s
    hang: float = 3.0  # how long a hang lasts at most (past the client's timeout)
    injected: list[tuple[int, str]] = field(default_factory=list, init=False)
    active: bool = True
    _released: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        for kind in [*self.schedule.values(), *self.rates]:
            if kind not in KINDS:
                raise ValueError(f"unknown fault {kind!r} (known: {', '.join(KINDS)})")
        if self.parties is not None:
            self.parties = frozenset(self.parties)

    @classmethod
    def at(cls, requests: Iterable[int], kind: str, **kwargs: Any) -> FaultPlan:
        """`kind` on each of these request numbers."""
        return cls(schedule=dict.fromkeys(requests, kind), **kwargs)

    @classmethod
    def from_request(cls, n: int, kind: str, **kwargs: Any) -> FaultPlan:
        """`kind` on request n and every one after it, until `stop()`."""
        return cls(rates={kind: 1.0}, first=n, **kwargs)

    def stop(self) -> None:
        """The endpoint recovers: no more faults, and any hang in progress ends now."""
        self.active = False
        self._released.set()

    def start(self) -> None:
        """The endpoint misbehaves (again) by this plan."""
        self._released.clear()
        self.active = True

    def count(self, kind: str | None = None) -> int:
        return sum(1 for _, k in self.injected if kind is None or k == kind)

    def choose(self, body: dict[str, Any], n: int) -> str | None:
        if not self.active:
            return None
        if self.parties is not None and party_of(body) not in self.parties:
            return None
        if n in self.schedule:
            return self.schedule[n]
        if n < self.first:
            return None
        draw = random.Random(f"{self.seed}/{n}")
        for kind, p in self.rates.items():
            if draw.random() < p:
                return kind
        return None

    def __call__(self, body: dict[str, Any], n: int) -> Response | None:
        kind = self.choose(body, n)
        if kind is None:
            return None
        self.injected.append((n, kind))
        return self.response(kind, body)

    def response(self, kind: str, body: dict[str, Any]) -> Response:
        if kind == "429":
            return _error(
                429,
                "rate_limit_exceeded",
                "Rate limit reached; try again later.",
                {"retry-after": f"{self.retry_after:g}"},
            )
        if kind == "500":
            return _error(500, "server_error", "The server had an error processing your request.")
        if kind == "503":
            return _error(503, "service_unavailable", "The engine is currently overloaded.")
        if kind == "drop":
            return DropResponse(json.dumps(_completion(body, "{}")), media_type="application/json")
        if kind == "hang":
            return HangResponse(self.hang, self._released)
        if kind == "cut_json":
            whole = json.dumps(_completion(body, json.dumps(OFF_SCHEMA)))
            return Response(whole[: len(whole) // 2], media_type="application/json")
        if kind == "bad_json":  # a Python repr: single quotes, None, True
            return Response(repr(_completion(body, "{}")), media_type="application/json")
        if kind == "refusal":
            out = _completion(body, "")
            out["choices"][0]["message"] = {
                "role": "assistant",
                "content": None,
                "refusal": "I can't help with negotiating on behalf of a party.",
            }
            return JSONResponse(out)
        if kind == "bad_schema":
            return JSONResponse(_completion(body, json.dumps(OFF_SCHEMA)))
        if kind == "empty_choices":
            out = _completion(body, "")
            out["choices"] = []
            return JSONResponse(out)
        raise ValueError(f"unknown fault {kind!r}")


@dataclass
class TokenBucket:
    """A rate limit, as the loopback server's `fault` hook: `rate` requests a second on
    average and bursts of up to `burst`; a request that finds the bucket empty is answered
    429 with the wait until a token is back (`retry-after-ms`, and `retry-after` in whole
    seconds, as OpenAI's API sends them). `rate` may be changed while the server runs (the
    endpoint's load moves), from any thread."""

    rate: float
    burst: float = 1.0
    admitted: int = field(default=0, init=False)
    refused: int = field(default=0, init=False)
    _tokens: float | None = field(default=None, init=False, repr=False)
    _at: float = field(default=0.0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def take(self, now: float | None = None) -> float | None:
        """Take a token: None if there was one, else the seconds until there will be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._tokens is None:
                self._tokens = self.burst  # full at the first request
            else:
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                self.admitted += 1
                return None
            self.refused += 1
            return (1 - self._tokens) / self.rate

    def __call__(self, body: dict[str, Any], n: int) -> Response | None:
        wait = self.take()
        if wait is None:
            return None
        headers = {
            "retry-after-ms": str(max(1, math.ceil(wait * 1000))),
            "retry-after": str(max(1, math.ceil(wait))),
        }
        return _error(
            429, "rate_limit_exceeded", "Rate limit reached for requests; try again later.", headers
        )
