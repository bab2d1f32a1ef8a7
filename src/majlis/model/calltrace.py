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

from typing import Any
from urllib.parse import urlsplit

from .. import tracing
from .backend import Backend, Reply
from .config import ModelConfig


def request_attributes(config: ModelConfig, attempt: int) -> dict[str, Any]:
    """What is known before the call: the operation, the provider, the request's model and
    seed, where it goes, and which attempt it is (only past the first). Each attribute
    costs CPU to build and to encode: a call's span holds what a reader of traces looks
    for, and the settings a run's manifest already records stay there."""
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
            "majlis.attempt": attempt if attempt > 1 else None,
        }
    )


def reply_attributes(reply: Reply) -> dict[str, Any]:
    """What the answer tells: the model that answered, its tokens, why it stopped, how long
    the request took; and, only when they happened, the cached prompt tokens, the transport
    retries it needed, and that the response cache served it."""
    usage = reply.usage
    finished = [reply.finish_reason] if reply.finish_reason else None
    return tracing.attributes(
        {
            "gen_ai.response.id": reply.call_id,
            "gen_ai.response.model": reply.model,
            "gen_ai.response.finish_reasons": finished,
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
            "gen_ai.usage.cache_read.input_tokens": usage.cached_tokens or None,
            "majlis.latency_ms": round(reply.latency_ms, 2),
            "majlis.retries": len(reply.retries) or None,
            "majlis.cached": reply.cached or None,
        }
    )


async def traced_chat(
    backend: Backend,
    config: ModelConfig,
    messages: list[dict[str, str]],
    schema_name: str,
    schema: dict[str, Any],
    attempt: int,
) -> Reply:
    """`backend.chat` inside its span, a child of the current one (the turn's or vote's).
    Nothing nests under it, so it is never made current (a context switch saved per call).
    A call that fails for good records its error's type and the transport retries it spent."""
    attrs = request_attributes(config, attempt)
    span = tracing.start(f"chat {config.model}", attrs, client=True)
    try:
        reply = await backend.chat(messages, schema_name, schema)
    except BaseException as exc:
        if span is not None:
            span.set_attribute("majlis.retries", len(getattr(exc, "retries", None) or []))
            tracing.failed(span, exc)
            span.end()
        raise
    if span is not None:
        span.set_attributes(reply_attributes(reply))
        span.end()
    return reply
