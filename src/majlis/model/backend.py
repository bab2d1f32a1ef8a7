"""What a backend is (`Backend`: one chat request in, a `Reply` out) and the two backends
that need no SDK: the scripted player in process, and the response cache in front of
another backend.

Apart from `client.py` so that the HTTP backend (`openai_backend.py`) and the client that
chooses among backends can both build on it without importing each other; and apart from
the HTTP backend so that the run layer's own players (a person at the terminal) can be
backends without loading the openai SDK.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError
from . import scripted
from .cache import ResponseCache, SampleCounter, request_key
from .config import ModelConfig
from .retries import RetryNote
from .usage import Usage


@dataclass
class Reply:
    text: str
    usage: Usage
    call_id: str
    latency_ms: float
    model: str | None = None
    fingerprint: str | None = None
    cached: bool = False
    retries: list[RetryNote] = field(default_factory=list)  # the transport faults it met
    finish_reason: str | None = None  # why the model stopped: stop, length, ... (traces)


class Backend:
    """Sends one chat request and returns the raw text. Subclasses: HTTP, scripted."""

    name = "backend"

    @property
    def structured_used(self) -> str | None:
        """The structured-output dialect the endpoint last answered in; None if no request
        has reached one (a backend that plays in process, or has not been called)."""
        return None

    def start_at(self, dialect: str) -> None:
        """Begin `auto` at the dialect an earlier stretch of the run found (on resume)."""

    async def chat(
        self, messages: list[dict[str, str]], schema_name: str, schema: dict[str, Any]
    ) -> Reply:
        raise NotImplementedError

    async def check(self) -> None:
        """Fail fast, before a run folder exists, when the endpoint cannot be used."""

    async def aclose(self) -> None:
        """Release connections."""


class ScriptedBackend(Backend):
    """The scripted player, in process: no HTTP, no tokens, deterministic."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        try:
            scripted.style_exponent(config.model)  # an unknown style is the user's error, now
        except scripted.ScriptError as exc:
            raise UserError(f"--model {config.model}: {exc}") from None
        self.name = config.model

    async def chat(
        self, messages: list[dict[str, str]], schema_name: str, schema: dict[str, Any]
    ) -> Reply:
        start = time.perf_counter()
        text = scripted.respond(messages, self.config.model, self.config.seed)
        prompt_chars = sum(len(m["content"]) for m in messages)
        usage = Usage(prompt_tokens=prompt_chars // 4, completion_tokens=len(text) // 4)
        ms = (time.perf_counter() - start) * 1000
        call_id = f"scripted-{uuid.uuid4().hex[:12]}"
        return Reply(text, usage, call_id, ms, self.config.model, finish_reason="stop")


class CachingBackend(Backend):
    """Serves a request from the cache when it can; stores what the inner backend answers."""

    def __init__(
        self, inner: Backend, config: ModelConfig, cache: ResponseCache, counter: SampleCounter
    ) -> None:
        self.inner, self.config, self.cache, self.counter = inner, config, cache, counter
        self.name = inner.name

    async def check(self) -> None:
        await self.inner.check()

    @property
    def structured_used(self) -> str | None:
        return self.inner.structured_used

    def start_at(self, dialect: str) -> None:
        self.inner.start_at(dialect)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def chat(
        self, messages: list[dict[str, str]], schema_name: str, schema: dict[str, Any]
    ) -> Reply:
        c = self.config
        key = request_key(
            {
                "base_url": c.base_url,
                "model": c.model,
                "messages": messages,
                "schema": schema,
                "temperature": c.temperature,
                "max_tokens": c.max_tokens,
                "seed": c.seed,
            }
        )
        sample = self.counter.next(key)
        hit = self.cache.get(key, sample)
        if hit is not None:
            return Reply(
                hit["text"],
                hit["usage"],
                hit["call_id"],
                0.0,
                hit["model"],
                hit["fingerprint"],
                cached=True,
                finish_reason=hit["finish_reason"],
            )
        reply = await self.inner.chat(messages, schema_name, schema)
        self.cache.put(
            key,
            sample,
            reply.text,
            reply.usage,
            reply.call_id,
            reply.model,
            reply.fingerprint,
            reply.finish_reason,
        )
        return reply
