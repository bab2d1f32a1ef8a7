"""Benchmark 3, context growth: a party's prompt size per round over 12 rounds, per policy.

Two 12-round sessions of the scripted negotiator (so the record holds real proposals, side
talk and votes) run through the loopback server, one with `context="full"` and one with
`context="window:2"`. The server keeps every request; each party's move prompt is measured
per round in chars/4 (the estimate majlis itself uses) and, when llama-cpp-python and the
embedded model are installed, in SmolLM2 tokens (its tokenizer alone is cheap to load).

The bounded policy must not lose what a party needs: the round-12 prompt is checked for
the party's own last proposal, the latest side message from each counterpart and every
other party's latest positions (the facts tests/test_context.py checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from majlis.model import LoopbackServer, ModelConfig, scripted_responder
from majlis.run import RunOptions, run_session

from .common import REPO, turn_of

ROUNDS = 12
GOAL_FLAT = 1.5  # round-12 prompt at most 1.5x the round-3 prompt (bounded policy)


def tokenizer() -> Callable[[str], int] | None:
    """SmolLM2's tokenizer (vocabulary only), or None when it is not installed."""
    try:
        from llama_cpp import Llama

        from majlis.model import gguf_path

        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
            llm = Llama(model_path=str(gguf_path()), vocab_only=True, verbose=False)
    except Exception:
        return None
    return lambda text: len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))


async def session(context: str, runs_root: Path) -> tuple[list[dict[str, Any]], Path]:
    with LoopbackServer(scripted_responder) as srv:
        cfg = ModelConfig(model="scripted", base_url=srv.base_url)
        result = await run_session(
            RunOptions(
                model=cfg,
                home=REPO,
                runs_root=runs_root,
                rounds=ROUNDS,
                context=context,
                command=["python", "-m", "benchmarks"],
            )
        )
        return list(srv.requests), result.run_dir.path


def facts_kept(events: list[dict[str, Any]], prompt: str, party: str) -> dict[str, bool]:
    """What a party needs from the earlier rounds, found in its round-12 prompt or not."""
    before = [e for e in events if e["round"] < ROUNDS]
    own = [e for e in before if e["type"] == "proposal" and e["speaker"] == party]
    last_own = not own or (
        json.dumps(own[-1]["content"]["package"], separators=(",", ":")) in prompt
    )
    latest_side: dict[str, dict[str, Any]] = {}
    for e in before:
        if e["type"] == "side_message" and e["content"]["to"] == party:
            latest_side[e["speaker"]] = e
    side = all(json.dumps(e["content"]["text"])[1:-1] in prompt for e in latest_side.values())
    others = {e["speaker"] for e in before if e["type"] == "message" and e["speaker"] != party}
    positions = all(f'"{o}":{{' in prompt for o in others)
    return {"own_last_proposal": last_own, "side_talk": side, "everyones_positions": positions}


def measure(tmp: Path) -> dict[str, Any]:
    count = tokenizer()
    out: dict[str, Any] = {"rounds": ROUNDS, "tokenizer": "smollm2" if count else None}
    for context in ("full", "window:2"):
        requests, run = asyncio.run(session(context, tmp / context.replace(":", "-")))
        events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
        moves = [r for r in requests if turn_of(r)["task"] == "move"]
        per_round: dict[int, list[int]] = {}
        tokens: dict[int, list[int]] = {}
        last: dict[str, str] = {}
        for body in moves:
            t = turn_of(body)
            text = "".join(m["content"] for m in body["messages"])
            per_round.setdefault(t["round"], []).append(len(text) // 4)
            if count:
                tokens.setdefault(t["round"], []).append(count(text))
            if t["round"] == ROUNDS:
                last[t["party"]] = body["messages"][-1]["content"]
        rounds = sorted(per_round)
        mean = {r: round(sum(v) / len(v)) for r, v in per_round.items()}
        row: dict[str, Any] = {
            "rounds_played": max(rounds),
            "prompt_tokens_by_round": mean,
            "round12_over_round3": round(mean[ROUNDS] / mean[3], 2) if ROUNDS in mean else None,
        }
        if count:
            tmean = {r: round(sum(v) / len(v)) for r, v in tokens.items()}
            row["smollm2_tokens_by_round"] = tmean
            row["smollm2_round12_over_round3"] = (
                round(tmean[ROUNDS] / tmean[3], 2) if ROUNDS in tmean else None
            )
        if context != "full":
            row["facts_kept"] = {p: facts_kept(events, text, p) for p, text in last.items()}
        out[context] = row
    bounded = out["window:2"]
    kept = all(all(v.values()) for v in bounded.get("facts_kept", {}).values())
    out["goals"] = {
        "window_round12<=1.5x_round3": bounded["round12_over_round3"] is not None
        and bounded["round12_over_round3"] <= GOAL_FLAT,
        "window_keeps_facts": kept,
    }
    return out


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return measure(Path(tmp))


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
