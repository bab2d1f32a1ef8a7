"""A loopback OpenAI-compatible server: the embedded model's front door and the tests' peer.

It speaks POST /v1/chat/completions and GET /v1/models on 127.0.0.1 only. A *responder*
turns a request body into the reply's text (the scripted player, the embedded llama.cpp
model, a test double). The server records every request it receives, so tests can count
calls and check what each party's prompt contained.

It can also behave as a real server would where majlis must cope with the difference: a
structured-output dialect refused with a 500 rather than a 400, one completion computed at
a time with /models waiting behind it (`llama_cpp_python` sets both, as that server does),
or a slow /models.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import MajlisError
from . import scripted

# A responder gets the request body and returns (text, usage) or a full response dict.
Responder = Callable[[dict[str, Any]], "Completion"]


class RequestError(MajlisError):
    """A responder's word that the request cannot be answered as sent (answered 400)."""


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


@dataclass
class LoopbackServer:
    """A running server: `base_url` for clients, `requests` for what it was sent."""

    responder: Responder
    dialects: frozenset[str] = frozenset({"json_schema", "json_object", "none"})
    latency: float = 0.0
    api_key: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    blocking: bool = False  # True when the responder is slow CPU work (run it in a thread)
    # the status an unspoken dialect is refused with: 400, or 422/500 with the request's
    # validation error as the body (a 500: llama-cpp-python's internal-error wrapping)
    refuse_with: int = 400
    # one completion at a time, the rest queued, and /models answered only between them;
    # a request its client gave up on is still computed (llama-cpp-python's server)
    single_slot: bool = False
    models_latency: float = 0.0  # seconds before /models answers
    held: int = 0  # chat requests received and not yet answered
    peak_held: int = 0
    computed: int = 0  # completions the responder made (whether or not anyone got them)
    # fault(body, n) may return a response to send instead of an answer; n counts every
    # request, retries included (majlis.faults.FaultPlan: errors, drops, hangs, bad bodies)
    fault: Callable[[dict[str, Any], int], Response | None] | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _slot: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    def _unauthorized(self, request: Request) -> JSONResponse | None:
        if self.api_key is None:
            return None
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        return None

    async def _models(self, request: Request) -> JSONResponse:
        if self.models_latency:
            await asyncio.sleep(self.models_latency)
        if self.single_slot:
            async with self._slot:
                pass  # after the completion being computed, as llama-cpp-python does
        return self._unauthorized(request) or JSONResponse(
            {
                "object": "list",
                "data": [{"id": "loopback", "object": "model", "owned_by": "majlis"}],
            }
        )

    async def _chat(self, request: Request) -> JSONResponse:
        denied = self._unauthorized(request)
        if denied:
            return denied
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "invalid_request_error", "body is not JSON")
        self.requests.append(body)
        if self.fault is not None:
            injected = self.fault(body, len(self.requests))
            if injected is not None:
                return injected  # type: ignore[return-value]
        kind = (body.get("response_format") or {}).get("type", "none")
        if kind not in self.dialects:
            return _refusal(self.refuse_with, kind)
        self.held += 1
        self.peak_held = max(self.peak_held, self.held)
        try:
            if self.single_slot:
                async with self._slot:
                    out = await self._compute(body)
            else:
                out = await self._compute(body)
        except RequestError as exc:
            return _error(400, "invalid_request_error", str(exc))
        except Exception as exc:  # a responder bug must look like a server error, not hang
            return _error(500, "server_error", f"{type(exc).__name__}: {exc}")
        finally:
            self.held -= 1
        return JSONResponse(completion_body(body, out))

    async def _compute(self, body: dict[str, Any]) -> Completion:
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.blocking:
            out = await run_in_threadpool(self._respond_locked, body)
        else:
            out = self.responder(body)
        self.computed += 1
        return out

    def _respond_locked(self, body: dict[str, Any]) -> Completion:
        with self._lock:
            return self.responder(body)

    def start(self) -> LoopbackServer:
        config = uvicorn.Config(
            self.app(),
            host=self.host,
            port=self.port,
            log_level="error",
            lifespan="off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, daemon=True, name="majlis-loopback"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the loopback server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}}, status_code=status
    )


def _refusal(status: int, kind: str) -> JSONResponse:
    """A dialect the server does not speak, refused as servers do: a 400 saying so, or the
    request's validation error, as FastAPI reports it (422) or as llama-cpp-python wraps
    it into an internal error (500)."""
    if status == 400:
        return _error(
            400, "invalid_request_error", f"response_format type {kind!r} is not supported"
        )
    problem = {
        "type": "literal_error",
        "loc": ("body", "response_format", "type"),
        "msg": "Input should be 'text' or 'json_object'",
        "input": kind,
    }
    if status == 422:
        return JSONResponse({"detail": [{**problem, "loc": list(problem["loc"])}]}, 422)
    message = repr([problem])  # the exception's text, as that server sends it
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": "internal_server_error",
                "param": None,
                "code": None,
            }
        },
        status_code=status,
    )


def completion_body(request: dict[str, Any], out: Completion) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": out.prompt_tokens,
        "completion_tokens": out.completion_tokens,
        "total_tokens": out.prompt_tokens + out.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": out.cached_tokens},
    }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "loopback"),
        "system_fingerprint": "majlis-loopback",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": out.text},
            }
        ],
        "usage": usage,
    }


def scripted_responder(body: dict[str, Any]) -> Completion:
    """The scripted player behind HTTP: the model name picks its style."""
    text = scripted.respond(body["messages"], body.get("model", "scripted"), body.get("seed"))
    chars = sum(len(m.get("content") or "") for m in body["messages"])
    return Completion(text, prompt_tokens=chars // 4, completion_tokens=len(text) // 4)


def llama_cpp_python(responder: Responder = scripted_responder, **kwargs: Any) -> LoopbackServer:
    """A loopback server that answers as llama-cpp-python's own (`python -m
    llama_cpp.server`) does: `json_object` with a schema is spoken, `json_schema` is refused
    with a 500 that quotes the validation error naming response_format, and completions are
    computed one at a time, /models waiting behind the running one."""
    settings: dict[str, Any] = {
        "dialects": frozenset({"json_object", "none"}),
        "refuse_with": 500,
        "single_slot": True,
    }
    return LoopbackServer(responder, **{**settings, **kwargs})


@contextlib.contextmanager
def serve(responder: Responder = scripted_responder, **kwargs: Any) -> Iterator[LoopbackServer]:
    server = LoopbackServer(responder, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
