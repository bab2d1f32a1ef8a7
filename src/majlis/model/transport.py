"""The road to an endpoint, below any one request: the API key, the TLS context, the HTTP
client the SDK sends through, and `EndpointLimits`, which shares one connection pool and
one set of rate limits per endpoint among every client of a sweep.

Apart from the backend because none of this knows what a chat request is: the limits are
made once per sweep and handed to every backend, and the pools they own outlive each one.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import openai

from ..errors import UserError
from .adaptive import START, AdaptiveLimit, Aimd
from .config import ModelConfig


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

    With `auto` (a ceiling), the calls in flight are not a fixed number but found per
    endpoint as the sweep runs (`AdaptiveLimit`): the backend reports each clean reply
    (`replied`) and each refusal (`refused`), and `on_change(endpoint, limit)` hears every
    move of a limit. The models' own `concurrency` is then not used.
    """

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        part: tuple[int, int] = (0, 1),
        auto: int | None = None,
        on_change: Callable[[str, int], None] | None = None,
    ) -> None:
        # a sweep spread over k worker processes gives worker i its portion of every limit;
        # with `auto`, each worker finds its own share, as separate TCP flows on one link do
        self.part = part
        self.rpm, self.tpm = portion(rpm, part), portion(tpm, part)
        self.auto = portion(auto, part)
        self.on_change = on_change
        self._sems: dict[str, Any] = {}
        self._sizes: dict[str, int] = {}
        self._sent: dict[str, deque[tuple[float, int]]] = {}
        self._pools: dict[str, Any] = {}
        self.checked: set[tuple[str | None, str, str | None]] = set()  # endpoints reached
        # (endpoint, model) -> the structured-output dialect `auto` found it answers in, so
        # that the other parties and sessions on it begin there rather than find it again
        self.dialects: dict[tuple[str, str], str] = {}

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

    def get(self, key: str, size: int) -> Any:
        """The endpoint's slots, for `async with`: a semaphore of the declared size, or in
        `auto` an `AdaptiveLimit`, whose `async with` gives the request's ticket."""
        if key not in self._sems:
            if self.auto is not None:
                self._sems[key] = self._adaptive(key)
            else:
                size = self._sizes.get(key, size)
                self._sems[key] = asyncio.Semaphore(portion(size, self.part) or 1)
        return self._sems[key]

    def _adaptive(self, key: str) -> AdaptiveLimit:
        ceiling = max(self.auto or 1, 1)
        rule = Aimd(start=max(1, portion(START, self.part) or 1), ceiling=ceiling)
        tell = self.on_change
        limit = AdaptiveLimit(rule, None if tell is None else lambda n: tell(key, n))
        if tell is not None:
            tell(key, limit.limit)
        return limit

    def limit_now(self, key: str) -> int | None:
        """The endpoint's adaptive limit at this moment (None: fixed, or not used yet)."""
        sem = self._sems.get(key)
        return sem.limit if isinstance(sem, AdaptiveLimit) else None

    def replied(self, key: str) -> None:
        """A clean reply from the endpoint: an adaptive limit may grow."""
        sem = self._sems.get(key)
        if isinstance(sem, AdaptiveLimit):
            sem.replied()

    def refused(self, key: str, ticket: int | None, after: float | None) -> None:
        """The endpoint refused request `ticket` or could not keep up with it (a 429, 503 or
        504, a wait of `after` s asked for, a timeout): an adaptive limit is cut, and holds
        new requests back for the wait."""
        sem = self._sems.get(key)
        if isinstance(sem, AdaptiveLimit):
            sem.refused(ticket, after)

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
