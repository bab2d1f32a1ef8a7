"""The client the agents and the graph talk to: `ModelClient` asks for a structured answer
and re-asks when the reply does not validate; `make_client` picks the backend behind it.

Two retry layers, one per kind of error. Transport faults are the backend's
(`openai_backend.py`); a reply that does not validate is this module's, retried by
tenacity with the validation error fed back to the model. Agents and the graph see
neither: they get a validated object, a ModelBehaviourError, or, once the transport
retries are spent, the transport error itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from .. import tracing
from ..errors import BudgetExceeded, MajlisError, ModelBehaviourError
from .backend import Backend, CachingBackend, Reply, ScriptedBackend
from .budget import Meter
from .cache import ResponseCache, SampleCounter
from .calltrace import CallSpans, traced_chat
from .config import ModelConfig
from .failures import brief_error
from .openai_backend import OpenAIBackend
from .transport import EndpointLimits
from .usage import Usage

M = TypeVar("M", bound=BaseModel)


@dataclass
class Answer(Generic[M]):
    """A validated reply, with what it cost."""

    value: M
    reply: Reply
    attempts: int
    usage: Usage = field(default_factory=Usage)


class OutputInvalid(MajlisError):
    """A reply that does not validate; tenacity's cue to ask again. Never leaves
    `ModelClient.ask`, which turns the last one into a ModelBehaviourError."""

    def __init__(self, error: str, raw: str) -> None:
        super().__init__(error)
        self.error, self.raw = error, raw


def extract_json(text: str) -> Any:
    """The first JSON object in a reply: the last resort for servers with no structured mode."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = decoder.raw_decode(text, start)
            if isinstance(obj, dict):
                return obj
        except json.JSONDecodeError:
            pass
        start = text.find("{", start + 1)
    raise ValueError("no JSON object in the reply")


class _Asking:
    """One question's state across its attempts: the conversation so far and the cost."""

    def __init__(self, messages: list[dict[str, str]]) -> None:
        self.messages = messages
        self.convo = list(messages)
        self.total = Usage()
        self.attempts = 0
        self.last: Reply | None = None  # the latest attempt's reply

    def failure(self, why: str, raw: str, stopped: str | None = None) -> ModelBehaviourError:
        """The question's end without an answer, carrying what its attempts cost: a failed
        turn's event records it, so the transcript counts every token the server did."""
        last = self.last
        return ModelBehaviourError(
            why,
            raw=raw,
            attempts=self.attempts,
            usage=self.total,
            call_id=last.call_id if last else None,
            latency_ms=last.latency_ms if last else None,
            stopped=stopped,
        )


class ModelClient:
    """Asks for a structured answer and validates it; re-asks with the error on bad output."""

    def __init__(
        self, config: ModelConfig, backend: Backend, meters: list[Meter] | None = None
    ) -> None:
        self.config = config
        self.backend = backend
        self.meters = meters or []  # budgets this client spends against
        self._spans: CallSpans | None = None  # its calls' span name and attributes, if traced

    async def ask(
        self, messages: list[dict[str, str]], output: type[M], schema: dict[str, Any]
    ) -> Answer[M]:
        """One validated answer. A reply that does not validate is asked again with the error
        fed back, up to `output_retries` times: tenacity drives those re-asks. The first
        attempt, which is almost always the only one, runs without its machinery (about a
        tenth of the harness's CPU per call)."""
        asking = _Asking(messages)
        try:
            return await self._attempt(asking, output, schema)
        except OutputInvalid as exc:
            failed = exc
        if self.config.output_retries > 0:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.config.output_retries),
                    retry=retry_if_exception_type(OutputInvalid),
                    reraise=True,
                ):
                    with attempt:
                        return await self._attempt(asking, output, schema)
            except OutputInvalid as exc:
                failed = exc
            except BudgetExceeded as exc:  # spent before the re-ask: a failed turn records it
                raise asking.failure(
                    f"budget ran out after {asking.attempts} attempt(s): {failed.error}",
                    failed.raw,
                    stopped=str(exc),
                ) from None
        raise asking.failure(
            f"invalid reply after {asking.attempts} attempt(s): {failed.error}", failed.raw
        )

    async def _attempt(self, asking: _Asking, output: type[M], schema: dict[str, Any]) -> Answer[M]:
        for meter in self.meters:
            meter.check()
        asking.attempts += 1
        name = output.__name__.lower()
        if tracing.tracer() is None:
            last = await self.backend.chat(asking.convo, name, schema)
        else:
            spans = self._spans = self._spans or CallSpans(self.config)
            args = (asking.convo, name, schema, asking.attempts)
            last = await traced_chat(self.backend, spans, *args)
        asking.last = last
        if not last.cached:
            for meter in self.meters:
                meter.charge(self.config.model, last.usage)
        total = asking.total = asking.total + last.usage
        try:
            value = output.model_validate(extract_json(last.text))
        except (ValueError, ValidationError) as exc:
            error = brief_error(exc)
            asking.convo = [
                *asking.messages,
                {"role": "assistant", "content": last.text[:4000]},
                {
                    "role": "user",
                    "content": f"That reply was not valid: {error}. "
                    "Answer again with one JSON object that fits the schema.",
                },
            ]
            raise OutputInvalid(error, last.text) from None
        return Answer(value=value, reply=last, attempts=asking.attempts, usage=total)


def make_client(
    config: ModelConfig,
    limits: EndpointLimits | None = None,
    cache: ResponseCache | None = None,
    counter: SampleCounter | None = None,
    meters: list[Meter] | None = None,
    embedded: bool = False,
) -> ModelClient:
    """`scripted` with no base URL plays in process; any base URL goes over HTTP, maybe
    cached. `embedded`: the base URL is the embedded model's own loopback server."""
    in_process = config.is_scripted and config.base_url is None
    backend: Backend = (
        ScriptedBackend(config) if in_process else OpenAIBackend(config, limits, embedded)
    )
    if cache is not None and not in_process:
        backend = CachingBackend(backend, config, cache, counter or SampleCounter())
    return ModelClient(config, backend, meters)
