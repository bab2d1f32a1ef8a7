"""The HTTP backend: any OpenAI-compatible endpoint through the openai SDK, with the
retries of transport faults and the slice of a chat completion that majlis reads.

Transport faults are retried here and nowhere above: the SDK retries connection errors,
timeouts, 429 and 5xx (honouring Retry-After), and this backend retries a 200 whose body
is not a chat completion (cut or malformed JSON), both out of one budget per call. Once
it is spent the transport error itself goes up, scrubbed of the key; the session then
stops, resumable. With `transport.py` (which makes the SDK's HTTP client), the only module
of the layer that imports the SDK.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any

import openai
import orjson
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError

from ..errors import EndpointError, MajlisError
from .backend import Backend, Reply
from .config import DIALECTS, Dialect, ModelConfig
from .failures import brief_error, scrub, unreachable
from .transport import EndpointLimits, resolve_key
from .usage import Usage


class BadResponseError(MajlisError):
    """The endpoint answered 200 with a body that is not a chat completion (cut, not JSON)."""


class _RetriesLeft:
    """Transport retries left for one call, shared by the SDK and the body check."""

    def __init__(self, retries: int) -> None:
        self.total = self.left = retries

    @property
    def spent(self) -> int:
        return self.total - self.left


def _backoff(retries_so_far: int) -> float:
    """The openai SDK's schedule: 0.5 s doubling to at most 8 s, less up to 25% jitter."""
    return min(0.5 * 2.0**retries_so_far, 8.0) * (1 - 0.25 * random.random())


