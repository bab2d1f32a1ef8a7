"""A newcomer's first session: no wall-clock failures on the embedded model, the compact
prompt profile, moves a small model can produce, and narrated play.

The embedded model itself is stood in for by a loopback server (the real one runs in
test_embedded.py): what is tested here is how majlis treats it.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import events_of, scripted_options
from pydantic import ValidationError
from typer.testing import CliRunner

from majlis.cli import app
from majlis.errors import UserError
from majlis.model import (
    EMBEDDED_ROUNDS,
    Completion,
    LoopbackServer,
    ModelConfig,
    embedded,
    make_client,
    scripted_responder,
)
from majlis.protocol import (
    CompactVote,
    PartyPrompter,
    Templates,
    canonical_move,
    compact_move_model,
    readable,
    strict_schema,
)
from majlis.run import Prepared, RunOptions, run_session
from majlis.scenario import load_scenario


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _slow(seconds: float):
    def respond(body: dict[str, Any]) -> Completion:
        time.sleep(seconds)
        return scripted_responder(body)

    return respond


# --- no wall clock on the embedded model -------------------------------------------------


async def test_an_embedded_call_outlives_the_timeout_that_stops_a_remote_one() -> None:
    """The same slow server: reached as the embedded model, a call slower than the
    configured timeout completes; reached as a remote endpoint, the timeout fires."""
    from majlis.protocol import Vote

    server = LoopbackServer(_slow(1.0), blocking=True).start()
    try:
        cfg = ModelConfig(model="scripted", base_url=server.base_url, timeout=0.3, max_retries=0)
        user = (
            '<record>\n</record>\n<turn>{"task":"vote","party":"a","round":1,"max_rounds":1,'
            '"standing_proposal":{"x":"y"}}</turn>'
        )
        system = (
            '<rules>{"agenda":{"x":["y","z"]},"veto":["a"],"min_accept":1}</rules>'
            '<private_scores>{"party":"a","threshold":1,"scores":{"x":{"y":3,"z":0}}}'
            "</private_scores>"
        )
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        schema = strict_schema(Vote)
        embedded_client = make_client(cfg, embedded=True)
        t0 = time.perf_counter()
        answer = await embedded_client.ask(messages, Vote, schema)
        assert time.perf_counter() - t0 > cfg.timeout
        assert answer.value.vote == "accept"
        remote = make_client(cfg)
        with pytest.raises(openai.APITimeoutError):
            await remote.ask(messages, Vote, schema)
        await embedded_client.backend.aclose()
        await remote.backend.aclose()
    finally:
        server.stop()


@pytest.fixture
def fake_embedded(monkeypatch: pytest.MonkeyPatch):
    """The embedded model played by the scripted player behind a slow loopback server."""
    started: list[LoopbackServer] = []

    def start(seed: int = 0, activity: Any = None) -> LoopbackServer:
        srv = LoopbackServer(_slow(0.25), dialects=frozenset({"json_object"}), blocking=True)
        started.append(srv.start())
        return srv

    monkeypatch.setattr("majlis.model.start_embedded", start)  # players start it via the face
    return started


async def test_a_session_on_the_embedded_model_ignores_the_wall_clock(
    home: Path, tmp_path: Path, fake_embedded: list[LoopbackServer]
) -> None:
    """Every reply takes longer than the timeout, and six ballots queue behind one another
    at the single-slot server: the session still completes with no failed turn, and the
    manifest says the embedded party has no timeout."""
    result = await run_session(
        RunOptions(
            model=ModelConfig(model="embedded", timeout=0.1, max_retries=0),
            home=home,
            runs_root=tmp_path,
            rounds=1,
            seed=2,
        )
    )
    assert result.manifest.status == "complete"
    assert result.outcome.failed_turns == 0
    party = result.manifest.parties["sudani"]
    assert party.timeout is None and party.profile == "compact"
    requests = fake_embedded[0].requests
    assert len(requests) == 12  # six moves, six votes
    assert all('"profile":"compact"' in r["messages"][-1]["content"] for r in requests)


def test_majlis_run_on_the_embedded_model_plays_the_short_default(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[RunOptions] = []

    async def fake(prepared: Prepared, *a: object, **k: object) -> None:
        seen.append(prepared.opts)  # the options as the CLI prepared them
        raise UserError("stopped before any model was started")

    monkeypatch.setattr("majlis.run.run_session", fake)  # the CLI calls it through the face
    invoke("run", "--home", str(home), "--out", str(tmp_path), "--quiet")
    invoke("run", "--home", str(home), "--out", str(tmp_path), "--quiet", "--rounds", "6")
    invoke("run", "--home", str(home), "--out", str(tmp_path), "--quiet", "--model", "scripted")
    # a person, or a variant that gives a party another model, is not "all embedded"
    invoke("run", "--home", str(home), "--out", str(tmp_path), "--quiet", "--human", "kurds")
    more = ("--variant", "firm-washington")
    invoke("run", "--home", str(home), "--out", str(tmp_path), "--quiet", *more)
    assert [o.rounds for o in seen] == [EMBEDDED_ROUNDS, 6, None, None, None]
    assert seen[0].model.prompt_profile == "compact"
    assert seen[2].model.prompt_profile == "full"


# --- the compact profile -------------------------------------------------------------------


def _prompters(home: Path, profile: str) -> dict[str, PartyPrompter]:
    loaded = load_scenario("cornered-in-iraq", home)
    templates = Templates(home / "prompts")
    return {p: PartyPrompter(loaded, p, templates, profile=profile) for p in loaded.cards}


async def _scripted_events(home: Path, tmp_path: Path, profile: str, rounds: int = 2):
    result = await run_session(
        RunOptions(
            model=ModelConfig(model="scripted", profile=profile),  # type: ignore[arg-type]
            home=home,
            runs_root=tmp_path / profile,
            rounds=rounds,
            seed=4,
        )
    )
    return events_of(result)


async def test_the_compact_prompt_is_a_fraction_of_the_full_one(home: Path, tmp_path: Path) -> None:
    events = await _scripted_events(home, tmp_path, "full", rounds=3)
    full, compact = _prompters(home, "full"), _prompters(home, "compact")
    for party in full:
        at = len(events) - 1  # the vote of the last round: the longest record
        a = full[party].messages("vote", events[:at], 3, {"by": "sudani", "package": {}, "seq": 0})
        b = compact[party].messages(
            "vote", events[:at], 3, {"by": "sudani", "package": {}, "seq": 0}
        )
        size = lambda m: sum(len(x["content"]) for x in m)  # noqa: E731
        assert size(b) < 0.3 * size(a), party


async def test_the_compact_record_holds_what_happened_since_the_party_last_moved(
    home: Path, tmp_path: Path
) -> None:
    events = await _scripted_events(home, tmp_path, "compact")
    prompter = _prompters(home, "compact")["kurds"]
    record = prompter.record(events)
    lines = [json.loads(x) for x in record.splitlines()[1:-1]]
    last_move = max(e["seq"] for e in events if e["speaker"] == "kurds" and e["type"] == "message")
    since = [e for e in events if e["seq"] > last_move]
    assert lines, "something happened since"
    # everything shown happened after the party's move, and nothing it may not see
    shown = {(x["type"], x.get("from"), x.get("text")) for x in lines}
    for e in events:
        if e["seq"] <= last_move and e["type"] == "message":
            assert ("message", e["speaker"], e["content"]["text"]) not in shown or any(
                s["type"] == "message"
                and s["speaker"] == e["speaker"]
                and s["content"]["text"] == e["content"]["text"]
                for s in since
            )
    assert not any(x["type"] in ("private_note", "vote", "round", "error") for x in lines)
    talk_to_kurds = [
        e for e in since if e["type"] == "side_message" and e["content"]["to"] == "kurds"
    ]
    assert sum(x["type"] == "side_message" for x in lines) == len(talk_to_kurds)


async def test_consecutive_compact_calls_of_a_party_share_their_system_prompt(
    home: Path, tmp_path: Path, server: LoopbackServer
) -> None:
    await run_session(
        RunOptions(
            model=ModelConfig(model="scripted", base_url=server.base_url, profile="compact"),
            home=home,
            runs_root=tmp_path,
            rounds=2,
            seed=1,
        )
    )
    by_party: dict[str, list[str]] = {}
    for body in server.requests:
        turn = body["messages"][-1]["content"]
        party = json.loads(turn[turn.index("<turn>") + 6 : turn.index("</turn>")])["party"]
        by_party.setdefault(party, []).append(body["messages"][0]["content"])
    for party, systems in by_party.items():
        assert len(systems) == 4 and len(set(systems)) == 1, party
        assert "<private_scores>" in systems[0]


def test_a_compact_move_lists_each_partys_own_best_option_first(home: Path) -> None:
    loaded = load_scenario("cornered-in-iraq", home)
    for party, card in loaded.cards.items():
        schema = strict_schema(compact_move_model(loaded.scenario, party, card.scores))
        for issue, spec in schema["properties"]["positions"]["properties"].items():
            first = spec["enum"][0]
            assert card.scores[issue][first] == max(card.scores[issue].values()), (party, issue)


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "<img src=x onerror=alert(1)>",
        'We agree "coalition": "phased" now.',
        "Too short here.",
        "we start in lower case and go on.",
        "No full stop at the end of this one",
        "A " + "very " * 60 + "long sentence.",
    ],
)
def test_compact_text_fields_refuse_anything_but_plain_sentences(home: Path, text: str) -> None:
    loaded = load_scenario("cornered-in-iraq", home)
    model = compact_move_model(loaded.scenario, "sudani", loaded.cards["sudani"].scores)
    move = {
        "thought": "Keep it calm.",
        "message": text,
        "positions": {i.id: i.option_ids()[0] for i in loaded.scenario.agenda},
        "propose": False,
        "side": None,
    }
    with pytest.raises(ValidationError):
        model.model_validate(move)
    ok = {**move, "message": "We will keep the talks calm, and we ask everyone to do the same."}
    assert readable(canonical_move(model.model_validate(ok))["public_message"])


def test_a_compact_vote_is_a_choice_with_one_line_of_why() -> None:
    assert CompactVote(vote="reject", reason="Worth too little to us now.").vote == "reject"
    with pytest.raises(ValidationError):
        CompactVote.model_validate({"vote": "maybe", "reason": "Unsure."})
    with pytest.raises(ValidationError):
        CompactVote.model_validate({"vote": "accept", "reason": "Fine.\n{ injected }"})


# --- narrated play -------------------------------------------------------------------------


def _narrator(body: dict[str, Any]) -> Completion:
    """A stand-in language model that only ever writes words, each reply marked as its own."""
    fmt = body["response_format"]
    schema = fmt["json_schema"]["schema"] if fmt["type"] == "json_schema" else fmt["schema"]
    assert set(schema["properties"]) <= {"message", "side"}, "only words are asked for"
    n = len(body["messages"][-1]["content"])
    words = {"message": f"Narrator words for this turn, number {n} of many."}
    if "side" in schema["properties"]:
        words["side"] = f"Narrator side note, number {n} of many."
    return Completion(json.dumps(words), prompt_tokens=n // 4, completion_tokens=12)


def _structure(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a move decides, without its words: who did what, with which package or vote."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        c = e["content"]
        if e["type"] == "message":
            out.append(("message", e["speaker"], json.dumps(c["positions"], sort_keys=True)))
        elif e["type"] == "proposal":
            out.append(("proposal", e["speaker"], json.dumps(c["package"], sort_keys=True)))
        elif e["type"] == "side_message":
            out.append(("side", e["speaker"], c["to"]))
        elif e["type"] in ("vote", "tally", "outcome"):
            out.append((e["type"], e["speaker"], json.dumps(c, sort_keys=True)))
    return out


@pytest.mark.parametrize("profile", ["compact", "full"])
async def test_a_narrated_session_decides_like_the_scripted_player_and_speaks_like_the_model(
    home: Path, tmp_path: Path, profile: str
) -> None:
    scripted_run = await run_session(
        RunOptions(
            model=ModelConfig(model="scripted", profile=profile),  # type: ignore[arg-type]
            home=home,
            runs_root=tmp_path / "scripted",
            rounds=3,
            seed=7,
        )
    )
    with LoopbackServer(_narrator) as srv:
        narrated_run = await run_session(
            RunOptions(
                model=ModelConfig(model="tiny", base_url=srv.base_url, profile=profile),  # type: ignore[arg-type]
                home=home,
                runs_root=tmp_path / "narrated",
                rounds=3,
                seed=7,
                narrate=["all"],
            )
        )
        asked = list(srv.requests)
    plain, narrated = events_of(scripted_run), events_of(narrated_run)
    assert _structure(narrated) == _structure(plain)
    messages = [e for e in narrated if e["type"] == "message"]
    assert messages and all(e["content"]["text"].startswith("Narrator words") for e in messages)
    sides = [e for e in narrated if e["type"] == "side_message"]
    assert sides and all(e["content"]["text"].startswith("Narrator side note") for e in sides)
    assert len(asked) == len(messages), "one model call per move; votes make none"
    assert all("Your move is decided" in body["messages"][-1]["content"] for body in asked)
    manifest = narrated_run.manifest
    assert {m.played_by for m in manifest.parties.values()} == {"narrated"}


async def test_narrating_one_party_leaves_the_others_to_the_model(
    home: Path, tmp_path: Path, server: LoopbackServer
) -> None:
    result = await run_session(
        RunOptions(
            model=ModelConfig(model="scripted", base_url=server.base_url),
            home=home,
            runs_root=tmp_path,
            rounds=1,
            narrate=["tehran"],
        )
    )
    played = {p: m.played_by for p, m in result.manifest.parties.items()}
    assert played.pop("tehran") == "narrated"
    assert set(played.values()) == {"model"}


async def test_narrating_an_unknown_party_is_the_users_error(home: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--narrate: unknown party 'iran'"):
        await run_session(
            RunOptions(
                model=ModelConfig(model="scripted"), home=home, runs_root=tmp_path, narrate=["iran"]
            )
        )
    assert not any(tmp_path.iterdir())


def test_the_viewer_says_plainly_which_parties_were_narrated(home: Path, tmp_path: Path) -> None:
    from conftest import chromium

    from majlis.workshop import build_data, write_html

    options = scripted_options(home, tmp_path, rounds=1, narrate=["washington", "tehran"])
    result = asyncio.run(run_session(options))
    path = result.run_dir.path
    facilitator = build_data(path, "facilitator")["outcome"]
    assert "usage" in facilitator and "score" in facilitator["parties"]["sudani"]
    for audience in ("facilitator", "participant"):
        played = {c["id"]: c["played_by"] for c in build_data(path, audience)["parties"]}
        assert {p for p, how in played.items() if how == "narrated"} == {"washington", "tehran"}
    page_path = write_html(path, "participant")
    with chromium() as browser:
        page = browser.new_page()
        page.goto(page_path.resolve().as_uri())
        note = page.locator("#narrated-note").inner_text()
        assert "Washington" in note and "scripted negotiator" in note
        badges = page.locator('.card[data-party="tehran"] .badge.narrated')
        assert badges.count() == 1
        assert page.locator('.card[data-party="sudani"] .badge.narrated').count() == 0


def _bad_narrator(body: dict[str, Any]) -> Completion:
    return Completion("{", prompt_tokens=5, completion_tokens=1)


async def test_a_narration_that_fails_leaves_the_decision_in_the_players_own_words(
    home: Path, tmp_path: Path
) -> None:
    plain = await _scripted_events(home, tmp_path, "compact", rounds=2)
    with LoopbackServer(_bad_narrator) as srv:
        result = await run_session(
            RunOptions(
                model=ModelConfig(model="tiny", base_url=srv.base_url, profile="compact"),
                home=home,
                runs_root=tmp_path / "narrated",
                rounds=2,
                seed=4,
                narrate=["all"],
            )
        )
    events = events_of(result)
    assert result.outcome.failed_turns == 0
    assert _structure(events) == _structure(plain)
    notes = [e for e in events if e["type"] == "private_note" and "private_positions" not in e]
    moves = [e for e in notes if "narration failed" in e["content"]["reasoning"]]
    assert len(moves) == sum(e["type"] == "message" for e in events)


async def test_a_narrated_scripted_party_keeps_its_style(home: Path, tmp_path: Path) -> None:
    def run(narrate: list[str], where: str) -> Any:
        return run_session(
            RunOptions(
                model=ModelConfig(model="scripted:firm"),
                home=home,
                runs_root=tmp_path / where,
                rounds=3,
                seed=9,
                narrate=narrate,
            )
        )

    firm, narrated = await run([], "firm"), await run(["all"], "narrated")
    assert _structure(events_of(narrated)) == _structure(events_of(firm))


async def test_a_variant_that_leaves_the_compact_prompt_alone_is_refused(
    home_copy: Path, tmp_path: Path
) -> None:
    (home_copy / "prompts" / "variants" / "plan-first" / "compact" / "move.md.j2").unlink()
    opts = RunOptions(
        model=ModelConfig(model="scripted", profile="compact"),
        home=home_copy,
        runs_root=tmp_path,
        variant="plan-first",
    )
    with pytest.raises(UserError, match=r"add compact/move\.md\.j2 to the variant"):
        await run_session(opts)
    opts.model = ModelConfig(model="scripted", profile="full")
    assert (await run_session(opts)).manifest.status == "complete"


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc/stat")
def test_a_machine_whose_cores_are_all_busy_is_seen_as_busy() -> None:
    """What makes llama.cpp's threads sleep rather than spin while they wait."""
    import os
    import subprocess
    import sys

    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        time.sleep(0.3)
        assert embedded.machine_busy()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
