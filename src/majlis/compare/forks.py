"""A run and its forks, side by side from the fork point on (`majlis compare RUN --forks`).

A fork shares its parent's events up to its fork point, so everything that differs between
them happened from there: the outcome, each party's score of it and margin over its
walk-away point, and what was said and spent after the point. Each fork is paired with its
parent on these; forks made from the forks are paired with their own parent, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..run import ForkChanges, Outcome, RunDir, children_of

COUNTED = ("events", "messages", "proposals", "calls")


@dataclass(frozen=True)
class PartyDiff:
    party: str
    parent_score: int
    child_score: int
    parent_margin: int
    child_margin: int

    @property
    def score_diff(self) -> int:
        return self.child_score - self.parent_score

    @property
    def margin_diff(self) -> int:
        return self.child_margin - self.parent_margin


@dataclass(frozen=True)
class ForkPair:
    """A parent and one of its forks: `after` counts each one's events from the fork point
    on, as (parent, child)."""

    parent: str
    child: str
    path: Path
    seq: int
    changes: ForkChanges
    parent_outcome: Outcome
    child_outcome: Outcome
    parties: list[PartyDiff]
    after: dict[str, tuple[int, int]] = field(default_factory=dict)


def fork_pairs(run: Path) -> tuple[list[ForkPair], list[str]]:
    """Each finished fork of a run paired with it, and the ids of the forks not finished."""
    rd = RunDir.open(run)
    manifest = rd.read_manifest()
    parent_outcome = rd.read_outcome()
    if parent_outcome is None:
        raise UserError(f"run {manifest.run_id} has no outcome to compare its forks with")
    parent_events, _ = rd.read_events()
    pairs, unfinished = [], []
    for child, m in children_of(rd.path):
        outcome = child.read_outcome()
        if outcome is None or m.parent is None:
            unfinished.append(m.run_id)
            continue
        events, _ = child.read_events()
        seq = m.parent.seq
        parties = [
            PartyDiff(p, r.score, outcome.parties[p].score, r.margin, outcome.parties[p].margin)
            for p, r in parent_outcome.parties.items()
            if p in outcome.parties
        ]
        mine, theirs = _counts(parent_events, seq), _counts(events, seq)
        after = {k: (mine[k], theirs[k]) for k in COUNTED}
        pairs.append(
            ForkPair(
                parent=manifest.run_id,
                child=m.run_id,
                path=child.path,
                seq=seq,
                changes=m.changes or ForkChanges(),
                parent_outcome=parent_outcome,
                child_outcome=outcome,
                parties=parties,
                after=after,
            )
        )
    return pairs, unfinished


def _counts(events: list[dict[str, Any]], seq: int) -> dict[str, int]:
    later = [e for e in events if e["seq"] >= seq]
    return {
        "events": len(later),
        "messages": sum(e["type"] == "message" for e in later),
        "proposals": sum(e["type"] == "proposal" for e in later),
        "calls": sum(1 for e in later if e.get("usage")),
    }


def describe(changes: ForkChanges) -> str:
    """What a fork changed, in one line."""
    parts = [f"{p} plays {m}" for p, m in changes.models.items()]
    if changes.variant is not None:
        parts.append(f"variant {changes.variant}")
    if changes.seed is not None:
        parts.append(f"seed {changes.seed}")
    if changes.edit is not None:
        parts.append(f"message #{changes.edit.seq} edited")
    if changes.inject is not None:
        parts.append(f"inject {changes.inject.title!r} at #{changes.inject.seq}")
    return "; ".join(parts) or "no change (played again)"


def outcome_line(o: Outcome) -> str:
    held = f" in round {o.deal_round}" if o.deal_round is not None else ""
    return f"{o.kind}{held} ({o.branch})"


def forks_markdown(pairs: list[ForkPair], unfinished: list[str]) -> str:
    """The pairs as a Markdown report: one section per fork."""
    if not pairs:
        lines = ["# Forks", "", "No finished forks beside this run."]
    else:
        lines = [f"# Forks of {pairs[0].parent}", ""]
    for f in pairs:
        lines += [
            f"## {f.child}",
            "",
            f"Forked at seq {f.seq}: {describe(f.changes)}.",
            "",
            f"Outcome: {outcome_line(f.parent_outcome)} -> {outcome_line(f.child_outcome)}.",
            "",
            "| party | score (parent) | score (fork) | diff | margin (parent) | margin (fork) | diff |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {d.party} | {d.parent_score} | {d.child_score} | {d.score_diff:+d} | "
            f"{d.parent_margin:+d} | {d.child_margin:+d} | {d.margin_diff:+d} |"
            for d in f.parties
        ]
        counts = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in f.after.items())
        lines += ["", f"From the fork point on: {counts}.", ""]
    if unfinished:
        lines += [f"Not finished (left out): {', '.join(unfinished)}.", ""]
    return "\n".join(lines).rstrip() + "\n"
