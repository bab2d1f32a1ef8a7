"""The per-step work the benchmarks measured, made incremental, gives exactly what it gave before:
the same prompts, the same summaries (plus a counterpart's last word), the same transcript.
No timings here: benchmarks/ measures them."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from majlis.model import ModelConfig
from majlis.protocol import (
    SIDE_KEPT,
    ContextPolicy,
    PartyPrompter,
    Templates,
    quote,
    record_entry,
    split,
    summary,
    visible,
)
from majlis.run import RunDir, RunOptions, run_session
from majlis.run.graph import build_graph
from majlis.run.state import _events_channel
from majlis.scenario import load_scenario


def reference_record(
    party: str, events: list[dict[str, Any]], policy: ContextPolicy, rnd: int
) -> str:
    """The record as it was built before it was made incremental: from scratch, every call."""
    mine = [e for e in events if visible(e, party)]
    older, recent = split(mine, policy, rnd)
    lines = [quote(record_entry(e)) for e in recent]
    digest = summary(party, older)
    if digest is not None:
        lines.insert(0, quote(digest))
    return "<record>\n" + "".join(line + "\n" for line in lines) + "</record>\n"


@pytest.mark.parametrize("context", ["full", "window:2"])
async def test_incremental_record_equals_a_fresh_one(
    home: Path, tmp_path: Path, context: str
) -> None:
    result = await run_session(
        RunOptions(model=ModelConfig(model="scripted"), home=home, runs_root=tmp_path, rounds=5)
    )
    events, _ = result.run_dir.read_events()
    loaded = load_scenario("cornered-in-iraq", home)
    policy = ContextPolicy.parse(context)
    templates = Templates(home / "prompts")
    for party in loaded.scenario.parties:
        prompter = PartyPrompter(loaded, party, templates, policy)
        log: list[dict[str, Any]] = []
        for event in events:  # the log grows one event at a time, as a session's does
            log = [*log, event]
            rnd = event["round"]
            assert prompter.record(log, rnd) == reference_record(party, log, policy, rnd)
        # another log (a resumed run's, read back from disk): read again from the start
        other = [json.loads(json.dumps(e)) for e in events[: len(events) // 2]]
        rnd = other[-1]["round"]
        assert prompter.record(other, rnd) == reference_record(party, other, policy, rnd)
        assert prompter.record([], 0) == reference_record(party, [], policy, 0)


def side(seq: int, rnd: int, frm: str, to: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "round": rnd,
        "type": "side_message",
        "speaker": frm,
        "audience": [frm, to],
        "content": {"to": to, "text": f"note {seq}"},
    }


def test_summary_keeps_a_counterparts_last_word() -> None:
    # tehran wrote to the militias once; the militias then wrote to tehran three times
    thread = [
        side(1, 1, "tehran", "militias"),
        *(side(s, s, "militias", "tehran") for s in (2, 3, 4)),
    ]
    kept = summary("militias", thread)["side_talk"]["tehran"]
    assert [m["seq"] for m in kept] == [1, 3, 4], "the last word each way, then the latest"
    assert len(kept) <= SIDE_KEPT + 1
    # a plain exchange keeps just the latest SIDE_KEPT, as before
    talk = [side(1, 1, "a", "b"), side(2, 1, "b", "a"), side(3, 2, "a", "b"), side(4, 2, "b", "a")]
    assert [m["seq"] for m in summary("a", talk)["side_talk"]["b"]] == [3, 4]


async def test_event_log_is_checkpointed_once_not_every_step(home: Path, tmp_path: Path) -> None:
    if _events_channel().__class__.__name__ != "DeltaChannel":
        pytest.skip("this langgraph checkpoints the whole log at every step")
    result = await run_session(
        RunOptions(model=ModelConfig(model="scripted"), home=home, runs_root=tmp_path, rounds=6)
    )
    rd = result.run_dir
    with sqlite3.connect(rd.checkpoint_path) as db:
        (blobs,) = db.execute("select sum(length(checkpoint)) from checkpoints").fetchone()
    # the whole log in every checkpoint came to ~24x the transcript for six rounds
    assert blobs < 3 * rd.events_path.stat().st_size


def test_events_are_flushed_per_step_and_synced_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import majlis.run.folder as recorder

    synced: list[int] = []
    monkeypatch.setattr(recorder.os, "fsync", lambda fd: synced.append(fd))
    rd = RunDir.create(tmp_path, "run")
    for seq in range(3):
        rd.append_events([{"seq": seq, "text": "<&>"}])
        assert rd.events_path.read_text().count("\n") == seq + 1, "whole lines, readable at once"
    assert synced == []
    rd.sync_events()
    assert len(synced) == 1
    # read as plain JSON lines: these are not whole events, which read_events would refuse
    assert [e["seq"] for e in recorder.read_jsonl(rd.events_path).items] == [0, 1, 2]


def test_compiled_graph_is_shared_with_each_its_own_checkpointer() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    a, b = InMemorySaver(), InMemorySaver()
    ga, gb = build_graph(a), build_graph(b)
    assert ga.checkpointer is a and gb.checkpointer is b
    assert set(ga.nodes) == set(gb.nodes) >= {"facilitator", "turn", "vote", "adjudicate", "end"}


def test_an_edited_template_is_compiled_afresh(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    path = tmp_path / "prompts" / "t.j2"
    path.write_text("one {{ x }}")
    assert Templates(tmp_path / "prompts").render("t.j2", x=1) == "one 1"
    path.write_text("two {{ x }}")  # same length, maybe the same mtime
    fresh = Templates(tmp_path / "prompts")
    assert fresh.render("t.j2", x=1) == "two 1"
    assert fresh.used["t.j2"] == hashlib.sha256(b"two {{ x }}").hexdigest()


def test_embedded_state_cache_keeps_each_partys_latest_state() -> None:
    from majlis.model import ConversationStates

    class State:
        def __init__(self, name: str, size: int) -> None:
            self.name, self.llama_state_size = name, size

    cache = ConversationStates(capacity_bytes=250)
    key = ConversationStates.key
    for party in ("a", "b", "c"):
        cache.conversation = key([{"role": "system", "content": party}])
        with pytest.raises(KeyError):
            cache[(1, 2, 3)]
        cache[(1, 2, 3)] = State(party, 100)  # a move
        cache[(1, 2, 3, 4)] = State(party + "2", 100)  # then a vote: replaces the move's
    # three parties of 100 bytes under a 250-byte cap: the least recently used one goes
    assert cache.cache_size == 200
    cache.conversation = key([{"role": "system", "content": "a"}])
    assert cache.conversation not in cache
    cache.conversation = key([{"role": "system", "content": "c"}])
    assert cache[(1,)].name == "c2"
