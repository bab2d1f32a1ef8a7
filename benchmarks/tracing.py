"""Benchmark: what OpenTelemetry traces cost a model call, tracing off against on.

The same six-round session runs against the canned server (its own process) with tracing
off, then on, alternately, several times. On is as a researcher would run it: the SDK's
batch processor and its OTLP/HTTP exporter, sending to a collector that keeps nothing
(a route of the same server process, whose CPU is not counted), so each span is built,
queued, encoded into protobuf and posted. The process's CPU time (every thread, the exporter's too) is divided by
the session's model calls; the figure is the median ratio of on to off, and the CPU it
adds per call. Goal: at most 5% more CPU per call.

A third session each time runs with tracing on but its trace sampled out
(`OTEL_TRACES_SAMPLER=parentbased_always_off`): what a session costs that a ratio sampler
(`parentbased_traceidratio`) leaves out, so that the cost at any sampling ratio r is about
r x on + (1 - r) x sampled out.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from majlis import tracing

from .common import Clock, median, server_process
from .overhead import harness

GOAL_RATIO = 1.05


def _on(collector: str, sampler: str) -> None:
    """Tracing on, as `--trace` sets it up from the standard variables."""
    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = collector
    os.environ["OTEL_TRACES_EXPORTER"] = "otlp"
    os.environ["OTEL_TRACES_SAMPLER"] = sampler  # read by the SDK's TracerProvider
    assert tracing.setup(flag=True)


async def _traced(base_url: str, folder: Path, sampler: str) -> float:
    """CPU ms per call of one session with tracing on, the flush at its end included (the
    spans still queued then are part of the cost)."""
    _on(base_url.removesuffix("/v1") + "/v1/traces", sampler)
    with Clock() as clock:
        done = await harness(base_url, folder, None, "full")
        tracing.flush()
    tracing.use(None)
    return clock.cpu / done.calls * 1000


async def _round(base_url: str, root: Path, i: int) -> dict[str, float]:
    tracing.use(None)
    off = await harness(base_url, root / f"off{i}", None, "full")
    return {
        "calls": off.calls,
        "off_ms": off.cpu / off.calls * 1000,
        "on_ms": await _traced(base_url, root / f"on{i}", "parentbased_always_on"),
        "out_ms": await _traced(base_url, root / f"out{i}", "parentbased_always_off"),
    }


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
    repeats = 3 if quick else 7
    with server_process(latency) as srv, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_round(srv.base_url, Path(tmp), -1))  # warm-up: imports, compiled graph
        pairs = [asyncio.run(_round(srv.base_url, Path(tmp), i)) for i in range(repeats)]
        received = srv.stats()["trace_bytes"]
    ratio = median([p["on_ms"] / p["off_ms"] for p in pairs])
    return {
        "repeats": repeats,
        "calls_per_session": pairs[0]["calls"],
        "cpu_ms_per_call_off": round(median([p["off_ms"] for p in pairs]), 3),
        "cpu_ms_per_call_on": round(median([p["on_ms"] for p in pairs]), 3),
        "added_cpu_ms_per_call": round(median([p["on_ms"] - p["off_ms"] for p in pairs]), 3),
        "ratio": round(ratio, 3),
        "cpu_ms_per_call_sampled_out": round(median([p["out_ms"] for p in pairs]), 3),
        "sampled_out_ratio": round(median([p["out_ms"] / p["off_ms"] for p in pairs]), 3),
        "otlp_kb_per_session": round(received / 1024 / (repeats + 1), 1),
        "goals": {"ratio<=1.05": ratio <= GOAL_RATIO},
    }


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The table's rows for this benchmark."""
    mark = "met" if r["goals"]["ratio<=1.05"] else "MISSED"
    value = f"{r['cpu_ms_per_call_off']:.2f} ms -> {r['cpu_ms_per_call_on']:.2f} ms"
    value += f" (+{r['added_cpu_ms_per_call']:.3f} ms, {r['ratio']:.3f}x)"
    return [
        ("tracing", "CPU per model call, traces off -> on (OTLP/HTTP)", value, f"<= 1.05x: {mark}"),
        (
            "tracing",
            "  a session sampled out",
            f"{r['cpu_ms_per_call_sampled_out']:.2f} ms ({r['sampled_out_ratio']:.3f}x)",
            "",
        ),
        ("tracing", "  OTLP sent per six-round session", f"{r['otlp_kb_per_session']} kB", ""),
    ]


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
