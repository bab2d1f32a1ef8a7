"""The benchmark's model server: majlis's loopback server, run in a process of its own.

    python -m benchmarks.server --latency 0.05 [--responder canned|caching]
                                [--rate 30 --burst 6]

With --rate, the server is rate limited as hosted APIs are: a token bucket of that many
requests a second and bursts of --burst, past which it answers 429 with Retry-After
(`majlis.model.TokenBucket`).

It prints one JSON line ({"base_url": ..., "pid": ...}) once it listens, serves until its
stdin closes, then stops. Run apart from the harness so its CPU does not count against it.

Besides the OpenAI-compatible routes it answers three of its own:
  POST /bench/record?on=1   start (or with on=0 stop) keeping request bodies; clears them
  GET  /bench/requests      the kept request bodies, in arrival order
  GET  /bench/stats         {"calls": requests received, "refused": of them answered 429
                            by the rate limit, "cpu_s": this process's CPU time,
                            "trace_bytes": OTLP bytes received}
  POST /v1/traces           an OTLP/HTTP collector that keeps nothing: counts the bytes
                            and answers success (the tracing benchmark's live endpoint)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from majlis.model import LoopbackServer, TokenBucket

from .responders import CannedResponder, PrefixCachingResponder


class Requests(list):
    """The server's request log: counts every request, keeps bodies only while recording."""

    def __init__(self) -> None:
        super().__init__()
        self.keep = False
        self.count = 0

    def append(self, body: Any) -> None:
        self.count += 1
        if self.keep:
            super().append(body)


@dataclass
class BenchServer(LoopbackServer):
    requests: list[dict[str, Any]] = field(default_factory=Requests)
    trace_bytes: int = 0

    def app(self) -> Starlette:
        base = super().app()
        return Starlette(
            routes=[
                *base.routes,
                Route("/bench/record", self._record, methods=["POST"]),
                Route("/bench/requests", self._requests, methods=["GET"]),
                Route("/bench/stats", self._stats, methods=["GET"]),
                Route("/v1/traces", self._traces, methods=["POST"]),
            ]
        )

    async def _record(self, request: Request) -> JSONResponse:
        log = self.requests
        assert isinstance(log, Requests)
        log.keep = request.query_params.get("on", "1") == "1"
        log.clear()
        return JSONResponse({"recording": log.keep})

    async def _requests(self, request: Request) -> JSONResponse:
        return JSONResponse(list(self.requests))

    async def _stats(self, request: Request) -> JSONResponse:
        log = self.requests
        assert isinstance(log, Requests)
        refused = self.fault.refused if isinstance(self.fault, TokenBucket) else 0
        stats = {"calls": log.count, "refused": refused, "cpu_s": time.process_time()}
        return JSONResponse({**stats, "trace_bytes": self.trace_bytes})

    async def _traces(self, request: Request) -> Response:
        self.trace_bytes += len(await request.body())
        return Response(b"", media_type="application/x-protobuf")  # an empty success


RESPONDERS = {"canned": CannedResponder, "caching": PrefixCachingResponder}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.server")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds added to every call")
    ap.add_argument("--responder", choices=sorted(RESPONDERS), default="canned")
    ap.add_argument("--rate", type=float, help="rate limit: requests a second (default none)")
    ap.add_argument("--burst", type=float, default=1.0, help="rate limit: the largest burst")
    ap.add_argument("--cpu", type=int, help="run on this core alone (Linux)")
    args = ap.parse_args(argv)
    if args.cpu is not None:  # before any thread starts: each new one inherits the mask
        os.sched_setaffinity(0, {args.cpu})
    bucket = None if args.rate is None else TokenBucket(args.rate, args.burst)
    server = BenchServer(RESPONDERS[args.responder](), latency=args.latency, fault=bucket).start()
    print(json.dumps({"base_url": server.base_url}), flush=True)
    try:
        sys.stdin.read()  # serve until the parent closes our stdin (or dies)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