class OpenAIBackend(Backend):
    """Any OpenAI-compatible endpoint, through the openai SDK over real HTTP."""

    def __init__(
        self, config: ModelConfig, limits: EndpointLimits | None = None, in_process: bool = False
    ) -> None:
        """`in_process`: the endpoint is the embedded model that this process runs, whose
        every call is bounded by tokens (the prompt must fit its window, the reply its
        max_tokens), so no wall clock cuts it off: a busy machine makes it slower, never
        broken. A connection to it still times out, as nothing else should go wrong there."""
        self.config = config
        self.name = config.model
        self._own_limits = limits is None
        self.limits = limits or EndpointLimits()
        self.endpoint = config.endpoint
        key = resolve_key(config)
        self._secret = key if key not in ("", "not-needed") else None
        self.client = openai.AsyncOpenAI(
            api_key=key or "missing",
            base_url=config.base_url,
            timeout=openai.Timeout(None, connect=30.0) if in_process else config.timeout,
            max_retries=config.max_retries,
            http_client=self.limits.pool(self.endpoint),
        )
        self.dialect: Dialect = "json_schema" if config.structured == "auto" else config.structured
        self.where = config.base_url or "the OpenAI API"

    async def aclose(self) -> None:
        """The connection pool belongs to the limits: closed here only if they are ours."""
        if self._own_limits:
            await self.limits.aclose()

    async def check(self) -> None:
        try:
            await self.client.with_options(
                max_retries=0, timeout=min(10.0, self.config.timeout)
            ).models.list()
        except openai.AuthenticationError:
            raise EndpointError(
                f"{self.where} refused the API key (401); check {self.config.api_key_env or 'OPENAI_API_KEY'}"
            ) from None
        except openai.APIConnectionError as exc:
            raise EndpointError(
                f"cannot reach model endpoint {self.where}: {unreachable(exc)}"
            ) from None
        except openai.NotFoundError:
            await self._probe()  # no /models: a server without that route, or a wrong URL
        except openai.APIStatusError:
            pass  # alive, and answering: the route is merely refused

    async def _probe(self) -> None:
        """One chat request of a single token, made only when /models is missing. Every
        OpenAI-compatible server has both routes, so a 404 here too means the base URL
        (most often a missing /v1) or the model name is wrong: the user's error, said now
        rather than after a run folder exists."""
        try:
            await self.client.with_options(
                max_retries=0, timeout=min(30.0, self.config.timeout)
            ).post(
                "/chat/completions",
                body={
                    "model": self.config.model,
                    "messages": [{"role": "user", "content": "Say OK."}],
                    "max_tokens": 1,
                },
                cast_to=openai.AsyncAPIResponse[ChatCompletion],
            )
        except openai.NotFoundError:
            raise EndpointError(
                f"{self.where} answered 404 Not Found to /models and to a chat request for "
                f"model {self.config.model!r}: check the base URL (it usually ends in /v1) "
                "and the model name"
            ) from None
        except openai.APIError:
            pass  # anything else, the session's first call meets and reports in full

    async def chat(
        self, messages: list[dict[str, str]], schema_name: str, schema: dict[str, Any]
    ) -> Reply:
        # A 200 whose body is not a completion is a transport fault too: retried with the
        # SDK's backoff, out of the same budget, so one call makes at most max_retries + 1
        # requests whatever mix of faults it meets.
        budget = _RetriesLeft(self.config.max_retries)
        try:
            while True:
                try:
                    return await self._chat_once(messages, schema_name, schema, budget)
                except openai.BadRequestError as exc:
                    if not self._step_down(exc):
                        raise
                except BadResponseError:
                    if budget.left <= 0:
                        raise
                    await asyncio.sleep(_backoff(budget.spent))
                    budget.left -= 1
        except openai.APIError as exc:
            # the error goes on to the manifest, the checkpoint and the terminal: one
            # line, and without the key should the endpoint quote the request's headers
            scrub(exc, self._secret)
            raise

    def _step_down(self, exc: openai.BadRequestError) -> bool:
        """After a 400, whether to ask again in the next structured-output dialect: only
        when the dialect was left to us and a plainer one is left. Stepping down to
        `prompt` needs the server to have named response_format as what it refused."""
        if self.config.structured != "auto" or self.dialect == "prompt":
            return False
        # the server does not speak this structured-output dialect: step down once
        self.dialect = DIALECTS[DIALECTS.index(self.dialect) + 1]
        return "response_format" in str(exc) or self.dialect != "prompt"

    def _body(
        self, messages: list[dict[str, str]], schema_name: str, schema: dict[str, Any]
    ) -> dict[str, Any]:
        """The request, with the schema said the way the current dialect says it."""
        kwargs: dict[str, Any] = {}
        if self.dialect == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            }
        elif self.dialect == "json_object":
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        else:
            hint = "\n\nReply with one JSON object that fits this JSON schema:\n" + json.dumps(
                schema
            )
            messages = [*messages[:-1], {**messages[-1], "content": messages[-1]["content"] + hint}]
        if self.config.seed is not None:
            kwargs["seed"] = self.config.seed
        return {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            **kwargs,
        }

    async def _chat_once(
        self,
        messages: list[dict[str, str]],
        schema_name: str,
        schema: dict[str, Any],
        budget: _RetriesLeft,
    ) -> Reply:
        body = self._body(messages, schema_name, schema)
        sem = self.limits.get(self.endpoint, self.config.concurrency)
        async with sem:
            sent = body["messages"]
            estimate = sum(len(m["content"]) for m in sent) // 4 + self.config.max_tokens
            await self.limits.admit(self.endpoint, estimate)
            start = time.perf_counter()
            client = self.client
            if budget.left != self.config.max_retries:
                client = client.with_options(max_retries=budget.left)
            # The body as built, through the client's own post(): the SDK's retries, timeouts,
            # headers and error types all hold. `chat.completions.create` would first walk
            # every message against its union of TypedDicts to rename aliased keys (chat
            # parameters have none), about 0.8 ms of CPU a call: the largest single cost of a
            # sweep at a hundred sessions on two cores. The body goes as JSON bytes encoded
            # by orjson, a fifth of the json module's time for a 30 kB prompt; the client's
            # default headers already say it is JSON.
            raw = await client.post(
                "/chat/completions",
                content=orjson.dumps(body),
                cast_to=openai.AsyncAPIResponse[ChatCompletion],
            )
            budget.left -= raw.retries_taken
            ms = (time.perf_counter() - start) * 1000
            text = await raw.read()
        return self._read(text, ms)

    def _read(self, text: bytes, ms: float) -> Reply:
        """The reply in a completion's body, parsed and checked in one pass; a body that is
        no completion is a BadResponseError, to be retried."""
        try:
            return _reply(WireCompletion.model_validate_json(text), ms)
        except ValidationError as exc:
            first = exc.errors()[0]
            if first["type"] == "json_invalid":  # a cut or malformed body
                why = first["msg"].removeprefix("Invalid JSON: ")
                raise BadResponseError(
                    f"{self.where} sent a reply that is not valid JSON ({why})"
                ) from None
            raise BadResponseError(
                f"{self.where} sent a reply that is not a chat completion ({brief_error(exc)})"
            ) from None


class _Message(BaseModel):
    content: str | None = None
    refusal: str | None = None


class _Choice(BaseModel):
    message: _Message


class _PromptDetails(BaseModel):
    cached_tokens: int | None = None


class _CompletionUsage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None


class WireCompletion(BaseModel):
    """What majlis reads of a chat completion, validated: a 200 whose body is anything else
    is a transport fault, retried. Read straight from the JSON, which costs a fraction of
    building the SDK's full ChatCompletion (every field, every nested model) for each call."""

    id: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    choices: list[_Choice]
    usage: _CompletionUsage | None = None


def _reply(resp: WireCompletion, ms: float) -> Reply:
    """A Reply from a completion; no choices is an empty reply, re-asked like any other."""
    message = resp.choices[0].message if resp.choices else None
    text = (message.content or "") if message else ""
    if message and not text and message.refusal:
        text = f"(refusal) {message.refusal}"
    u = resp.usage
    details = u.prompt_tokens_details if u else None
    usage = Usage(
        prompt_tokens=(u.prompt_tokens if u else 0) or 0,
        completion_tokens=(u.completion_tokens if u else 0) or 0,
        cached_tokens=(details.cached_tokens if details else 0) or 0,
    )
    return Reply(text, usage, resp.id or uuid.uuid4().hex, ms, resp.model, resp.system_fingerprint)
