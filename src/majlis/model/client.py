"""The model layer: one async client over the openai SDK, plus the in-process scripted player.

Two retry layers, one per kind of error: the SDK retries transport failures (connection
errors, timeouts, 429 and 5xx, honouring Retry-After), and so does the backend for a 200
whose body is not a chat completion (cut or malformed JSON); tenacity retries a reply that
does not validate, feeding the validation error back to the model. Agents and the graph see
neither: they get a validated object, a ModelBehaviourError, or, once the transport retries
are spent, the transport error itself (the session then stops, resumable).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import os
import random
import re
import socket
import ssl
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

import openai
import orjson
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from ..errors import EndpointError, MajlisError, ModelBehaviourError, UserError
from . import scripted
from .budget import Meter
from .cache import ResponseCache, SampleCounter, request_key
from .usage import Usage

M = TypeVar("M", bound=BaseModel)
Dialect = Literal["json_schema", "json_object", "prompt"]
DIALECTS: tuple[Dialect, ...] = ("json_schema", "json_object", "prompt")
# `majlis run` on the embedded model plays this many rounds unless told otherwise: enough
# for the whole arc (injects, proposals, votes, an outcome) in a few minutes on two cores
EMBEDDED_ROUNDS = 3


class ModelConfig(BaseModel):
    """How one party's model is reached. The key itself is never stored, only its variable."""

    model_config = ConfigDict(extra="forbid")
    model: str = "embedded"
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(700, ge=16)
    seed: int | None = None
    timeout: float = Field(120, gt=0)
    max_retries: int = Field(5, ge=0, description="Transport retries, done by the SDK.")
    output_retries: int = Field(
        2, ge=0, description="Re-asks after a reply that does not validate."
    )
    structured: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    concurrency: int = Field(8, ge=1, description="Calls in flight at once to this endpoint.")
    profile: Literal["auto", "full", "compact"] = Field(
        "auto",
        description="Prompt profile: full, or compact for small local models (short brief, "
        "score table, what happened since the party's last move, plain-sentence replies). "
        "auto: compact on the embedded model, full elsewhere.",
    )
    narrated: bool = Field(
        False,
        description="The scripted negotiator decides the move from the party's scores; the "
        "model only writes the public and side messages in the persona's voice.",
    )

    @property
    def prompt_profile(self) -> Literal["full", "compact"]:
        if self.profile == "auto":
            return "compact" if self.is_embedded else "full"
        return self.profile

    @property
    def is_scripted(self) -> bool:
        return self.model == "scripted" or self.model.startswith("scripted:")

    @property
    def is_embedded(self) -> bool:
        """The embedded model, which majlis runs itself (no endpoint given)."""
        return self.model == "embedded" and self.base_url is None

    @property
    def reaches_endpoint(self) -> bool:
        """Called over HTTP: not played in process, by a person, or by the embedded model."""
        local = self.is_scripted or self.model in ("embedded", "human")
        return self.base_url is not None or not local

    @property
    def endpoint(self) -> str:
        """The key its limits and connection pool are shared under."""
        return self.base_url or "openai"


@dataclass
class Reply:
    text: str
    usage: Usage
    call_id: str
    latency_ms: float
    model: str | None = None
    fingerprint: str | None = None
    cached: bool = False


@dataclass
class Answer(Generic[M]):
    """A validated reply, with what it cost."""

    value: M
    reply: Reply
    attempts: int
    usage: Usage = field(default_factory=Usage)


class BadResponseError(MajlisError):
    """The endpoint answered 200 with a body that is not a chat completion (cut, not JSON)."""


class ModelsFile(BaseModel):
    """A models file (`majlis run --models FILE`): a default model and per-party overrides."""

    model_config = ConfigDict(extra="forbid")
    default: ModelConfig | None = None
    parties: dict[str, ModelConfig] = {}


class OutputInvalid(Exception):
    def __init__(self, error: str, raw: str) -> None:
        super().__init__(error)
        self.error, self.raw = error, raw


