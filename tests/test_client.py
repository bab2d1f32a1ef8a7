"""The model layer: structured-output dialects, re-asking on bad output, failed turns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import events_of

from majlis.errors import ModelBehaviourError
from majlis.model import (
    Completion,
    LoopbackServer,
    ModelConfig,
    Usage,
    extract_json,
    make_client,
    scripted_responder,
)
from majlis.protocol import Vote, strict_schema
from majlis.run import RunOptions, run_session

VOTE_MSGS = [{"role": "system", "content": "vote"}, {"role": "user", "content": "vote now"}]


def replies(*texts: str):
    queue = list(texts)

    def respond(body: dict[str, Any]) -> Completion:
        return Completion(queue.pop(0), prompt_tokens=5, completion_tokens=3)

    return respond


@pytest.mark.parametrize(
    ("server_speaks", "expected"),
    [
        ({"json_schema", "json_object", "none"}, "json_schema"),
        ({"json_object", "none"}, "json_object"),  # llama.cpp's own server
        ({"none"}, "none"),  # no structured mode: instructions + extraction
    ],
)
async def test_dialect_is_negotiated(server_speaks: set[str], expected: str) -> None:
    good = json.dumps({"private_reasoning": "fine", "vote": "accept"})
    with LoopbackServer(replies(good), dialects=frozenset(server_speaks)) as srv:
        client = make_client(ModelConfig(model="m", base_url=srv.base_url, max_retries=0))
        answer = await client.ask(VOTE_MSGS, Vote, strict_schema(Vote))
        await client.backend.aclose()
        used = (srv.requests[-1].get("response_format") or {}).get("type", "none")
    assert answer.value.vote == "accept"
    assert used == expected
    if expected == "none":
        assert "JSON schema" in srv.requests[-1]["messages"][-1]["content"]


async def test_invalid_reply_is_retried_with_the_error_fed_back() -> None:
    bad = json.dumps({"private_reasoning": "hmm", "vote": "maybe"})
    good = (
        "Sure! Here it is: " + json.dumps({"private_reasoning": "ok", "vote": "reject"}) + " done."
    )
    with LoopbackServer(replies(bad, good)) as srv:
        client = make_client(ModelConfig(model="m", base_url=srv.base_url))
        answer = await client.ask(VOTE_MSGS, Vote, strict_schema(Vote))
        await client.backend.aclose()
        second = srv.requests[1]["messages"]
    assert answer.value.vote == "reject" and answer.attempts == 2
    assert answer.usage.prompt_tokens == 10
    assert second[-2] == {"role": "assistant", "content": bad}
    assert "not valid" in second[-1]["content"] and "vote" in second[-1]["content"]


async def test_reply_that_never_validates_raises_behaviour_error() -> None:
    with LoopbackServer(replies("no", "still no", "{}")) as srv:
        client = make_client(ModelConfig(model="m", base_url=srv.base_url, output_retries=2))
        with pytest.raises(ModelBehaviourError) as info:
            await client.ask(VOTE_MSGS, Vote, strict_schema(Vote))
        await client.backend.aclose()
    assert info.value.attempts == 3 and srv.calls == 3
    # what the three attempts cost comes with the error, for the failed turn's event
    assert info.value.usage == Usage(prompt_tokens=15, completion_tokens=9)
    assert info.value.call_id and info.value.latency_ms is not None
    assert info.value.stopped is None


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"a": 1}', {"a": 1}),
        ('noise {"a": {"b": 2}} tail', {"a": {"b": 2}}),
        ('x { y } {"a":3}', {"a": 3}),
    ],
)
def test_extract_json(text: str, found: dict[str, Any]) -> None:
    assert extract_json(text) == found


def test_extract_json_without_object() -> None:
    with pytest.raises(ValueError):
        extract_json("[1, 2]")


class Sabotage:
    """Washington's moves are garbage; everyone else plays the scripted game."""

    def __call__(self, body: dict[str, Any]) -> Completion:
        user = "".join(m["content"] for m in body["messages"] if m["role"] == "user")
        if '"party":"washington"' in user and '"task":"move"' in user:
            return Completion("I refuse to answer in JSON.")
        return scripted_responder(body)


async def test_a_bad_model_is_a_failed_turn_not_a_crash(home: Path, tmp_path: Path) -> None:
    with LoopbackServer(Sabotage()) as srv:
        cfg = ModelConfig(model="scripted", base_url=srv.base_url, output_retries=1)
        result = await run_session(RunOptions(model=cfg, home=home, runs_root=tmp_path, rounds=2))
    events = events_of(result)
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 2 and {e["content"]["party"] for e in errors} == {"washington"}
    assert all(e["audience"] == [] for e in errors), "failures are for the facilitator only"
    assert not any(e["type"] == "message" and e["speaker"] == "washington" for e in events)
    assert result.outcome.failed_turns == 2
    assert result.manifest.status == "complete"
