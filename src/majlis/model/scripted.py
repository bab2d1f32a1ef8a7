"""The scripted negotiator: a deterministic, rule-based player that reads its prompt.

It sees exactly what an LLM sees (the messages) and plays from the hidden scores in its
own brief: it aims high, concedes toward its walk-away point as rounds pass, proposes the
package it can live with that sits closest to what the others have said in public, and
votes by its current aspiration. It is the baseline for LLM players and the model every
fast test uses.

The order in which an issue lists its options means something only on the issues the rules
name as `ordered` (options along one scale, where neighbours are close). Elsewhere an option
is either the one a party said or not, and no choice depends on the order of the list.

Model names: `scripted` (linear concession), `scripted:firm` (concedes late),
`scripted:soft` (concedes early).
"""

from __future__ import annotations

import itertools
import json
import random
import re
from typing import Any

from ..errors import MajlisError
from ..protocol import compact_move, compact_vote

STYLES = {"": 1.0, "linear": 1.0, "firm": 3.0, "soft": 0.4}


class ScriptError(MajlisError):
    """The prompt does not carry what the scripted player needs."""


def _tag(text: str, name: str) -> str:
    m = re.search(rf"<{name}>(.*?)</{name}>", text, re.S)
    if not m:
        raise ScriptError(f"the prompt has no <{name}> block")
    return m.group(1)


def _package(value: Any) -> dict[str, str]:
    """Positions as the record gives them: a JSON object, or the compact profile's
    `issue=option` words."""
    if isinstance(value, dict):
        return value
    return dict(pair.split("=", 1) for pair in str(value).split() if "=" in pair)


def style_exponent(model: str) -> float:
    _, _, style = model.partition(":")
    if style not in STYLES:
        raise ScriptError(f"unknown scripted style {style!r} (known: firm, soft, linear)")
    return STYLES[style]


def respond(
    messages: list[dict[str, Any]], model: str = "scripted", seed: int | None = None
) -> str:
    """The scripted player's reply to a chat request, as JSON text.

    With a seed, each party's pace of concession varies a little from session to session
    (deterministically per seed, party and round), so seeds give different games.
    """
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    users = [m["content"] for m in messages if m["role"] == "user"]
    user = next((u for u in reversed(users) if "<turn>" in u), users[-1] if users else "")
    rules = json.loads(_tag(system, "rules"))
    mine = json.loads(_tag(system, "private_scores"))
    turn = json.loads(_tag(user, "turn"))
    record = [json.loads(line) for line in _tag(user, "record").splitlines() if line.strip()]
    exponent = style_exponent(model)
    if seed is not None:
        exponent *= random.Random(f"{seed}/{mine['party']}").uniform(0.6, 1.6)
    if turn["task"] == "narrate":  # words for a decided move (narrated play): plain ones
        words = {"message": "We have set out where we stand and ask the room to weigh it."}
        if turn.get("with_side"):
            words["side"] = "Let us talk in private about the points that still divide us."
        return json.dumps(words)
    player = _Player(rules, mine, turn, record, exponent)
    if turn["task"] == "vote":
        vote = player.vote()
        return json.dumps(compact_vote(vote) if turn.get("profile") == "compact" else vote)
    move = player.move()
    return json.dumps(compact_move(move) if turn.get("profile") == "compact" else move)


