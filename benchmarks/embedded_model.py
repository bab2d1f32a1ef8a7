"""Benchmark 5, the embedded model: generation speed in a real session against bare llama.cpp.

A one-round, six-party session runs on the embedded SmolLM2-135M model exactly as
`majlis run` does (llama.cpp in process behind the loopback server, grammar-constrained
replies). The server's requests are kept, and every generation is timed inside the
responder. Then a bare llama-cpp-python `Llama` with the same constructor settings (model,
n_ctx, threads, seed) answers the same requests, in the same order, with the same sampling
settings and grammar, and no harness at all: no HTTP, no graph, no state cache.

Throughput is completion tokens per second of the whole (end to end, model load excluded:
a session's wall time against the bare loop's) and of the generations alone. Optionally
(`--embedded` with the full run) it also times a six-party, three-round embedded session.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import majlis.model.embedded as emb
from majlis.model import ModelConfig
from majlis.run import RunOptions, run_session

from .common import REPO

GOAL_RATIO = 0.9
SEED = 3
MAX_TOKENS = 450


class Spy:
    """Wraps start_embedded: keeps the server, times model load and every generation."""

    def __init__(self) -> None:
        self.real = emb.start_embedded
        self.server: Any = None
        self.load_s = 0.0
        self.calls: list[dict[str, Any]] = []

    def __call__(self, seed: int = 0) -> Any:
        t0 = time.perf_counter()
        server = self.real(seed=seed)
        self.load_s = time.perf_counter() - t0
        responder = server.responder

        def timed(body: dict[str, Any]) -> Any:
            t = time.perf_counter()
            out = responder(body)
            self.calls.append(
                {
                    "s": time.perf_counter() - t,
                    "prompt_tokens": out.prompt_tokens,
                    "completion_tokens": out.completion_tokens,
                }
            )
            return out

        server.responder = timed
        self.server = server
        return server


async def embedded_session(rounds: int, runs_root: Path) -> tuple[dict[str, Any], Spy]:
    spy = Spy()
    emb.start_embedded = spy
    try:
        t0 = time.perf_counter()
        result = await run_session(
            RunOptions(
                model=ModelConfig(model="embedded", max_tokens=MAX_TOKENS),
                home=REPO,
                runs_root=runs_root,
                rounds=rounds,
                seed=SEED,
                command=["python", "-m", "benchmarks", "--embedded"],
            )
        )
        wall = time.perf_counter() - t0
    finally:
        emb.start_embedded = spy.real
    completion = sum(c["completion_tokens"] for c in spy.calls)
    gen = sum(c["s"] for c in spy.calls)
    return {
        "rounds": rounds,
        "calls": len(spy.calls),
        "failed_turns": result.outcome.failed_turns,
        "wall_s": round(wall, 2),
        "model_load_s": round(spy.load_s, 2),
        "generation_s": round(gen, 2),
        "prompt_tokens": sum(c["prompt_tokens"] for c in spy.calls),
        "completion_tokens": completion,
        "tokens_per_s_end_to_end": round(completion / (wall - spy.load_s), 2),
        "tokens_per_s_generating": round(completion / gen, 2),
    }, spy


def bare(requests: list[dict[str, Any]]) -> dict[str, Any]:
    """The same requests through a plain Llama: same settings, no harness, no state cache."""
    from llama_cpp import Llama

    t0 = time.perf_counter()
    with emb._no_extra_buffers():  # as majlis loads it: AMX buffers crash on some VMs
        llm = Llama(
            model_path=str(emb.gguf_path()),
            n_ctx=8192,
            n_threads=max(1, os.cpu_count() or 1),
            seed=SEED,
            verbose=False,
        )
    load = time.perf_counter() - t0
    completion = prompt = 0
    t0 = time.perf_counter()
    for body in requests:
        kwargs: dict[str, Any] = {}
        fmt = body.get("response_format")
        if fmt and fmt.get("type") == "json_object":
            schema = emb.bounded_strings(fmt.get("schema", {}), emb.TEXT_CHARS)
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        out = llm.create_chat_completion(
            messages=body["messages"],
            temperature=body.get("temperature", 0.7),
            max_tokens=body.get("max_tokens") or 700,
            seed=body.get("seed"),
            repeat_penalty=emb.REPEAT_PENALTY,
            **kwargs,
        )
        completion += out["usage"]["completion_tokens"]
        prompt += out["usage"]["prompt_tokens"]
    wall = time.perf_counter() - t0
    llm.close()
    return {
        "calls": len(requests),
        "model_load_s": round(load, 2),
        "wall_s": round(wall, 2),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens_per_s": round(completion / wall, 2),
    }


def run(quick: bool, long_session: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        one, spy = asyncio.run(embedded_session(1, Path(tmp) / "one"))
        requests = list(spy.server.requests)
        plain = bare(requests)
        out: dict[str, Any] = {"session": one, "bare": plain}
        out["ratio_end_to_end"] = round(one["tokens_per_s_end_to_end"] / plain["tokens_per_s"], 3)
        out["ratio_generating"] = round(one["tokens_per_s_generating"] / plain["tokens_per_s"], 3)
        if long_session and not quick:
            three, _ = asyncio.run(embedded_session(3, Path(tmp) / "three"))
            out["three_round_session"] = three
    out["goals"] = {"tokens_per_s>=0.9x_bare": out["ratio_end_to_end"] >= GOAL_RATIO}
    return out


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
