"""Each party's prompt: what it may see, and how the record and its turn read.

A party's prompt holds the public record, its own brief, notes and side talk, and nothing
else: `visible` is the one gate every event passes. Other parties' words enter as JSON
lines inside <record>, with angle brackets escaped, so no message can pose as a tag, a
role marker or an instruction block.

Two profiles. `full` gives a capable model everything: the whole situation and agenda,
every stance, and the record. `compact` is for small local models: a short brief, the
party's score table as one JSON line, and only what happened since the party's last move
(the moves, proposals and votes since, side talk to it, the injects), so its prompt stays
a few hundred tokens and consecutive calls share the system prompt as their prefix.

The templates themselves, and the sandbox that renders them, are in `templates.py`.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from typing import Any

from ..scenario import LoadedScenario
from .context import ContextPolicy, split, summary
from .rules import package_words, score
from .templates import Templates

SYSTEM, MOVE, VOTE, NARRATE = "system.md.j2", "move.md.j2", "vote.md.j2", "narrate.md.j2"
PROFILES = ("full", "compact")


def visible(event: dict[str, Any], party: str) -> bool:
    """The privacy gate: may `party` see this event?"""
    audience = event["audience"]
    return audience == "all" or party in audience


def quote(obj: dict[str, Any]) -> str:
    """One compact JSON line whose angle brackets, ampersands and line separators are escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_ESCAPES)


# `<` `>` `&` could pose as tags; U+2028, U+2029 and U+0085 end a line for str.splitlines().
_ESCAPES = str.maketrans(
    {
        "<": "\\u003c",
        ">": "\\u003e",
        "&": "\\u0026",
        "\u2028": "\\u2028",
        "\u2029": "\\u2029",
        "\x85": "\\u0085",
    }
)


def record_entry(event: dict[str, Any]) -> dict[str, Any]:
    """How an event reads in a party's record."""
    entry: dict[str, Any] = {"seq": event["seq"], "round": event["round"], "type": event["type"]}
    if event["speaker"] != "facilitator":
        entry["from"] = event["speaker"]
    entry.update({k: v for k, v in event["content"].items() if k != "attempts"})
    return entry