def portion(total: int | None, part: tuple[int, int]) -> int | None:
    """Part i of k of a limit: near-equal shares that add up to the whole."""
    if total is None:
        return None
    i, k = part
    return total // k + (1 if i < total % k else 0)


class EndpointLimits:
    """Per endpoint: calls in flight (a semaphore), optional requests/tokens per minute, and
    one HTTP connection pool.

    One instance is shared by every client and session of a sweep, so the limits hold for
    the endpoint as a whole and connections are reused from session to session instead of
    each party of each session opening its own. Whoever makes an instance closes it
    (`aclose`), which closes the pools.
    """

    def __init__(
        self, rpm: int | None = None, tpm: int | None = None, part: tuple[int, int] = (0, 1)
    ) -> None:
        # a sweep spread over k worker processes gives worker i its portion of every limit
        self.part = part
        self.rpm, self.tpm = portion(rpm, part), portion(tpm, part)
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._sizes: dict[str, int] = {}
        self._sent: dict[str, deque[tuple[float, int]]] = {}
        self._pools: dict[str, Any] = {}
        self.checked: set[tuple[str | None, str, str | None]] = set()  # endpoints reached

    def pool(self, key: str) -> Any:
        """The endpoint's HTTP client, for every openai client that talks to it. `key` is the
        endpoint's base URL (or "openai"); one on this machine is reached directly, never
        through a proxy named in HTTP_PROXY/HTTPS_PROXY, which could not reach it."""
        if key not in self._pools:
            self._pools[key] = http_client(trust_env=not is_loopback(key))
        return self._pools[key]

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.aclose()

    def declare(self, configs: Iterable[ModelConfig]) -> None:
        """Name every config that will use these limits before any call is made. Configs that
        share an endpoint but give it different `concurrency` get the smallest: the limit is
        the endpoint's, and the strictest reading of it is the safe one."""
        for cfg in filter(lambda c: c.reaches_endpoint, configs):
            key = cfg.endpoint
            self._sizes[key] = min(self._sizes.get(key, cfg.concurrency), cfg.concurrency)

    def get(self, key: str, size: int) -> asyncio.Semaphore:
        if key not in self._sems:
            size = self._sizes.get(key, size)
            self._sems[key] = asyncio.Semaphore(portion(size, self.part) or 1)
        return self._sems[key]

    async def admit(self, key: str, tokens: int) -> None:
        """Wait until one more request of about `tokens` fits in the last minute's budget."""
        if self.rpm is None and self.tpm is None:
            return
        window = self._sent.setdefault(key, deque())
        while True:
            now = time.monotonic()
            while window and now - window[0][0] >= 60:
                window.popleft()
            used = sum(t for _, t in window)
            fits_rpm = self.rpm is None or len(window) < self.rpm
            fits_tpm = self.tpm is None or not window or used + tokens <= self.tpm
            if fits_rpm and fits_tpm:
                window.append((now, tokens))
                return
            await asyncio.sleep(max(0.01, 60 - (now - window[0][0])))


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


class Backend:
    """Sends one chat request and returns the raw text. Subclasses: HTTP, scripted."""

    name = "backend"

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
        return Reply(text, usage, f"scripted-{uuid.uuid4().hex[:12]}", ms, self.config.model)


