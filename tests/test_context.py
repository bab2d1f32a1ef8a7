"""Context policies: a bounded window plus a rolling summary keeps prompts flat, not growing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import events_of

from majlis.errors import UserError
from majlis.model import LoopbackServer, ModelConfig, scripted_responder
from majlis.protocol import ContextPolicy, split, summary
from majlis.run import RunOptions, run_session


def turn_of(body: dict[str, Any]) -> dict[str, Any]:
    user = body["messages"][-1]["content"]
    return json.loads(user.split("<turn>")[1].split("</turn>")[0])


async def sizes(
    home: Path, tmp_path: Path, context: str
) -> tuple[dict[int, int], list[dict[str, Any]], Path]:
    with LoopbackServer(scripted_responder) as srv:
        cfg = ModelConfig(model="scripted", base_url=srv.base_url)
        result = await run_session(
            RunOptions(
                model=cfg,
                home=home,
                runs_root=tmp_path / context.replace(":", "-"),
                rounds=12,
                context=context,
            )
        )
        requests = list(srv.requests)
    moves = [r for r in requests if turn_of(r)["task"] == "move" and turn_of(r)["party"] == "kurds"]
    return (
        {turn_of(r)["round"]: sum(len(m["content"]) for m in r["messages"]) for r in moves},
        moves,
        result.run_dir.path,
    )


async def test_window_keeps_the_prompt_flat(home: Path, tmp_path: Path) -> None:
    full, _, _ = await sizes(home, tmp_path, "full")
    bounded, moves, run = await sizes(home, tmp_path, "window:2")
    assert full[12] > 2.5 * full[3], "the full record keeps growing"
    assert bounded[12] <= 1.5 * bounded[3], "the window stays within 1.5x of round 3"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["context_policy"] == "window:2"
    # no loss of what the party needs: its own last proposal, side talk to it, everyone's positions
    events = events_of(run)
    last = moves[-1]["messages"][-1]["content"]
    before = [e for e in events if e["round"] < 12]
    own = [e for e in before if e["type"] == "proposal" and e["speaker"] == "kurds"]
    assert own and json.dumps(own[-1]["content"]["package"], separators=(",", ":")) in last
    to_me = [e for e in before if e["type"] == "side_message" and e["content"]["to"] == "kurds"]
    by_sender: dict[str, dict[str, Any]] = {}
    for e in to_me:
        by_sender[e["speaker"]] = e
    for e in by_sender.values():
        assert json.dumps(e["content"]["text"])[1:-1] in last, (
            "the latest side talk from each counterpart stays"
        )
    assert '"type":"summary"' in last
    for other in ("sudani", "washington", "tehran", "militias", "sunnis"):
        assert f'"{other}":{{' in last, "everyone's latest positions stay"


def test_policy_parsing_and_split() -> None:
    assert str(ContextPolicy.parse("full")) == "full"
    assert ContextPolicy.parse("window:3").window == 3
    for bad in ("window", "window:0", "window:x", "recent"):
        with pytest.raises(UserError):
            ContextPolicy.parse(bad)
    events = [
        {
            "round": r,
            "seq": r,
            "type": "round",
            "speaker": "facilitator",
            "audience": "all",
            "content": {},
        }
        for r in range(1, 6)
    ]
    older, recent = split(events, ContextPolicy(2), 5)
    assert [e["round"] for e in older] == [1, 2, 3] and [e["round"] for e in recent] == [4, 5]
    assert split(events, ContextPolicy(), 5) == ([], events)
    assert summary("x", []) is None
