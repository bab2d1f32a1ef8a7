"""Cached replies: an identical re-run makes no model calls and writes the same events."""

from __future__ import annotations

from pathlib import Path

from conftest import events_of, stable

from majlis.model import LoopbackServer, ModelConfig, ResponseCache, scripted_responder
from majlis.run import RunOptions, run_session


async def test_rerun_from_cache_makes_no_calls(home: Path, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with LoopbackServer(scripted_responder) as srv:
        opts = dict(
            model=ModelConfig(model="scripted", base_url=srv.base_url),
            home=home,
            runs_root=tmp_path,
            seed=11,
            rounds=3,
            cache=cache,
        )
        first = await run_session(RunOptions(**opts))
        calls = srv.calls
        assert cache.stats.hits == 0 and cache.stats.misses == calls
        second = await run_session(RunOptions(**opts))
        assert srv.calls == calls, "the second run was served from the cache"
    assert cache.stats.hits == calls
    a, b = events_of(first), events_of(second)
    assert stable(a) == stable(b)
    assert [e["call_id"] for e in a] == [e["call_id"] for e in b], "even call ids replay"
    assert first.outcome == second.outcome


async def test_a_different_seed_misses_the_cache(home: Path, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with LoopbackServer(scripted_responder) as srv:
        base = dict(home=home, runs_root=tmp_path, rounds=1, cache=cache)
        await run_session(
            RunOptions(model=ModelConfig(model="scripted", base_url=srv.base_url), seed=1, **base)
        )
        calls = srv.calls
        await run_session(
            RunOptions(model=ModelConfig(model="scripted", base_url=srv.base_url), seed=2, **base)
        )
        assert srv.calls == 2 * calls