def resolve_key(config: ModelConfig) -> str:
    if config.api_key_env:
        key = os.environ.get(config.api_key_env)
        if not key:
            raise UserError(
                f"environment variable {config.api_key_env} is not set (it should hold the API key)"
            )
        return key
    if config.base_url is not None:
        return "not-needed"  # a local server; one that wants a key is named with api_key_env
    key = os.environ.get("OPENAI_API_KEY", "")
    if not key:
        raise UserError(
            f"model {config.model!r} with no base URL means the OpenAI API, which needs a key: "
            "set OPENAI_API_KEY (or name another variable with --api-key-env), or give "
            "--base-url for another endpoint"
        )
    return key


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client: loading the CA bundle costs
    about 35 ms of CPU and 1 MB each time. Built by the SDK's own HTTP library, so it
    trusts exactly what the SDK's default would (SSL_CERT_FILE/DIR, the system's CA store,
    the OS trust store on macOS and Windows)."""
    try:
        import httpx2 as http  # the openai SDK's HTTP library from its 3.x releases
    except ImportError:
        import httpx as http  # before them
    return http.create_ssl_context()


def is_loopback(url: str) -> bool:
    """Whether a base URL names this machine (localhost or a loopback address)."""
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_client(trust_env: bool = True) -> Any:
    """The SDK's aiohttp transport when aiohttp is installed (the `openai[aiohttp]` extra),
    else its httpx one. At a hundred sessions at once, httpx's connection pool costs about
    2 ms of CPU a request against aiohttp's 0.3: on two cores, the difference between the
    harness keeping up with the model and the harness being the bottleneck."""
    try:
        return openai.DefaultAioHttpClient(verify=tls_context(), trust_env=trust_env)
    except RuntimeError:  # the SDK says aiohttp is missing
        return openai.DefaultAsyncHttpxClient(verify=tls_context(), trust_env=trust_env)


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
        while True:
            try:
                return await self._chat_dialect(messages, schema_name, schema, budget)
            except BadResponseError:
                if budget.left <= 0:
                    raise
                await asyncio.sleep(_backoff(budget.spent))
                budget.left -= 1
            except openai.APIError as exc:
                # the error goes on to the manifest, the checkpoint and the terminal: one
                # line, and without the key should the endpoint quote the request's headers
                _scrub(exc, self._secret)
                raise

    async def _chat_dialect(
        self,
        messages: list[dict[str, str]],
        schema_name: str,
        schema: dict[str, Any],
        budget: _RetriesLeft,
    ) -> Reply:
        while True:
            try:
                return await self._chat_once(messages, schema_name, schema, budget)
            except openai.BadRequestError as exc:
                if self.config.structured != "auto" or self.dialect == "prompt":
                    raise
                # the server does not speak this structured-output dialect: step down once
                self.dialect = DIALECTS[DIALECTS.index(self.dialect) + 1]
                if "response_format" not in str(exc) and self.dialect == "prompt":
                    raise

    async def _chat_once(
        self,
        messages: list[dict[str, str]],
        schema_name: str,
        schema: dict[str, Any],
        budget: _RetriesLeft,
    ) -> Reply:
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
        body = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            **kwargs,
        }
        sem = self.limits.get(self.endpoint, self.config.concurrency)
        async with sem:
            estimate = sum(len(m["content"]) for m in messages) // 4 + self.config.max_tokens
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
        try:  # parsed and checked in one pass
            return _reply(Completion.model_validate_json(text), ms)
        except ValidationError as exc:
            first = exc.errors()[0]
            if first["type"] == "json_invalid":  # a cut or malformed body
                why = first["msg"].removeprefix("Invalid JSON: ")
                raise BadResponseError(
                    f"{self.where} sent a reply that is not valid JSON ({why})"
                ) from None
            raise BadResponseError(
                f"{self.where} sent a reply that is not a chat completion ({_brief_error(exc)})"
            ) from None


def unreachable(exc: BaseException) -> str:
    """Why a connection failed, in plain words. The SDK's aiohttp transport reports every
    failed connect as a ConnectTimeout; the operating system's error underneath says which
    it was: nothing listening, a name that does not resolve, no answer, a TLS failure."""
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    root = chain[-1]
    if isinstance(root, ConnectionRefusedError):
        return "connection refused (is the server running, on that port?)"
    if isinstance(root, socket.gaierror):
        return f"the host name does not resolve ({root.strerror})"
    if isinstance(root, ssl.SSLError):
        return f"TLS failed ({root})"
    if isinstance(root, OSError) and root.strerror:
        return f"{root.strerror}"
    if isinstance(root, TimeoutError) or isinstance(exc, openai.APITimeoutError):
        return "timed out"
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}"


def error_line(exc: BaseException) -> str:
    """An error as the run's manifest and the terminal say it: its type and message, or for
    a lost connection, where and why in plain words (the SDK's own message names neither)."""
    if isinstance(exc, openai.APIConnectionError):
        return f"no reply from {exc.request.url}: {unreachable(exc)}"
    return f"{type(exc).__name__}: {exc}"


def refusal(exc: BaseException) -> str | None:
    """For an endpoint's answer that retrying cannot change (a 4xx other than a timeout,
    conflict or rate limit: an unknown model, a missing route, a forbidden key), one line
    saying where and what; None for anything else."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    if not 400 <= exc.status_code < 500 or exc.status_code in (408, 409, 429):
        return None
    said = " ".join(str(exc.message).split())
    return f"{exc.request.url} answered {exc.status_code}: {said[:300]}"


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


_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\",}\]]+")


def _mask(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)


def _scrub(exc: openai.APIError, secret: str | None) -> None:
    """An SDK error, in place: the key and any bearer token masked, the message on one line."""
    exc.args = tuple(
        " ".join(_mask(a, secret).split()) if isinstance(a, str) else a for a in exc.args
    )
    exc.message = " ".join(_mask(exc.message, secret).split())
    if exc.body is not None:
        try:
            exc.body = json.loads(_mask(json.dumps(exc.body), secret))
        except (TypeError, ValueError):
            exc.body = None


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


class Completion(BaseModel):
    """What majlis reads of a chat completion, validated: a 200 whose body is anything else
    is a transport fault, retried. Read straight from the JSON, which costs a fraction of
    building the SDK's full ChatCompletion (every field, every nested model) for each call."""

    id: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    choices: list[_Choice]
    usage: _CompletionUsage | None = None


def _reply(resp: Completion, ms: float) -> Reply:
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


class CachingBackend(Backend):
    """Serves a request from the cache when it can; stores what the inner backend answers."""

    def __init__(
        self, inner: Backend, config: ModelConfig, cache: ResponseCache, counter: SampleCounter
    ) -> None:
        self.inner, self.config, self.cache, self.counter = inner, config, cache, counter
        self.name = inner.name

    async def check(self) -> None:
        await self.inner.check()

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
            )
        reply = await self.inner.chat(messages, schema_name, schema)
        self.cache.put(
            key, sample, reply.text, reply.usage, reply.call_id, reply.model, reply.fingerprint
        )
        return reply


