"""Benchmark 1, overhead: one session against the floor of the same model calls made bare.

The server (its own process) answers every call with a canned reply after a fixed latency.
The harness runs a whole session through the openai SDK (setup, checkpoints, transcript and
all). The bare replay then sends exactly the requests the server recorded from that session,
straight through the openai SDK, in the session's dependency structure: moves one after
another, each round's six votes at once. Its wall time is the floor; its CPU time is the
SDK's and httpx's share, which the harness's CPU time is measured against.

Both run again with two rounds instead of six: the difference splits the harness's cost
into a fixed part per session (set-up: scenario files, clients, run folder) and a marginal
part per call. Last, the same sessions run with the model layer replaced in process by a
canned backend (no HTTP, no SDK): their CPU time is the harness's own, without subtracting
two noisy figures, which a busy machine makes hard to read.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import openai
from openai.types.chat import ChatCompletion

from majlis.model import Backend, ModelClient, ModelConfig, Reply, Usage, http_client
from majlis.run import RunOptions, players as players_module, run_session

from .common import REPO, Clock, ServerProcess, median, server_process, turn_of
from .responders import CannedResponder

GOAL_RATIO = 1.05
GOAL_CPU_MS = 5.0


def stages(bodies: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The session's dependency structure: each move alone, consecutive votes together."""
    out: list[list[dict[str, Any]]] = []
    for body in bodies:
        vote = turn_of(body)["task"] == "vote"
        if vote and out and turn_of(out[-1][0])["task"] == "vote":
            out[-1].append(body)
        else:
            out.append([body])
    return out


async def harness(base_url: str, runs_root: Path, rounds: int | None, context: str) -> Clock:
    opts = RunOptions(
        model=ModelConfig(model="canned", base_url=base_url),
        home=REPO,
        runs_root=runs_root,
        rounds=rounds,
        context=context,
        command=["python", "-m", "benchmarks"],
    )
    with Clock() as clock:
        result = await run_session(opts)
    assert result.manifest.status == "complete" and result.outcome.failed_turns == 0
    clock.calls = result.outcome.calls
    return clock


def bare_client(base_url: str, max_retries: int = 0) -> openai.AsyncOpenAI:
    """An SDK client set up as majlis sets up its own (same HTTP transport), so the floor is
    the fastest the SDK goes here, not its slower defaults."""
    return openai.AsyncOpenAI(
        base_url=base_url, api_key="not-needed", max_retries=max_retries, http_client=http_client()
    )


async def bare(
    base_url: str, plan: list[list[dict[str, Any]]], client: openai.AsyncOpenAI | None = None
) -> Clock:
    """The requests sent straight through the SDK, each body as recorded and each reply
    parsed into a ChatCompletion: a client of its own unless given one."""
    with Clock() as clock:
        own = client is None
        if client is None:
            client = bare_client(base_url)

        async def create(body: dict[str, Any]) -> ChatCompletion:
            return await client.post("/chat/completions", body=body, cast_to=ChatCompletion)

        for stage in plan:
            if len(stage) == 1:
                await create(stage[0])
            else:
                await asyncio.gather(*(create(body) for body in stage))
        if own:
            await client.close()
    return clock


