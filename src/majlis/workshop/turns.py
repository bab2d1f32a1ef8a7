"""What each party knew at each of its turns: the messages its agent got, rebuilt.

A run folder keeps no requests, and it need not: a party's prompt is a pure function of
the recorded scenario (scenario.json), the events before its turn, the round, the standing
proposal and the prompt templates. So the after-action review builds every turn's
messages again with the run's own `PartyPrompter`, templates, variant, context policy and
prompt profiles (all named in manifest.json), replaying the log in order exactly as the
session grew it. A template whose file changed since the run (its sha256 is in the
manifest) is named, so the facilitator knows the words may differ from what was sent.

The result is the facilitator's alone: a system prompt holds the party's hidden scores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import MajlisError
from ..protocol import ContextPolicy, PartyPrompter, RecordLines, Templates
from ..run import Manifest
from ..scenario import LoadedScenario, prompt_dirs

MOVE_TYPES = frozenset({"message", "side_message", "proposal"})


@dataclass
class Turn:
    """One call a party's agent answered: a move or a ballot, and the events it made."""

    party: str
    task: str  # "move" or "vote"
    round: int
    start: int  # index in the log of its first event: the agent saw the events before it
    seqs: list[int] = field(default_factory=list)


def split_turns(events: list[dict[str, Any]]) -> list[Turn]:  # long: one pass, one state machine
    """The turns of a log (sorted by seq), in the order the session asked for them.

    A move is a private note followed by its party's message (then its side message and
    proposal), or a failed move. The ballots of a round are the block of private notes,
    failed votes and votes after the round's last move: all of them saw the same log.
    """
    turns: list[Turn] = []
    open_move: Turn | None = None
    ballots: dict[str, Turn] = {}
    ballot_start: int | None = None
    for i, e in enumerate(events):
        kind, who = e.get("type"), str(e.get("speaker"))
        task = (e.get("content") or {}).get("task")
        nxt = events[i + 1] if i + 1 < len(events) else {}
        starts_move = kind == "private_note" and (
            nxt.get("type") == "message" and nxt.get("speaker") == who
        )
        if starts_move or (kind == "error" and task == "move"):
            ballots, ballot_start = {}, None
            open_move = Turn(who, "move", e.get("round", 0), i, [e["seq"]])
            turns.append(open_move)
            if kind == "error":
                open_move = None
            continue
        if open_move and kind in MOVE_TYPES and who == open_move.party:
            open_move.seqs.append(e["seq"])
            continue
        open_move = None
        if kind in ("private_note", "vote") or (kind == "error" and task == "vote"):
            if ballot_start is None:
                ballot_start = i
            if who not in ballots:
                ballots[who] = Turn(who, "vote", e.get("round", 0), ballot_start)
                turns.append(ballots[who])
            ballots[who].seqs.append(e["seq"])
            continue
        ballots, ballot_start = {}, None
    return turns


def standing_before(events: list[dict[str, Any]], end: int) -> dict[str, Any] | None:
    """The standing proposal as the session held it before events[end]: the latest one."""
    for e in reversed(events[:end]):
        package = (e.get("content") or {}).get("package")
        if e.get("type") == "proposal" and isinstance(package, dict):
            return {"by": e["speaker"], "package": package, "seq": e["seq"]}
    return None


def turn_contexts(
    loaded: LoadedScenario, manifest: Manifest, events: list[dict[str, Any]]
) -> dict[str, Any]:
    """For the facilitator's view: each party's system prompt once, and each turn's user
    message as its agent got it. Never fails the page: if the prompts cannot be built
    (a template gone, a scenario home moved), says why instead."""
    try:
        return _contexts(loaded, manifest, events)
    except MajlisError as exc:
        return {"available": False, "why": str(exc), "systems": {}, "turns": []}


def _contexts(
    loaded: LoadedScenario, manifest: Manifest, events: list[dict[str, Any]]
) -> dict[str, Any]:
    templates = Templates(prompt_dirs(loaded.root, loaded.files[0]), manifest.variant)
    policy = ContextPolicy.parse(manifest.context_policy)
    lines = RecordLines()
    prompters = {
        p: PartyPrompter(loaded, p, templates, policy, lines, _profile(manifest, p))
        for p in loaded.scenario.parties
    }
    turns = []
    for n, t in enumerate(split_turns(events)):
        if t.party not in prompters:
            continue
        seen = events[: t.start]
        messages = prompters[t.party].messages(
            t.task, seen, t.round, standing_before(events, t.start)
        )
        turns.append(
            {"id": n, "party": t.party, "task": t.task, "round": t.round, "seqs": t.seqs}
            | {"user": messages[-1]["content"], "seen": len(seen)}
        )
    changed = sorted(
        n for n, h in templates.used.items() if manifest.prompts.get(n) not in (None, h)
    )
    return {
        "available": True,
        "changed": changed,
        "systems": {p: pr.system for p, pr in prompters.items()},
        "turns": turns,
    }


def _profile(manifest: Manifest, party: str) -> str:
    played = manifest.parties.get(party)
    return played.profile if played else "full"


def packed(contexts: dict[str, Any]) -> dict[str, Any]:
    """The contexts as the page carries them. A party's record only grows, so each of its
    turns shares most of its user message with its turn before: a turn keeps `keep`
    characters of that one (`after`, a turn id) and adds `tail`. A run's prompts are then
    embedded in about the size of its record per party rather than its square."""
    last: dict[str, dict[str, Any]] = {}
    turns = []
    for t in contexts["turns"]:
        text, prev = t["user"], last.get(t["party"])
        out = {k: v for k, v in t.items() if k != "user"}
        shared = os.path.commonprefix([prev["user"], text]) if prev else ""  # noqa: RUF071 (by character, as wanted)
        keep = len(shared.encode("utf-16-le")) // 2  # the page's script counts UTF-16 units
        out |= {"after": prev["id"] if prev else None, "keep": keep, "tail": text[len(shared) :]}
        turns.append(out)
        last[t["party"]] = t
    return {**contexts, "turns": turns}
