"""Benchmark: what OpenTelemetry traces cost a model call, tracing off against on.

The same six-round session runs against the canned server (its own process, 20 ms a
reply) with tracing off, on, and on but sampled out, each repeat in the next of the six
orders of the three (so that a drift in the machine's speed, or what one session leaves
for the next, falls on all three alike). On
is as a researcher would run it: the SDK's batch processor and its OTLP/HTTP exporter,
sending to a collector that keeps nothing (a route of the server process, whose CPU is not
counted), so each span is built, queued, encoded into protobuf and posted; the flush at
the session's end is counted and the provider is shut down after it.

Two figures per model call, each the median over the repeats of the ratio on/off:
- CPU: the process's CPU time (every thread, the exporter's too) over the session's calls.
  Goal: at most 5% more.
- wall: the session's wall time over its calls, which is what a run waits for.
With two or more cores, every thread of the harness is pinned to one and every thread of
the server to another (its `--cpu`), so that neither runs on the other's core.

The sampled-out session (`OTEL_TRACES_SAMPLER=parentbased_always_off`) is what a session
costs that a ratio sampler (`parentbased_traceidratio`) leaves out, so that the cost at
any sampling ratio r is about r x on + (1 - r) x sampled out.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from majlis import tracing

from .common import Clock, median, pinned, server_process, two_cores
from .overhead import harness

GOAL_RATIO = 1.05
CALLS = 72  # a six-round session of the default scenario: 6 x (6 moves + 6 votes)
KINDS = ("off", "on", "out")
ORDERS = list(itertools.permutations(KINDS))
SAMPLERS = {"on": "parentbased_always_on", "out": "parentbased_always_off"}


async def _session(base_url: str, folder: Path, kind: str) -> tuple[float, float]:
    """CPU and wall ms per call of one session, tracing as `kind` says: set up as `--trace`
    sets it up from the standard variables, the flush at its end included (the spans still
    queued then are part of the cost)."""
    tracing.use(None)
    if kind != "off":
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = (
            base_url.removesuffix("/v1") + "/v1/traces"
        )
        os.environ["OTEL_TRACES_EXPORTER"] = "otlp"
        os.environ["OTEL_TRACES_SAMPLER"] = SAMPLERS[kind]  # read by the TracerProvider
        assert tracing.setup(flag=True)
    with Clock() as clock:
        done = await harness(base_url, folder, None, "full")
        tracing.flush()
    provider = tracing.provider()
    tracing.use(None)
    if provider is not None:
        provider.shutdown()  # its batch thread ends, and wakes no more in later sessions
    assert done.calls == CALLS, done.calls
    return clock.cpu / CALLS * 1000, clock.wall / CALLS * 1000


async def _repeat(base_url: str, root: Path, i: int) -> dict[str, tuple[float, float]]:
    """One session of each kind, in the i-th of the six orders (so that each kind follows
    each other kind, and comes first, equally often over six repeats)."""
    order = ORDERS[max(i, 0) % len(ORDERS)]
    return {kind: await _session(base_url, root / f"{kind}{i}", kind) for kind in order}


def quartiles(xs: list[float]) -> list[float]:
    """The first and third quartiles: how far one repeat's ratio strays from the next's."""
    q = statistics.quantiles(xs, n=4)
    return [round(q[0], 3), round(q[2], 3)]


def run(quick: bool, latency: float = 0.02) -> dict[str, Any]:
    """The figures; the OTEL_* variables it sets are put back as they were (later
    benchmarks start `majlis run` as a subprocess, which would read them)."""
    saved = dict(os.environ)
    try:
        return _run(quick, latency)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run(quick: bool, latency: float) -> dict[str, Any]:
    repeats = 6 if quick else 24  # whole cycles of the six orders
    cores = two_cores()
    with (
        server_process(latency, extra=("--cpu", str(cores[1])) if cores else ()) as srv,
        pinned(cores[0] if cores else None),
        tempfile.TemporaryDirectory() as tmp,
    ):
        asyncio.run(_repeat(srv.base_url, Path(tmp), -1))  # warm-up: imports, compiled graph
        runs = [asyncio.run(_repeat(srv.base_url, Path(tmp), i)) for i in range(repeats)]
        received = srv.stats()["trace_bytes"]

    def ms(kind: str, which: int) -> float:
        return round(median([r[kind][which] for r in runs]), 3)

    def ratios(kind: str, which: int) -> list[float]:
        return [r[kind][which] / r["off"][which] for r in runs]

    cpu, wall = ratios("on", 0), ratios("on", 1)
    added = median([r["on"][0] - r["off"][0] for r in runs])
    return {
        "repeats": repeats,
        "pinned": cores,  # [this process's core, the server's], or None
        "server_latency_ms": round(latency * 1000),
        "calls_per_session": CALLS,
        "cpu_ms_per_call_off": ms("off", 0),
        "cpu_ms_per_call_on": ms("on", 0),
        "added_cpu_ms_per_call": round(added, 3),
        "ratio": round(median(cpu), 3),
        "ratio_quartiles": quartiles(cpu),
        "wall_ms_per_call_off": ms("off", 1),
        "wall_ms_per_call_on": ms("on", 1),
        "wall_ratio": round(median(wall), 3),
        "wall_ratio_quartiles": quartiles(wall),
        "cpu_ms_per_call_sampled_out": ms("out", 0),
        "sampled_out_ratio": round(median(ratios("out", 0)), 3),
        "otlp_kb_per_session": round(received / 1024 / (repeats + 1), 1),  # warm-up too
        "goals": {
            "ratio<=1.05": median(cpu) <= GOAL_RATIO,
            "wall_ratio<=1.05": median(wall) <= GOAL_RATIO,
        },
    }


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The table's rows for this benchmark."""

    def mark(goal: str) -> str:
        return "met" if r["goals"].get(goal) else "MISSED"

    cpu = f"{r['cpu_ms_per_call_off']:.2f} ms -> {r['cpu_ms_per_call_on']:.2f} ms"
    cpu += f" (+{r['added_cpu_ms_per_call']:.3f} ms, {r['ratio']:.3f}x"
    if "ratio_quartiles" in r:  # (results from before it was kept have none)
        cpu += "; quartiles {:.3f}x-{:.3f}x".format(*r["ratio_quartiles"])
    cpu += ")"
    out: list[tuple[str, str, str, str]] = [
        (
            "tracing",
            "CPU per model call, traces off -> on (OTLP/HTTP)",
            cpu,
            f"<= 1.05x: {mark('ratio<=1.05')}",
        ),
    ]
    if "wall_ratio" in r:
        wall = f"{r['wall_ms_per_call_off']:.2f} ms -> {r['wall_ms_per_call_on']:.2f} ms"
        wall += f" ({r['wall_ratio']:.3f}x;"
        wall += " quartiles {:.3f}x-{:.3f}x)".format(*r["wall_ratio_quartiles"])
        goal = f"<= 1.05x: {mark('wall_ratio<=1.05')}"
        label = f"  wall time per model call ({r.get('server_latency_ms', 20)} ms server)"
        out.append(("tracing", label, wall, goal))
    out += [
        (
            "tracing",
            "  a session sampled out (CPU)",
            f"{r['cpu_ms_per_call_sampled_out']:.2f} ms ({r['sampled_out_ratio']:.3f}x)",
            "",
        ),
        ("tracing", "  OTLP sent per six-round session", f"{r['otlp_kb_per_session']} kB", ""),
    ]
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--full" not in sys.argv), indent=2))
