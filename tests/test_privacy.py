"""Canaries: a party's private material never reaches another party's prompt.

Every private brief, interest, red line and score table gets a unique marker, and the
model writes a unique marker into every private note and side message. The loopback
server keeps every request; each is checked against what its party may see.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import events_of

from majlis.model import Completion, LoopbackServer, ModelConfig, scripted
from majlis.run import RunDir, RunOptions, load_snapshot, run_session
from majlis.workshop import build_data, render_html, turn_contexts

CANARY = re.compile(r"CANARY-(\w+)-(brief|interest|redline|note|side)-(\w+)-(\w+)")
SCORE_CANARY = 7000  # score canaries are 7001.. : numbers no prompt uses otherwise


def plant_card_canaries(home: Path) -> dict[str, str]:
    """Mark each card; return the score canary of each party (as text)."""
    score_marks = {}
    for i, path in enumerate(sorted((home / "agents").glob("*.yaml"))):
        card = yaml.safe_load(path.read_text())
        pid = card["id"]
        card["private_brief"] += f" CANARY-{pid}-brief-x-x"
        if card.get("short_brief"):  # what the compact profile shows instead
            card["short_brief"] += f" CANARY-{pid}-brief-x-x"
        card["private_interests"].append(f"CANARY-{pid}-interest-x-x")
        card["red_lines"][0]["why"] += f" CANARY-{pid}-redline-x-x"
        issue = next(iter(card["scores"]))
        worst = min(card["scores"][issue], key=card["scores"][issue].get)
        card["scores"][issue][worst] = SCORE_CANARY + i + 1
        card["threshold"] += SCORE_CANARY + i + 1  # keep the worst option out of reach
        score_marks[pid] = str(SCORE_CANARY + i + 1)
        path.write_text(yaml.safe_dump(card, sort_keys=False))
    return score_marks


class CanaryModel:
    """The scripted player, but it writes markers into what must stay private."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, body: dict[str, Any]) -> Completion:
        reply = json.loads(scripted.respond(body["messages"], "scripted"))
        party = json.loads(
            re.search(r"<turn>(.*?)</turn>", body["messages"][-1]["content"]).group(1)
        )["party"]
        self.n += 1
        if "thought" in reply or "reason" in reply:  # the compact shape: plain sentences
            key = "thought" if "thought" in reply else "reason"
            reply[key] += f" CANARY-{party}-note-{self.n}-x"
            if "side" in reply:
                to = reply["side"]["to"] if reply["side"] else _someone_else(party)
                text = f"Note CANARY-{party}-side-{self.n}-{to} for you alone."
                reply["side"] = {"to": to, "text": text}
            return Completion(json.dumps(reply), prompt_tokens=10, completion_tokens=10)
        reply["private_reasoning"] += f" CANARY-{party}-note-{self.n}-x"
        if "side_message" in reply:
            to = reply["side_message"]["to"] if reply["side_message"] else _someone_else(party)
            reply["side_message"] = {"to": to, "text": f"CANARY-{party}-side-{self.n}-{to}"}
        return Completion(json.dumps(reply), prompt_tokens=10, completion_tokens=10)


def _someone_else(party: str) -> str:
    return "kurds" if party != "kurds" else "sunnis"


def may_see(reader: str, owner: str, kind: str, recipient: str) -> bool:
    if kind == "side":
        return reader in (owner, recipient)
    return reader == owner


@pytest.mark.parametrize("profile", ["full", "compact"])
async def test_no_private_material_crosses_parties(
    home_copy: Path, tmp_path: Path, profile: str
) -> None:
    score_marks = plant_card_canaries(home_copy)
    with LoopbackServer(CanaryModel()) as server:
        cfg = ModelConfig(model="scripted", base_url=server.base_url, profile=profile)  # type: ignore[arg-type]
        result = await run_session(
            RunOptions(model=cfg, home=home_copy, runs_root=tmp_path, rounds=3)
        )
        requests = list(server.requests)

    events = events_of(result)
    assert sum(e["type"] == "side_message" for e in events) >= 6
    assert sum(e["type"] == "private_note" for e in events) >= 18

    seen_own = seen_side = 0
    for body in requests:
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        reader = json.loads(re.search(r"<turn>(.*?)</turn>", user).group(1))["party"]
        prompt = "\n".join(m["content"] for m in body["messages"])
        for owner, kind, _n, recipient in CANARY.findall(prompt):
            assert may_see(reader, owner, kind, recipient), f"{reader} saw {owner}'s {kind}"
            seen_own += owner == reader
            seen_side += kind == "side" and owner != reader
        for owner, mark in score_marks.items():
            assert (mark in prompt) == (owner == reader), (
                f"{owner}'s score table in {reader}'s prompt"
            )
        assert f"CANARY-{reader}-brief-x-x" in system
    assert seen_own and seen_side, "the canaries were really planted and delivered where allowed"


@pytest.mark.parametrize("profile", ["full", "compact"])
async def test_the_facilitator_sees_each_turn_as_its_party_did(
    home_copy: Path, tmp_path: Path, profile: str
) -> None:
    """The after-action review's "what that party knew" is exactly what its agent was
    sent: every rebuilt turn equals a request the server got, system and user message,
    so the canaries above hold for it too. The participant page holds none of it."""
    plant_card_canaries(home_copy)
    with LoopbackServer(CanaryModel()) as server:
        cfg = ModelConfig(model="scripted", base_url=server.base_url, profile=profile)  # type: ignore[arg-type]
        result = await run_session(
            RunOptions(model=cfg, home=home_copy, runs_root=tmp_path, rounds=3)
        )
        requests = list(server.requests)
    run = result.run_dir.path

    rd = RunDir.open(run)
    contexts = turn_contexts(load_snapshot(rd), rd.read_manifest(), events_of(run))
    assert build_data(run, "facilitator")["contexts"]["systems"] == contexts["systems"]
    assert contexts["available"] and contexts["changed"] == []
    sent = [(b["messages"][0]["content"], b["messages"][-1]["content"]) for b in requests]
    rebuilt = [(contexts["systems"][t["party"]], t["user"]) for t in contexts["turns"]]
    assert len(rebuilt) == len(sent)
    assert sorted(rebuilt) == sorted(sent)  # ballots are asked for concurrently
    by_seq = {e["seq"]: e for e in events_of(run)}
    for t in contexts["turns"]:
        reader = json.loads(re.search(r"<turn>(.*?)</turn>", t["user"]).group(1))
        assert (reader["party"], reader["task"], reader["round"]) == (
            t["party"],
            t["task"],
            t["round"],
        )
        assert all(by_seq[s]["speaker"] == t["party"] for s in t["seqs"])

    shown = {a: embedded(render_html(run, a)) for a in ("facilitator", "participant")}
    assert not CANARY.search(shown["participant"])
    assert "<turn>" in shown["facilitator"] and "<turn>" not in shown["participant"]
    for system in contexts["systems"].values():
        assert system[:300] in shown["facilitator"]
        assert system[:300] not in shown["participant"]


def embedded(page: str) -> str:
    """The data a viewer page carries, decoded: the text its script can show."""
    block = re.search(r'<script type="application/json" id="majlis-data">(.*?)</script>', page)
    assert block
    return "\n".join(strings(json.loads(block.group(1))))


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [str(value)]