class RecordLines:
    """Record lines shared by a session's prompters. An event reads the same in every record
    that may show it, so it is quoted once per session, not once per party. Keyed by the
    event object itself (the log's dicts are shared, never changed once made)."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[dict[str, Any], str]] = {}

    def line(self, event: dict[str, Any]) -> str:
        hit = self._by_id.get(id(event))
        if hit is not None and hit[0] is event:
            return hit[1]
        text = quote(record_entry(event)) + "\n"
        self._by_id[id(event)] = (event, text)  # holding the event keeps its id unique
        return text


class PartyPrompter:
    """Builds one party's messages; the system prompt is rendered once and never changes.

    The record is kept incrementally: each event of the log is checked against the privacy
    gate and rendered as a record line once, when the party first reads past it, not again
    on every call (the log only grows). A log that is not the one read so far (a resumed
    run) is read again from the start.
    """

    def __init__(
        self,
        loaded: LoadedScenario,
        party: str,
        templates: Templates,
        policy: ContextPolicy | None = None,
        lines: RecordLines | None = None,
        profile: str = "full",
    ) -> None:
        self.loaded = loaded
        self.profile = profile
        self.folder = "compact/" if profile == "compact" else ""
        self.shared = lines or RecordLines()
        self.party = party
        self.policy = policy or ContextPolicy()
        self.card = loaded.cards[party]
        self.templates = templates
        self.system = self._system()
        self._read = 0  # how many events of the log have been read
        self._tail: dict[str, Any] | None = None  # the last of them: is it still the same log?
        self._rounds: list[int] = []  # round of each visible event, in log order
        self._lines: list[str] = []  # record line of each visible event
        self._visible: list[dict[str, Any]] = []  # the visible events themselves
        self._sorted = True  # rounds never go down along the log (so bisect finds the window)
        self._digest: tuple[int, str | None] = (0, None)  # (events summarised, summary line)

    def _system(self) -> str:
        s = self.loaded.scenario
        card = self.card
        cards = [self.loaded.cards[p] for p in s.parties]
        persona = self.templates.render(card.persona, party=card, scenario=s)
        rules = {
            "parties": list(s.parties),
            "veto": list(s.deal_rule.veto),
            "min_accept": s.deal_rule.min_accept,
            "max_rounds": s.deal_rule.max_rounds,
            "agenda": {i.id: i.option_ids() for i in s.agenda},
            "ordered": [i.id for i in s.agenda if i.ordered],
        }
        private = {
            "party": card.id,
            "threshold": card.threshold,
            "scores": card.scores,
            "red_lines": [[r.issue, r.option] for r in card.red_lines],
        }
        return self.templates.render(
            self.folder + SYSTEM,
            party=card,
            scenario=s,
            rule=s.deal_rule,
            parties=cards,
            veto_names=" and ".join(self.loaded.cards[v].name for v in s.deal_rule.veto),
            convener_name=self.loaded.cards[s.convener].name,
            rules_json=quote(rules),
            persona=persona.strip(),
            scores_json=quote(private),
        )

    def _catch_up(self, events: list[dict[str, Any]]) -> None:
        """Read the events added to the log since the last call."""
        start = self._read
        if start > len(events) or (start and events[start - 1] is not self._tail):
            start = 0  # not the log read so far: read it again from the start
            self._rounds, self._lines, self._visible = [], [], []
            self._sorted, self._digest = True, (0, None)
        for event in events[start:]:
            if visible(event, self.party):
                if self._rounds and event["round"] < self._rounds[-1]:
                    self._sorted = False
                self._rounds.append(event["round"])
                self._lines.append(self.shared.line(event))
                self._visible.append(event)
        self._read = len(events)
        self._tail = events[-1] if events else None

    def record(self, events: list[dict[str, Any]], round_no: int = 0) -> str:
        if self.profile == "compact":
            return self._since_last_move(events)
        self._catch_up(events)
        if self.policy.window is None:
            return "<record>\n" + "".join(self._lines) + "</record>\n"
        if not self._sorted:  # cannot happen in a session; kept exact all the same
            older, recent = split(self._visible, self.policy, round_no)
            digest = summary(self.party, older)
            lines = [quote(record_entry(e)) + "\n" for e in recent]
            head = "" if digest is None else quote(digest) + "\n"
            return "<record>\n" + head + "".join(lines) + "</record>\n"
        cut = bisect_left(self._rounds, round_no - self.policy.window + 1)
        if self._digest[0] != cut:
            digest = summary(self.party, self._visible[:cut])
            self._digest = (cut, None if digest is None else quote(digest) + "\n")
        head = self._digest[1] or ""
        return "<record>\n" + head + "".join(self._lines[cut:]) + "</record>\n"

    def _since_last_move(self, events: list[dict[str, Any]]) -> str:
        """The compact record: what the party may see of the events after its last move
        (its message, or its failed move), in short entries. Read from the log alone, so a
        resumed run rebuilds the very same prompt."""
        start = 0
        for i in range(len(events) - 1, -1, -1):
            e = events[i]
            if e["speaker"] == self.party and (
                e["type"] == "message" or (e["type"] == "error" and e["content"]["task"] == "move")
            ):
                start = i + 1
                break
        entries: list[dict[str, Any]] = []
        for e in events[start:]:
            entry = compact_entry(e, self.party)
            if entry is None or not visible(e, self.party):
                continue
            last = entries[-1] if entries else None
            if (  # a proposal of the positions just stated is one line: "proposed"
                entry["type"] == "proposal"
                and last is not None
                and last["type"] == "message"
                and last["from"] == entry["from"]
                and last["positions"] == entry["package"]
            ):
                last["proposed"] = True
                continue
            entries.append(entry)
        lines = [quote(x) + "\n" for x in entries]
        return "<record>\n" + "".join(lines) + "</record>\n"

    def _turn(self, task: str, round_no: int, standing: dict[str, Any] | None) -> str:
        s = self.loaded.scenario
        max_rounds = s.deal_rule.max_rounds
        turn: dict[str, Any] = {
            "task": task,
            "party": self.party,
            "round": round_no,
            "max_rounds": max_rounds,
            "rounds_left": max_rounds - round_no,
            "standing_proposal": standing["package"] if standing else None,
            "standing_by": standing["by"] if standing else None,
        }
        if self.profile != "full":
            turn["profile"] = self.profile  # the scripted player answers in this shape
        ctx: dict[str, Any] = {
            "turn_json": quote(turn),
            "round": round_no,
            "max_rounds": max_rounds,
            "rounds_left": max_rounds - round_no,
            "threshold": self.card.threshold,
            "standing": standing is not None,
            "standing_by": self.loaded.cards[standing["by"]].name if standing else "",
            "standing_text": package_words(s, standing["package"]) if standing else "",
            "standing_score": score(self.card.scores, standing["package"]) if standing else 0,
        }
        return self.templates.render(self.folder + (MOVE if task == "move" else VOTE), **ctx)

    def messages(
        self,
        task: str,
        events: list[dict[str, Any]],
        round_no: int,
        standing: dict[str, Any] | None,
    ) -> list[dict[str, str]]:
        user = self.record(events, round_no) + "\n" + self._turn(task, round_no, standing)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def narration(
        self, messages: list[dict[str, str]], move: dict[str, Any]
    ) -> list[dict[str, str]]:
        """The messages that ask the model to put a decided move into words: the move's own
        system prompt and record (a shared prefix), then the decision instead of the task."""
        s = self.loaded.scenario
        turn = _turn_of(messages)
        user = messages[-1]["content"]
        record = user[: user.index("<turn>")] if "<turn>" in user else user
        side = move.get("side_message")
        ctx = {
            "turn_json": quote({**turn, "task": "narrate", "with_side": side is not None}),
            "round": turn["round"],
            "max_rounds": turn["max_rounds"],
            "decision": decision_text(s, self.loaded.cards, move, turn.get("standing_by")),
            "side_to": self.loaded.cards[side["to"]].name if side else "",
            "side_gist": side["text"] if side else "",
        }
        return [
            messages[0],
            {"role": "user", "content": record + self.templates.render(NARRATE, **ctx)},
        ]


def _turn_of(messages: list[dict[str, str]]) -> dict[str, Any]:
    user = messages[-1]["content"]
    start, end = user.index("<turn>") + len("<turn>"), user.index("</turn>")
    return json.loads(user[start:end])


def decision_text(
    scenario: Any, cards: dict[str, Any], move: dict[str, Any], standing_by: str | None
) -> str:
    """A decided move in words, for the model that narrates it."""
    if move.get("proposal"):
        return f"you propose this package to the room: {package_words(scenario, move['proposal'])}."
    if standing_by:
        by = cards[standing_by].name if standing_by in cards else standing_by
        return (
            f"you make no new proposal; you support these positions: "
            f"{package_words(scenario, move['positions'])} (the standing proposal is by {by})."
        )
    return f"you make no proposal yet; you state these positions: {package_words(scenario, move['positions'])}."


def terse(package: dict[str, str]) -> str:
    """A package as `issue=option` words: half the tokens of its JSON object."""
    return " ".join(f"{issue}={option}" for issue, option in package.items())


def compact_entry(event: dict[str, Any], party: str) -> dict[str, Any] | None:
    """How an event reads in a compact record, or None when it is left out: the round
    marker (the turn block says the round), each ballot (the tally sums them), notes and
    errors (never another party's), and the party's own side messages."""
    c, t = event["content"], event["type"]
    if t == "inject":
        return {"type": t, "title": c["title"], "text": c["text"]}
    if t == "message":
        positions = terse(c["positions"])
        return {"type": t, "from": event["speaker"], "text": c["text"], "positions": positions}
    if t == "proposal":
        return {"type": t, "from": event["speaker"], "package": terse(c["package"])}
    if t == "side_message" and event["speaker"] != party:
        return {"type": t, "from": event["speaker"], "text": c["text"]}
    if t == "tally":
        return {"type": t, "passed": c["passed"], "accept": c["accept"], "reject": c["reject"]}
    return None
