"""Benchmark 4, prompt caching: how much of each prompt a provider's prefix cache could reuse.

A session runs against the loopback server with `PrefixCachingResponder`: for every request
it finds the longest byte-identical prefix the request's messages (serialized as compact
JSON, as the body carries them) share with the same party's previous request, and reports
cached_tokens = that prefix / 4 in the usage, as OpenAI-style servers do. The share is the
prefix over the whole serialized prompt, for every call but each party's first.

It then checks that the transcript carries what the server reported: each call's
usage.cached_tokens in events.jsonl, and their total in outcome.json.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from majlis.model import LoopbackServer, ModelConfig
from majlis.run import RunOptions, run_session

from .common import REPO
from .responders import PrefixCachingResponder

GOAL_SHARE = 0.9


async def session(context: str, runs_root: Path, rounds: int | None) -> dict[str, Any]:
    responder = PrefixCachingResponder()
    with LoopbackServer(responder) as srv:
        result = await run_session(
            RunOptions(
                model=ModelConfig(model="canned", base_url=srv.base_url),
                home=REPO,
                runs_root=runs_root,
                rounds=rounds,
                context=context,
                command=["python", "-m", "benchmarks"],
            )
        )
    calls = responder.calls
    later = [c for c in calls if not c["first"]]
    shares = [c["shared"] / c["chars"] for c in later]
    by_party: dict[str, list[float]] = {}
    for c in later:
        by_party.setdefault(c["party"], []).append(c["shared"] / c["chars"])
    events = [
        json.loads(x) for x in result.run_dir.events_path.read_text().splitlines() if x.strip()
    ]
    recorded = [e["usage"]["cached_tokens"] for e in events if e.get("usage")]
    reported = [c["shared"] // 4 for c in calls]
    outcome = json.loads(result.run_dir.outcome_path.read_text())
    by_round: dict[int, list[float]] = {}
    for c in later:
        by_round.setdefault(c["round"], []).append(c["shared"] / c["chars"])
    return {
        "calls": len(calls),
        "mean_share_by_round": {r: round(sum(v) / len(v), 3) for r, v in sorted(by_round.items())},
        # the most any prefix cache could reuse: the previous prompt up to its record's end
        "mean_reusable_share": round(
            sum(c["reusable"] / c["chars"] for c in later) / len(later), 4
        ),
        "calls_reusing_all_of_previous_record": round(
            sum(c["shared"] >= c["reusable"] for c in later) / len(later), 4
        ),
        "mean_share": round(sum(shares) / len(shares), 4),
        # the same, leaving out of each prompt the record lines it is the first to carry
        # (other parties' moves since this party's last call): what a harness could keep
        "mean_share_of_repeatable": round(
            sum(c["shared"] / (c["chars"] - c["new_events"]) for c in later) / len(later), 4
        ),
        "new_events_share": round(sum(c["new_events"] / c["chars"] for c in later) / len(later), 4),
        "min_share": round(min(shares), 4),
        "weighted_share": round(
            sum(c["shared"] for c in later) / sum(c["chars"] for c in later), 4
        ),
        "min_share_by_party": {p: round(min(v), 4) for p, v in sorted(by_party.items())},
        "cached_tokens_reported_by_server": sum(reported),
        "cached_tokens_in_events": sum(recorded),
        "cached_tokens_in_outcome": outcome["usage"]["cached_tokens"],
        "transcript_carries_cached_tokens": sorted(recorded) == sorted(reported)
        and outcome["usage"]["cached_tokens"] == sum(reported)
        and sum(reported) > 0,
    }


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        full = asyncio.run(session("full", Path(tmp) / "full", None))
        window = asyncio.run(session("window:2", Path(tmp) / "window", None))
        longer = asyncio.run(session("full", Path(tmp) / "full12", 12))
    return {
        "full": full,
        "window:2": window,
        "full_12_rounds": longer,
        "goals": {
            "full_mean_prefix_share>=0.9": full["mean_share"] >= GOAL_SHARE,
            "transcript_carries_cached_tokens": full["transcript_carries_cached_tokens"],
        },
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=2))