class _Player:
    def __init__(
        self,
        rules: dict[str, Any],
        mine: dict[str, Any],
        turn: dict[str, Any],
        record: list[dict[str, Any]],
        exponent: float,
    ) -> None:
        self.rules, self.turn, self.record = rules, turn, record
        self.me = mine["party"]
        self.scores: dict[str, dict[str, int]] = mine["scores"]
        self.threshold: int = mine["threshold"]
        self.red = {(i, o) for i, o in mine.get("red_lines", [])}
        self.issues: dict[str, list[str]] = rules["agenda"]
        self.ordered = set(rules.get("ordered", []))
        self.ties = {i: {o: self.preference(i, o) for o in opts} for i, opts in self.issues.items()}
        best = sum(max(t.values()) for t in self.scores.values())
        rounds = max(1, turn["max_rounds"] - 1)
        progress = min(1.0, (turn["round"] - 1) / rounds)
        self.aspiration = self.threshold + (best - self.threshold) * (1 - progress**exponent)

    def value(self, package: dict[str, str]) -> int:
        return sum(self.scores[i][o] for i, o in package.items())

    def acceptable(self, package: dict[str, str] | None) -> bool:
        if not package:
            return False
        no_red = not any((i, o) in self.red for i, o in package.items())
        return no_red and self.value(package) >= self.aspiration

    def stated_positions(self) -> dict[str, dict[str, str]]:
        latest: dict[str, dict[str, str]] = {}
        for e in self.record:
            if e["type"] == "message" and e.get("from") not in (None, self.me):
                latest[e["from"]] = _package(e.get("positions", {}))
        return latest

    def choose(self) -> dict[str, str]:
        """Among packages I can live with now, the one the least willing needed party is closest to.

        With no view of the others' scores, a party's stated positions stand in for its
        interests: a package appeals to a party as much as it is close to what that party
        said. A deal needs every veto party and `min_accept` in all: a package is first as
        strong as the least pleased veto party, then as the weakest other party it needs.
        """
        others = self.stated_positions()
        need = max(0, self.rules["min_accept"] - 1)
        ids = list(self.issues)
        best: tuple[Any, ...] | None = None
        chosen: dict[str, str] = {}
        for combo in itertools.product(*(self.issues[i] for i in ids)):
            pkg = dict(zip(ids, combo, strict=True))
            if not self.acceptable(pkg):
                continue
            appeal = {p: self.closeness(pkg, pos) for p, pos in others.items()}
            vetoes = [appeal[p] for p in self.rules["veto"] if p in appeal]
            ranked = sorted(appeal.values(), reverse=True)
            weakest = ranked[need - 1] if 0 < need <= len(ranked) else 0
            key = (
                min(vetoes, default=1.0),
                weakest,
                sum(ranked),
                self.value(pkg),
                tuple(self.ties[i][o] for i, o in pkg.items()),
            )
            if best is None or key > best:
                best, chosen = key, pkg
        if not chosen:  # aspiration above every package (cannot happen at or above threshold)
            chosen = self.favourite()
        return chosen

    def preference(self, issue: str, option: str) -> tuple[Any, ...]:
        """How an option ranks when all else is equal; higher is preferred.

        On an ordered issue, the option listed earlier, as the player always did. On an
        unordered one the list's order means nothing, so: my own score of the option, then
        the option id (the smaller first), which no reordering of the list changes.
        """
        if issue in self.ordered:
            return (-self.issues[issue].index(option),)
        return (self.scores[issue][option], -sorted(self.issues[issue]).index(option))

    def favourite(self) -> dict[str, str]:
        """The option I score highest on each issue, ties settled as `preference` does."""
        return {
            i: max(opts, key=lambda o, i=i: (self.scores[i][o], self.ties[i][o]))
            for i, opts in self.issues.items()
        }

    def closeness(self, pkg: dict[str, str], stated: dict[str, str]) -> float:
        """0 (nothing alike) to 1 (the same options). On an ordered issue an option is as
        close to the stated one as their places along the scale; on an unordered issue it
        is the same option (1) or another (0)."""
        total = 0.0
        for issue, option in pkg.items():
            opts, said = self.issues[issue], stated.get(issue)
            if said not in opts:
                continue
            if issue in self.ordered:
                total += 1 - abs(opts.index(option) - opts.index(said)) / (len(opts) - 1)
            else:
                total += option == said
        return total / max(1, len(pkg))

    def move(self) -> dict[str, Any]:
        standing = self.turn.get("standing_proposal")
        favourite = self.favourite()
        if self.acceptable(standing):
            package, proposal = standing, None
            said = "We can work with the package on the table and urge the others to accept it."
        else:
            package = self.choose()
            proposal = package if package != standing else None
            said = (
                "We put forward this package: "
                + ", ".join(f"{i}: {o}" for i, o in package.items())
                + "."
            )
        side = None
        others = self.stated_positions()
        if others:
            far = max(
                sorted(others), key=lambda p: sum(others[p].get(i) != o for i, o in package.items())
            )
            gap = [i for i, o in package.items() if others[far].get(i) != o]
            if gap:
                side = {
                    "to": far,
                    "text": f"Between us: move toward us on {gap[0]} and we can talk about the rest.",
                }
        return {
            "private_reasoning": (
                f"Round {self.turn['round']}: I aim for at least {self.aspiration:.0f} points "
                f"(walk-away {self.threshold}); this package is worth {self.value(package)} to me."
            ),
            "private_positions": favourite,
            "public_message": said,
            "positions": package,
            "proposal": proposal,
            "side_message": side,
        }

    def vote(self) -> dict[str, Any]:
        standing = self.turn.get("standing_proposal")
        ok = self.acceptable(standing)
        worth = self.value(standing) if standing else 0
        return {
            "private_reasoning": f"The proposal is worth {worth}; I need {self.aspiration:.0f} now.",
            "vote": "accept" if ok else "reject",
        }
