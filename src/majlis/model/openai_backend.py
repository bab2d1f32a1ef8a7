"""The HTTP backend: any OpenAI-compatible endpoint through the openai SDK, with the
retries of transport faults and the structured-output dialect the endpoint speaks.

Transport faults are retried here and nowhere above, by this backend itself (the SDK's own
retries are off), so that each one is seen and noted (`RetryNote`: kind, status, wait) on
the `Reply`, on the error of a call that fails for good, and in the run's
`noting_retries` block. The rules are the SDK's: connection errors, timeouts, 408, 409,
429 and 5xx are retried, and so is a 200 whose body is not a chat completion (cut or
malformed JSON); the wait is the server's Retry-After (up to two minutes; a server that
asks for longer is not retried) or else 0.5 s doubling to 8 s with jitter; one budget per
call, `max_retries`, bounds its requests whatever mix of faults they meet.

A timeout is retried differently. The server may still be computing the abandoned request,
and a single-slot server (llama-cpp-python's, or llama.cpp's with one slot) would compute
every copy sent after it too, one after another. So after a timeout the backend first
waits until the server is free, by asking its /models (llama-cpp-python answers it only
once the running completion ends; a server with room answers at once, and nothing is
lost), then sends the request again with twice the time, up to four times `timeout`.

Once the budget is spent the transport error itself goes up, scrubbed of the key; the
session then stops, resumable. With `transport.py` (which makes the SDK's HTTP client), the
only module of the layer that imports the SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import openai
import orjson
from openai.types.chat import ChatCompletion

from ..errors import EndpointError
from .backend import Backend, Reply
from .config import DIALECTS, Dialect, ModelConfig
from .failures import scrub, unreachable
from .retries import MAX_RETRY_AFTER, RetryNote, backoff, note_retry, retry_after
from .transport import EndpointLimits, resolve_key
from .wire import BadResponseError, read_reply

# a request that timed out goes again with twice the time, up to this many times `timeout`
MAX_TIMEOUT_GROWTH = 4


def _backoff(retries_so_far: int) -> float:
    """The wait before a retry when the server names none (tests shorten it)."""
    return backoff(retries_so_far)


class _Call:
    """One call's transport retries: the budget left, the notes so far, and the time its
    next request may take (None: the client's own, for the embedded model)."""

    def __init__(self, retries: int, timeout: float | None) -> None:
        self.total = self.left = retries
        self.timeout = timeout
        self.notes: list[RetryNote] = []
        self.ticket: int | None = None  # the last request's number, for an adaptive limit

    @property
    def spent(self) -> int:
        return self.total - self.left

    def options(self, timeout: float) -> Any:
        """The SDK's options for the next request: the retry count the SDK's own retries
        would send, and the longer time a request gets after a timeout."""
        out: dict[str, Any] = {}
        if self.spent:
            out["headers"] = {"x-stainless-retry-count": str(self.spent)}
        if self.timeout is not None and self.timeout != timeout:
            out["timeout"] = self.timeout
        return out

    def note(self, note: RetryNote) -> None:
        self.notes.append(note)
        note_retry(note)


def _fault(exc: Exception) -> tuple[str, int | None, float | None] | None:
    """A transport fault worth sending the request again for, by the SDK's rules: its kind,
    HTTP status and the server's own wait (None: back off); None if retrying cannot help."""
    if isinstance(exc, BadResponseError):
        return exc.kind, None, None
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", None, None
    if isinstance(exc, openai.APIConnectionError):
        return "connection", None, None
    if not isinstance(exc, openai.APIStatusError):
        return None
    status, headers = exc.status_code, exc.response.headers
    after = retry_after(headers)
    if after is not None and after > MAX_RETRY_AFTER:
        return None  # the server will not take it again within any wait worth making
    said = headers.get("x-should-retry")
    if said == "false" or (said != "true" and status not in (408, 409, 429) and status < 500):
        return None
    return str(status), status, after if after is not None and after > 0 else None


# statuses that say the endpoint has more than it can take now, rather than that something
# broke: too many requests, no capacity (a hosted API's "overloaded"), an upstream too slow
OVERLOADED = frozenset({429, 503, 504})


def _overloaded(kind: str, status: int | None, after: float | None) -> bool:
    """Whether a transport fault says to send less at once (an adaptive limit is cut): a
    status that says so, any wait the server names, or no answer within the timeout (a
    server that cannot keep up answers late before it answers at all). A 500, a dropped
    connection or a reply cut short say something broke, not that there was too much."""
    return status in OVERLOADED or after is not None or kind == "timeout"


def _plainer(a: Dialect, b: Dialect) -> Dialect:
    return DIALECTS[max(DIALECTS.index(a), DIALECTS.index(b))]


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
        self.in_process = in_process
        self._own_limits = limits is None
        self.limits = limits or EndpointLimits()
        self.endpoint = config.endpoint
        key = resolve_key(config)
        self._secret = key if key not in ("", "not-needed") else None
        self.client = openai.AsyncOpenAI(
            api_key=key or "missing",
            base_url=config.base_url,
            timeout=openai.Timeout(None, connect=30.0) if in_process else config.timeout,
            max_retries=0,  # retried here, where each retry is seen (see the module's doc)
            http_client=self.limits.pool(self.endpoint),
        )
        self.auto = config.structured == "auto"
        self.dialect: Dialect = "json_schema" if config.structured == "auto" else config.structured
        self.answered_in: Dialect | None = None
        self.where = config.base_url or "the OpenAI API"

    @property
    def structured_used(self) -> str | None:
        return self.answered_in

    def start_at(self, dialect: str) -> None:
        if self.auto and dialect in DIALECTS:
            self.dialect = _plainer(self.dialect, dialect)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        """The connection pool belongs to the limits: closed here only if they are ours."""
        if self._own_limits:
            await self.limits.aclose()

    async def check(self) -> None:
        """/models, given as long as a call is: a single-slot server (llama-cpp-python's)
        answers it only once the completion it is computing for someone else ends."""
        try:
            await self.client.models.list(timeout=self.config.timeout)
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
            await self.client.post(
                "/chat/completions",
                body={
                    "model": self.config.model,
                    "messages": [{"role": "user", "content": "Say OK."}],
                    "max_tokens": 1,
                },
                cast_to=openai.AsyncAPIResponse[ChatCompletion],
                options={"timeout": self.config.timeout},
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
        call = _Call(self.config.max_retries, None if self.in_process else self.config.timeout)
        found = (self.endpoint, self.config.model)
        if self.auto and found in self.limits.dialects:  # another party or session found it
            self.start_at(self.limits.dialects[found])
        try:
            while True:
                try:
                    reply = await self._chat_once(messages, schema_name, schema, call)
                    self.limits.replied(self.endpoint)
                    break
                except (openai.APIError, BadResponseError) as exc:
                    if not await self._again(exc, call):
                        raise
        except (openai.APIError, BadResponseError) as exc:
            if isinstance(exc, openai.APIError):
                # the error goes on to the manifest, the checkpoint and the terminal: one
                # line, and without the key should the endpoint quote the request's headers
                scrub(exc, self._secret)
            exc.retries = call.notes  # type: ignore[attr-defined]
            raise
        self.answered_in = self.dialect
        if self.auto:
            self.limits.dialects[found] = self.dialect
        reply.retries = call.notes
        return reply

    async def _again(self, exc: Exception, call: _Call) -> bool:
        """Whether to send the request again, having waited as the fault asks: in `auto`, at
        once in a plainer dialect if the server refused this one (no retry spent); for a
        transport fault, while the call's budget lasts, after the backoff or the server's
        Retry-After, and after a timeout also until the server is free."""
        if isinstance(exc, openai.APIStatusError) and self._refuses_dialect(exc):
            if not self.auto:
                return False  # the dialect asked for is not spoken: no retry changes that
            self.dialect = DIALECTS[DIALECTS.index(self.dialect) + 1]
            return True
        fault = _fault(exc)
        if fault is not None and _overloaded(*fault):
            self.limits.refused(self.endpoint, call.ticket, fault[2])  # told to slow down
        if fault is None or call.left <= 0:
            return False
        kind, status, after = fault
        start = time.perf_counter()
        await asyncio.sleep(_backoff(call.spent) if after is None else after)
        call.left -= 1
        if kind == "timeout" and call.timeout is not None:
            call.timeout = min(call.timeout * 2, self.config.timeout * MAX_TIMEOUT_GROWTH)
            await self._until_free(call.timeout)
        wait = round(time.perf_counter() - start, 3)
        call.note(RetryNote(kind=kind, status=status, wait_s=wait))
        return True

    async def _until_free(self, timeout: float) -> None:
        """Wait, up to `timeout`, until the server has room for the request again: its
        /models, which a single-slot server answers only once the running completion (very
        likely the copy just abandoned) ends. Whatever it answers, the request goes again."""
        # a timeout here too, a refusal, no route: the request sent again will say for itself
        with contextlib.suppress(openai.APIError):
            await self.client.get(
                "/models", cast_to=openai.AsyncAPIResponse[object], options={"timeout": timeout}
            )

    def _refuses_dialect(self, exc: openai.APIStatusError) -> bool:
        """Whether an error refuses the structured-output dialect the request was sent in,
        so that `auto` asks again at once in the next plainer one. A 400 to `json_schema`
        is taken to; any other 400, a 422, or a 500 (llama-cpp-python wraps its validation
        error as an internal error) must name `response_format` or the dialect. A 500 that
        names neither is a transport fault, retried as it was sent."""
        if self.dialect == "prompt" or exc.status_code not in (400, 422, 500):
            return False
        said = f"{exc} {exc.body!r}"  # the SDK's message may leave the body out (a 422's)
        named = "response_format" in said or self.dialect in said
        return named or (exc.status_code == 400 and self.dialect == "json_schema")

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
        call: _Call,
    ) -> Reply:
        body = self._body(messages, schema_name, schema)
        sem = self.limits.get(self.endpoint, self.config.concurrency)
        async with sem as call.ticket:  # None, or the request's number under `auto`
            sent = body["messages"]
            estimate = sum(len(m["content"]) for m in sent) // 4 + self.config.max_tokens
            await self.limits.admit(self.endpoint, estimate)
            start = time.perf_counter()
            # The body as built, through the client's own post(): the SDK's timeouts,
            # headers and error types all hold. `chat.completions.create` would first walk
            # every message against its union of TypedDicts to rename aliased keys (chat
            # parameters have none), about 0.8 ms of CPU a call: the largest single cost of a
            # sweep at a hundred sessions on two cores. The body goes as JSON bytes encoded
            # by orjson, a fifth of the json module's time for a 30 kB prompt; the client's
            # default headers already say it is JSON.
            raw = await self.client.post(
                "/chat/completions",
                content=orjson.dumps(body),
                cast_to=openai.AsyncAPIResponse[ChatCompletion],
                options=call.options(self.config.timeout),
            )
            ms = (time.perf_counter() - start) * 1000
            text = await raw.read()
        return read_reply(text, ms, self.where)
