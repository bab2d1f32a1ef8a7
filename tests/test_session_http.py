"""A whole session through the real openai SDK against a loopback server started here."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import events_of, stable

from majlis.model import LoopbackServer, ModelConfig
from majlis.protocol import rules
from majlis.run import Event, Manifest, Outcome, RunOptions, run_session
from majlis.scenario import load_scenario


async def test_session_over_http_records_everything(
    home: Path, tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = ModelConfig(model="scripted", base_url=server.base_url, api_key_env="MAJLIS_TEST_KEY")
    monkeypatch.setenv("MAJLIS_TEST_KEY", "sk-test-secret-4f1c9a")
    result = await run_session(
        RunOptions(model=cfg, runs_root=tmp_path, home=home, seed=7, command=["test"])
    )
    rd = result.run_dir
    events = [Event.model_validate(e) for e in events_of(rd)]
    assert [e.seq for e in events] == list(range(len(events)))
    assert server.calls > 0 and all(r["model"] == "scripted" for r in server.requests)

    loaded = load_scenario("cornered-in-iraq", home)
    parties = set(loaded.scenario.parties)
    assert {e.speaker for e in events if e.type == "message"} == parties, "all six parties spoke"

    # every vote is recorded, and every tally is what the deal rule gives for those votes
    tallies = [e for e in events if e.type == "tally"]
    assert tallies
    for tally in tallies:
        ballots = {
            e.speaker: e.content["vote"]
            for e in events
            if e.type == "vote" and e.round == tally.round
        }
        assert set(ballots) == parties
        passed = rules.deal_passes(
            {p: v == "accept" for p, v in ballots.items()}, loaded.scenario.deal_rule
        )
        assert tally.content["passed"] is passed
        assert sorted(tally.content["accept"]) == sorted(
            p for p, v in ballots.items() if v == "accept"
        )

    outcome = Outcome.model_validate_json(rd.outcome_path.read_text())
    final = events[-1]
    assert final.type == "outcome" and final.content["kind"] == outcome.kind
    deal_tally = [t for t in tallies if t.content["passed"]]
    if deal_tally:
        assert outcome.kind == "deal" and outcome.deal_round == deal_tally[0].round
        proposal = next(e for e in events if e.seq == deal_tally[0].content["proposal_seq"])
        assert outcome.package == proposal.content["package"]
    else:
        assert outcome.kind in {"partial", "none"}
    assert outcome.branch == rules.classify_branch(loaded.scenario, outcome.kind, outcome.package)
    for pid, r in outcome.parties.items():
        assert r.margin == r.score - loaded.cards[pid].threshold

    manifest = Manifest.model_validate_json(rd.manifest_path.read_text())
    assert manifest.status == "complete" and manifest.seed == 7
    assert manifest.scenario["content_hash"] == loaded.content_hash
    assert {"system.md.j2", "move.md.j2", "vote.md.j2", "personas/sudani.md.j2"} <= set(
        manifest.prompts
    )
    assert manifest.parties["washington"].base_url == server.base_url
    assert manifest.parties["washington"].api_key_env == "MAJLIS_TEST_KEY"
    # the key reached the server but no file in the run folder
    for path in rd.path.iterdir():
        assert b"sk-test-secret-4f1c9a" not in path.read_bytes(), path.name
    usage_events = [e for e in events if e.usage is not None]
    assert len(usage_events) == server.calls
    assert all(e.latency_ms is not None and e.usage.prompt_tokens > 0 for e in usage_events)


async def test_scripted_session_in_process_is_deterministic(home: Path, tmp_path: Path) -> None:
    opts = dict(model=ModelConfig(model="scripted"), runs_root=tmp_path, home=home)
    a = await run_session(RunOptions(**opts))
    b = await run_session(RunOptions(**opts))
    assert stable(events_of(a)) == stable(events_of(b))
    assert a.outcome.kind == "deal", "the scripted players find the zone of agreement"
    assert a.outcome.package in rules.zone_of_agreement(load_scenario("cornered-in-iraq", home))


async def test_a_proxy_in_the_environment_does_not_capture_loopback_calls(
    home: Path, tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a laptop behind a corporate proxy: the proxy could never reach this machine's server
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    cfg = ModelConfig(model="scripted", base_url=server.base_url, max_retries=0, timeout=5)
    result = await run_session(
        RunOptions(model=cfg, runs_root=tmp_path, home=home, rounds=1, command=["test"])
    )
    assert result.manifest.status == "complete" and server.calls > 0