async def one_pair(
    srv: ServerProcess, runs_root: Path, rounds: int | None, context: str
) -> dict[str, Any]:
    """One harness session, then the bare replay of exactly the requests it made."""
    srv.record(True)
    h = await harness(srv.base_url, runs_root, rounds, context)
    plan = stages(srv.requests())
    srv.record(False)
    b = await bare(srv.base_url, plan)
    return {
        "h_wall": h.wall,
        "h_cpu": h.cpu,
        "b_wall": b.wall,
        "b_cpu": b.cpu,
        "calls": sum(len(s) for s in plan),
        "moves": sum(1 for s in plan for body in s if turn_of(body)["task"] == "move"),
        "stages": len(plan),
        "rounds": max(turn_of(s[0])["round"] for s in plan),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    first = runs[0]
    extra_cpu = median([r["h_cpu"] - r["b_cpu"] for r in runs])
    return {
        "rounds": first["rounds"],
        "calls": first["calls"],
        "moves": first["moves"],
        "sequential_stages": first["stages"],
        "harness_wall_s": round(median([r["h_wall"] for r in runs]), 3),
        "bare_wall_s": round(median([r["b_wall"] for r in runs]), 3),
        "wall_ratio": round(median([r["h_wall"] / r["b_wall"] for r in runs]), 3),
        "harness_cpu_s": round(median([r["h_cpu"] for r in runs]), 3),
        "bare_cpu_s": round(median([r["b_cpu"] for r in runs]), 3),
        "extra_cpu_s": round(extra_cpu, 3),
        "extra_wall_s": round(median([r["h_wall"] - r["b_wall"] for r in runs]), 3),
        "harness_cpu_ms_per_call": round(extra_cpu / first["calls"] * 1000, 2),
        "harness_cpu_ms_per_move": round(extra_cpu / first["moves"] * 1000, 2),
    }


class CannedBackend(Backend):
    """The model layer replaced by a canned reply in process: no HTTP, no SDK."""

    def __init__(self) -> None:
        self.canned = CannedResponder()

    async def chat(
        self, messages: list[dict[str, str]], schema_name: str, schema: dict[str, Any]
    ) -> Reply:
        body = {"messages": messages, "response_format": {"type": "json_object", "schema": schema}}
        text = self.canned.text_for(body)
        return Reply(text, Usage(prompt_tokens=1, completion_tokens=1), "in-process", 0.0, "canned")


async def in_process(runs_root: Path, rounds: int | None) -> Clock:
    """A session whose model calls cost nothing: what is left is the harness's own work."""

    def make(config: ModelConfig, *args: Any) -> ModelClient:
        return ModelClient(config, CannedBackend(), args[3] if len(args) > 3 else None)

    with mock.patch.object(players_module, "make_client", make):
        return await harness("http://in-process.invalid/v1", runs_root, rounds, "full")


async def harness_only(runs_root: Path, short: int, repeats: int) -> dict[str, Any]:
    """Harness CPU per call and per session with the model layer in process (no subtraction
    of an SDK's share, so steadier than the HTTP figures on a busy machine)."""
    await in_process(runs_root, short)  # warm-up
    full = [await in_process(runs_root, None) for _ in range(repeats)]
    brief = [await in_process(runs_root, short) for _ in range(repeats)]
    cpu_full, cpu_short = median([c.cpu for c in full]), median([c.cpu for c in brief])
    calls_full, calls_short = full[0].calls, brief[0].calls
    per_call = (cpu_full - cpu_short) / (calls_full - calls_short)
    return {
        "session_cpu_s": round(cpu_full, 3),
        "session_wall_s": round(median([c.wall for c in full]), 3),
        "cpu_ms_per_call": round(per_call * 1000, 2),
        "calls": calls_full,
        "cpu_ms_per_move": round(per_call * 2000, 2),  # a round has as many votes as moves
        "cpu_fixed_s": round(cpu_full - per_call * calls_full, 3),
    }


async def measure(
    srv: ServerProcess, runs_root: Path, short: int, repeats: int, context: str = "full"
) -> dict[str, Any]:
    """Whole sessions of the scenario's length, and short ones of `short` rounds: the
    difference splits the harness's cost into a fixed part per session (set-up) and a
    marginal part per call."""
    await one_pair(srv, runs_root, None, context)  # warm-up, not counted
    full: list[dict[str, Any]] = []
    brief: list[dict[str, Any]] = []
    for _ in range(repeats):
        full.append(await one_pair(srv, runs_root, None, context))
        brief.append(await one_pair(srv, runs_root, short, context))
    out = summarise(full)
    small = summarise(brief)
    d_calls = out["calls"] - small["calls"]
    d_stages = out["sequential_stages"] - small["sequential_stages"]
    per_call = (out["extra_cpu_s"] - small["extra_cpu_s"]) / d_calls
    per_stage_wall = (out["extra_wall_s"] - small["extra_wall_s"]) / d_stages
    out["short_session"] = small
    out["marginal"] = {
        "harness_cpu_ms_per_call": round(per_call * 1000, 2),
        "harness_cpu_ms_per_move": round(per_call * out["calls"] / out["moves"] * 1000, 2),
        "harness_cpu_fixed_s": round(out["extra_cpu_s"] - per_call * out["calls"], 3),
        "extra_wall_ms_per_stage": round(per_stage_wall * 1000, 2),
        "extra_wall_fixed_s": round(
            out["extra_wall_s"] - per_stage_wall * out["sequential_stages"], 3
        ),
        "steady_wall_ratio": round(
            1 + per_stage_wall * out["sequential_stages"] / out["bare_wall_s"], 3
        ),
    }
    out["in_process"] = await harness_only(runs_root, short, repeats)
    out["repeats"] = repeats
    out["runs"] = [
        {k: round(v, 4) for k, v in r.items() if k.startswith(("h_", "b_"))} for r in full
    ]
    return out


def run(quick: bool, latency: float = 0.05) -> dict[str, Any]:
    repeats = 2 if quick else 5
    with server_process(latency) as srv, tempfile.TemporaryDirectory() as tmp:
        out = asyncio.run(measure(srv, Path(tmp), 2, repeats))
    out["latency_s"] = latency
    out["goals"] = {
        "wall_ratio<=1.05": out["wall_ratio"] <= GOAL_RATIO,
        "cpu_ms_per_move<=5": out["harness_cpu_ms_per_move"] <= GOAL_CPU_MS,
        "marginal_cpu_ms_per_move<=5": out["marginal"]["harness_cpu_ms_per_move"] <= GOAL_CPU_MS,
        "in_process_cpu_ms_per_move<=5": out["in_process"]["cpu_ms_per_move"] <= GOAL_CPU_MS,
    }
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
