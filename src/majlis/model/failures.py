"""How a failure is said: a lost connection in plain words, an endpoint's refusal, a
validation error in brief, and an SDK error scrubbed of the API key before it reaches the
manifest, the checkpoint or the terminal.

Its own module because the command line words errors too, and must do so without loading
the openai SDK: the SDK's error classes are looked up where the SDK already is (in
`sys.modules`), never imported for the purpose. An exception can only be one of them if
something imported the SDK to raise it.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import sys
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    import openai


def _sdk() -> Any:
    """The openai module if this process has imported it, else None."""
    return sys.modules.get("openai")


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
    sdk = _sdk()
    if isinstance(root, TimeoutError) or (sdk and isinstance(exc, sdk.APITimeoutError)):
        return "timed out"
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}"


def error_line(exc: BaseException) -> str:
    """An error as the run's manifest and the terminal say it: its type and message, or for
    a lost connection, where and why in plain words (the SDK's own message names neither)."""
    sdk = _sdk()
    if sdk and isinstance(exc, sdk.APIConnectionError):
        return f"no reply from {exc.request.url}: {unreachable(exc)}"
    return f"{type(exc).__name__}: {exc}"


def refusal(exc: BaseException) -> str | None:
    """For an endpoint's answer that retrying cannot change (a 4xx other than a timeout,
    conflict or rate limit: an unknown model, a missing route, a forbidden key), one line
    saying where and what; None for anything else."""
    sdk = _sdk()
    if not (sdk and isinstance(exc, sdk.APIStatusError)):
        return None
    if not 400 <= exc.status_code < 500 or exc.status_code in (408, 409, 429):
        return None
    said = " ".join(str(exc.message).split())
    return f"{exc.request.url} answered {exc.status_code}: {said[:300]}"


def server_fault(exc: BaseException) -> bool:
    """Whether the endpoint failed on its side: a 5xx, a lost connection or a timeout
    (what the transport retries, and retrying later may cure)."""
    sdk = _sdk()
    if sdk is None:
        return False
    if isinstance(exc, sdk.APIConnectionError):  # timeouts are connection errors too
        return True
    return isinstance(exc, sdk.APIStatusError) and exc.status_code >= 500


def brief_error(exc: Exception) -> str:
    """A validation error's first three complaints on one line, each with where it is;
    any other error's message."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            loc = ".".join(str(p) for p in err["loc"]) or "(top)"
            parts.append(f"{loc}: {err['msg']}")
        return "; ".join(parts)
    return str(exc)


_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\",}\]]+")


def _mask(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)


def scrub(exc: openai.APIError, secret: str | None) -> None:
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
