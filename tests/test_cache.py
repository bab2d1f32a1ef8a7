"""Cached replies: an identical re-run makes no model calls and writes the same events; a
replay says why the model stopped, as the first answer did (for its call's span), and a
cache file stays one an older majlis can write to."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from conftest import events_of, stable

from majlis.model import (
    Completion,
    LoopbackServer,
    ModelConfig,
    ResponseCache,
    SampleCounter,
    Usage,
    scripted_responder,
)
from majlis.model.backend import CachingBackend
from majlis.model.openai_backend import OpenAIBackend
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


# the replies table as every majlis writes it, and as the one before finish reasons were
# kept still does (its INSERT names no columns: the table must keep its shape)
OLD_TABLE = """
CREATE TABLE replies (
    key TEXT NOT NULL, sample INTEGER NOT NULL, text TEXT NOT NULL, usage TEXT NOT NULL,
    call_id TEXT NOT NULL, model TEXT, fingerprint TEXT, created REAL NOT NULL,
    PRIMARY KEY (key, sample)
)
"""
OLD_INSERT = "INSERT OR REPLACE INTO replies VALUES (?, ?, '{}', ?, 'chatcmpl-old', 'm', NULL, 0)"


async def test_a_replay_says_why_the_model_stopped_and_old_files_work_both_ways(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cache.sqlite"
    usage = Usage(prompt_tokens=1, completion_tokens=1).model_dump_json()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(OLD_TABLE)
        db.execute(OLD_INSERT, ("old", 0, usage))
        db.commit()
    cache = ResponseCache(path)
    try:
        old = cache.get("old", 0)
        assert old is not None and old["text"] == "{}" and old["finish_reason"] is None
        msgs = [{"role": "user", "content": "vote now"}]
        with LoopbackServer(lambda _body: Completion('{"vote": "accept"}')) as srv:
            config = ModelConfig(model="m", base_url=srv.base_url)
            backend = CachingBackend(OpenAIBackend(config), config, cache, SampleCounter())
            try:
                fresh = await backend.chat(msgs, "vote", {"type": "object"})
                backend.counter = SampleCounter()  # a new session asks the same again
                replayed = await backend.chat(msgs, "vote", {"type": "object"})
            finally:
                await backend.aclose()
            assert srv.calls == 1
        assert replayed.cached and not fresh.cached
        assert fresh.finish_reason == replayed.finish_reason == "stop"
        with contextlib.closing(sqlite3.connect(path)) as db:  # the older majlis, after
            db.execute(OLD_INSERT, ("older", 0, usage))
            db.commit()
        assert cache.get("older", 0) is not None
    finally:
        cache.close()