class ModelClient:
    """Asks for a structured answer and validates it; re-asks with the error on bad output."""

    def __init__(
        self, config: ModelConfig, backend: Backend, meters: list[Meter] | None = None
    ) -> None:
        self.config = config
        self.backend = backend
        self.meters = meters or []  # budgets this client spends against

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
        raise ModelBehaviourError(
            f"invalid reply after {asking.attempts} attempt(s): {failed.error}",
            raw=failed.raw,
            attempts=asking.attempts,
        )

    async def _attempt(self, asking: _Asking, output: type[M], schema: dict[str, Any]) -> Answer[M]:
        asking.attempts += 1
        for meter in self.meters:
            meter.check()
        last = await self.backend.chat(asking.convo, output.__name__.lower(), schema)
        if not last.cached:
            for meter in self.meters:
                meter.charge(self.config.model, last.usage)
        total = asking.total = asking.total + last.usage
        try:
            value = output.model_validate(extract_json(last.text))
        except (ValueError, ValidationError) as exc:
            error = _brief_error(exc)
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


class _Asking:
    """One question's state across its attempts: the conversation so far and the cost."""

    def __init__(self, messages: list[dict[str, str]]) -> None:
        self.messages = messages
        self.convo = list(messages)
        self.total = Usage()
        self.attempts = 0


def _brief_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            loc = ".".join(str(p) for p in err["loc"]) or "(top)"
            parts.append(f"{loc}: {err['msg']}")
        return "; ".join(parts)
    return str(exc)


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
