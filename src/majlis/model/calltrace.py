"""The span of one model call, in the OpenTelemetry GenAI semantic conventions.

One span per request a `ModelClient` sends its backend (an attempt: a re-ask after a reply
that did not validate is another span), covering the transport retries the backend makes
inside it, as the conventions ask of a call retried automatically. Its attributes are the
conventions' (`gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`,
`gen_ai.response.model`, `gen_ai.usage.*`, `gen_ai.response.finish_reasons`, ...) and
majlis's own (`majlis.attempt`, `majlis.retries`, `majlis.cached`, `majlis.latency_ms`).

No prompt and no reply text goes in, ever: the prompt holds the party's private brief and
score table, the reply its private reasoning, and every party's calls share one trace.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from .. import tracing
from .backend import Backend, Reply
from .config import ModelConfig


class CallSpans:
    """What the call spans of one client share, worked out once (the client keeps it): their
    name and the attributes known before any call, which its config fixes."""

    __slots__ = ("name", "request")

    def __init__(self, config: ModelConfig) -> None:
        self.name = f"chat {config.model}"
        self.request = request_attributes(config)

    def attempt(self, attempt: int) -> dict[str, Any]:
        """A new dict of the request's attributes, with the attempt's number past the first."""
        out = self.request.copy()
        if attempt > 1:
            out["majlis.attempt"] = attempt
        return out


def request_attributes(config: ModelConfig) -> dict[str, Any]:
    """What is known before the call: the operation, the provider, the request's model and
    seed, where it goes. Each attribute costs CPU to build and to encode: a call's span holds
    what a reader of traces looks for, and the settings a run's manifest already records
    stay there."""
    in_process = config.is_scripted and config.base_url is None
    where = urlsplit(config.base_url) if config.base_url else None
    host = where.hostname if where else None
    if where is None and config.reaches_endpoint:  # no base URL: the OpenAI API itself
        host = "api.openai.com"
    return tracing.attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "majlis.scripted" if in_process else "openai",
            "gen_ai.request.model": config.model,
            "gen_ai.request.seed": config.seed,
            "server.address": host,
            "server.port": where.port if where else None,
        }
    )


def reply_attributes(reply: Reply, into: dict[str, Any]) -> dict[str, Any]:
    """`into` with what the answer tells: the model that answered, its tokens, why it
    stopped, how long the request took; and, only when they happened, the cached prompt
    tokens, the transport retries it needed, and that the response cache served it."""
    usage = reply.usage
    into["gen_ai.response.id"] = reply.call_id
    if reply.model is not None:
        into["gen_ai.response.model"] = reply.model
    if reply.finish_reason:
        into["gen_ai.response.finish_reasons"] = (reply.finish_reason,)
    into["gen_ai.usage.input_tokens"] = usage.prompt_tokens
    into["gen_ai.usage.output_tokens"] = usage.completion_tokens
    if usage.cached_tokens:
        into["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
    into["majlis.latency_ms"] = round(reply.latency_ms, 2)
    if reply.retries:
        into["majlis.retries"] = len(reply.retries)
    if reply.cached:
        into["majlis.cached"] = True
    return into


def _replied(spans: CallSpans, attempt: int, reply: Reply) -> dict[str, Any]:
    return reply_attributes(reply, spans.attempt(attempt))


def _failed(spans: CallSpans, attempt: int, retries: int) -> dict[str, Any]:
    out = spans.attempt(attempt)
    out["majlis.retries"] = retries
    return out


async def traced_chat(
    backend: Backend,
    spans: CallSpans,
    messages: list[dict[str, str]],
    schema_name: str,
    schema: dict[str, Any],
    attempt: int,
) -> Reply:
    """`backend.chat` with its span, a child of the current one (the turn's or vote's),
    made once the call is over, its attributes worked out then, maybe later with the
    round's other calls (see `tracing.over`). A call that fails for good records its
    error's type and the transport retries it spent."""
    began = time.time_ns()
    try:
        reply = await backend.chat(messages, schema_name, schema)
    except BaseException as exc:
        retries = len(getattr(exc, "retries", None) or [])
        tracing.over(spans.name, began, _failed, spans, attempt, retries, client=True, error=exc)
        raise
    tracing.over(spans.name, began, _replied, spans, attempt, reply, client=True)
    return reply
