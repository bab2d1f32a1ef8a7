"""A party's brief in plain words, for the person who plays it (a trainee).

An agent reads its system prompt, with its hidden scores as JSON. A person reads this: who
they are, what they say in public, what only they know, their red lines, and their scores
as a table with the options' own labels. The checks a person is asked to confirm (a package
under their walk-away point, a package across a red line) are made here too, so the
terminal and any other front end give the same warnings.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from ..scenario import LoadedScenario
from .rules import score


class OptionScore(BaseModel):
    id: str
    label: str
    score: int


class IssueScores(BaseModel):
    id: str
    title: str
    options: list[OptionScore]


class RedLineWords(BaseModel):
    issue: str
    option: str
    words: str  # "Guarantees: Federal forces only"
    why: str


class Briefing(BaseModel):
    """Everything a person playing `party` may know before the talks start, and nothing of
    another party's private material."""

    party: str
    name: str
    role: str
    scenario_title: str
    situation: str
    public_stance: str
    private_brief: str
    private_interests: list[str]
    red_lines: list[RedLineWords]
    threshold: int
    best: int
    issues: list[IssueScores]
    names: dict[str, str]  # every party's id -> display name, for the record
    veto: list[str]
    min_accept: int

    def label(self, issue: str, option: str | None) -> str:
        for i in self.issues:
            if i.id == issue:
                return next((o.label for o in i.options if o.id == option), str(option))
        return str(option)

    def value(self, package: Mapping[str, str | None]) -> int:
        table = {i.id: {o.id: o.score for o in i.options} for i in self.issues}
        return score(table, {k: v for k, v in package.items() if v is not None})

    def warnings(self, package: Mapping[str, str | None]) -> list[str]:
        """What a person should confirm before accepting or proposing `package`."""
        out = []
        worth = self.value(package)
        if worth < self.threshold:
            out.append(
                f"it is worth {worth} to you, under your walk-away point of {self.threshold}"
            )
        for line in self.red_lines:
            if package.get(line.issue) == line.option:
                out.append(f"it crosses your red line ({line.words})")
        return out


def briefing(loaded: LoadedScenario, party: str) -> Briefing:
    s, card = loaded.scenario, loaded.cards[party]
    issues = [
        IssueScores(
            id=i.id,
            title=i.title,
            options=[
                OptionScore(id=o.id, label=o.label, score=card.scores[i.id][o.id])
                for o in i.options
            ],
        )
        for i in s.agenda
    ]
    titles = {i.id: i for i in s.agenda}
    red = [
        RedLineWords(
            issue=r.issue,
            option=r.option,
            words=f"{titles[r.issue].title}: "
            + next(o.label for o in titles[r.issue].options if o.id == r.option),
            why=r.why,
        )
        for r in card.red_lines
    ]
    return Briefing(
        party=party,
        name=card.name,
        role=card.role,
        scenario_title=s.title,
        situation=s.brief,
        public_stance=card.public_stance,
        private_brief=card.private_brief,
        private_interests=list(card.private_interests),
        red_lines=red,
        threshold=card.threshold,
        best=loaded.max_score(party),
        issues=issues,
        names={p: loaded.cards[p].name for p in s.parties},
        veto=list(s.deal_rule.veto),
        min_accept=s.deal_rule.min_accept,
    )


def briefing_text(b: Briefing) -> str:
    """The brief as a person reads it at the start, in plain text."""
    lines = [
        f"You play {b.name} ({b.role}).",
        "",
        f"The situation ({b.scenario_title}, every party knows this):",
        b.situation.strip(),
        "",
        "What you say in public:",
        b.public_stance.strip(),
        "",
        "Your private brief (no one else sees it):",
        b.private_brief.strip(),
    ]
    if b.private_interests:
        lines += ["", "What you need:", *(f"  - {i}" for i in b.private_interests)]
    if b.red_lines:
        lines += ["", "Your red lines (never accept these):"]
        lines += [f"  - {r.words}." + (f" {r.why}" if r.why else "") for r in b.red_lines]
    lines += ["", "Your scores (hidden from everyone; a package scores the sum of its options):"]
    for issue in b.issues:
        lines.append(f"  {issue.title}")
        for o in sorted(issue.options, key=lambda o: -o.score):
            lines.append(f"    {o.score:>4}  {o.label}")
    vetoes = " and ".join(b.names[v] for v in b.veto)
    lines += [
        "",
        f"Your walk-away point is {b.threshold} (the best package is worth {b.best} to you): "
        "a package worth less is worse for you than no deal.",
        f"A package passes with {b.min_accept} acceptances, {vetoes} among them.",
    ]
    return "\n".join(lines)


def record_line(b: Briefing, entry: Mapping[str, object]) -> str:
    """One entry of the party's record (what its prompt shows it) in plain words."""
    kind = entry.get("type")
    who = b.names.get(str(entry.get("from", "")), "The facilitator")
    head = f"[{entry.get('seq', '-')}] "
    if kind == "round":
        return f"--- Round {entry.get('round')} ---"
    if kind == "inject":
        return f"{head}Scenario event: {entry.get('title')}: {entry.get('text')}"
    if kind == "message":
        return f"{head}{who}: {entry.get('text')}" + _positions(b, entry.get("positions"))
    if kind == "side_message":
        return f"{head}{who} (privately, to {b.names.get(str(entry.get('to')), entry.get('to'))}): {entry.get('text')}"
    if kind == "proposal":
        return f"{head}{who} puts to the vote:" + _positions(b, entry.get("package"))
    if kind == "tally":
        passed = "PASSED" if entry.get("passed") else "failed"
        yes, no = _names(b, entry.get("accept")), _names(b, entry.get("reject"))
        return f"{head}The vote {passed}: accept {yes}; reject {no}"
    if kind == "vote":
        voter = "You" if entry.get("from") == b.party else who
        return f"{head}{voter} voted {entry.get('vote')}"
    if kind == "outcome":
        package = entry.get("package")
        agreed = {i: o for i, o in package.items() if o} if isinstance(package, Mapping) else {}
        return f"{head}The talks end: {entry.get('kind')}." + _positions(b, agreed)
    if kind == "private_note":
        return f"{head}(your own note) {entry.get('reasoning', '')}"
    shown = {k: v for k, v in entry.items() if k not in ("seq", "round", "type", "from")}
    return f"{head}{kind} {who}: {shown}"


def _positions(b: Briefing, package: object) -> str:
    if isinstance(package, str):  # the compact record's `issue=option` words
        package = dict(p.split("=", 1) for p in package.split() if "=" in p)
    if not isinstance(package, Mapping) or not package:
        return ""
    words = "; ".join(f"{b.label(str(i), str(o))}" for i, o in package.items())
    return f"\n      ({words})"


def _names(b: Briefing, parties: object) -> str:
    if not isinstance(parties, list) or not parties:
        return "none"
    return ", ".join(b.names.get(str(p), str(p)) for p in parties)
