"""A scenario's zone of agreement, worked out from its cards alone.

The zone is every package that would pass if each party accepted exactly what clears its
walk-away point. Whoever designs a scenario needs more than its size: how it splits between
the scenario's futures, and for each party how far apart its best and worst packages lie,
over every package and inside the zone, and how much room the zone leaves it above its
threshold. A party that clears its threshold only at the edge of the zone is the one who
will be hard to win; a zone of one branch only means the other cannot be reached by a deal.

Nothing here does I/O: `majlis validate` prints the summary line, `majlis zone` the tables.
"""

from __future__ import annotations

from statistics import median

from pydantic import BaseModel, ConfigDict

from ..scenario import LoadedScenario, package_count
from .rules import all_packages, classify_branch, deal_passes, score


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scored(_Report):
    """One package as a party sees it: its score and how far above its threshold (or below)."""

    package: dict[str, str]
    score: int
    margin: int


class BranchShare(_Report):
    """How many packages of the zone lead to one of the scenario's futures."""

    branch: str
    label: str
    packages: int


class PartyEnds(_Report):
    """A party's extremes over every package and inside the zone, and its room in the zone.

    Of packages that tie, the first in the agenda's own order is shown. `accepts` counts the
    zone's packages that clear this party's threshold (a zone package need not clear every
    party's: only the veto parties' and enough others'); the margins are over the zone."""

    party: str
    veto: bool
    threshold: int
    best: Scored
    worst: Scored
    best_in_zone: Scored | None
    worst_in_zone: Scored | None
    accepts: int
    min_margin: int | None
    median_margin: float | None


class Zone(_Report):
    """A scenario's zone of agreement: its size, its split by branch, each party's ends."""

    scenario: str
    packages: int
    passing: int
    branches: list[BranchShare]
    parties: list[PartyEnds]

    def line(self) -> str:
        """One line: how many packages pass, of how many, and how they split."""
        split = ", ".join(f"{_in_a_list(b.label)} {b.packages:,}" for b in self.branches)
        return (
            f"{self.scenario}: zone of agreement {self.passing:,} of {self.packages:,} packages"
            + (f" ({split})" if split else "")
        )

    def warning(self) -> str | None:
        """What to say when no deal is possible at all; None when the zone is not empty."""
        if self.passing:
            return None
        return (
            f"{self.scenario}: no package clears every veto party and enough others at their "
            "walk-away points: no deal is possible"
        )


def _in_a_list(label: str) -> str:
    """A label inside a sentence: its first letter small, unless it opens with an acronym."""
    return label if label[1:2].isupper() else label[:1].lower() + label[1:]


class _Ends:
    """A party's running extremes: the first package of each highest and lowest score."""

    def __init__(self) -> None:
        self.best: tuple[int, dict[str, str]] | None = None
        self.worst: tuple[int, dict[str, str]] | None = None

    def see(self, value: int, package: dict[str, str]) -> None:
        if self.best is None or value > self.best[0]:
            self.best = (value, package)
        if self.worst is None or value < self.worst[0]:
            self.worst = (value, package)


def zone_of(loaded: LoadedScenario) -> Zone:
    """Enumerate every package once: who clears its threshold, whether it passes, and each
    party's extremes over all packages and over those that pass."""
    s, cards = loaded.scenario, loaded.cards
    everywhere = {p: _Ends() for p in s.parties}
    inside = {p: _Ends() for p in s.parties}
    margins: dict[str, list[int]] = {p: [] for p in s.parties}
    branches: dict[str, int] = {}
    passing = 0
    for package in all_packages(s):
        values = {p: score(cards[p].scores, package) for p in s.parties}
        for p, value in values.items():
            everywhere[p].see(value, package)
        if not deal_passes({p: values[p] >= cards[p].threshold for p in s.parties}, s.deal_rule):
            continue
        passing += 1
        branch = classify_branch(s, "deal", package)
        branches[branch] = branches.get(branch, 0) + 1
        for p, value in values.items():
            inside[p].see(value, package)
            margins[p].append(value - cards[p].threshold)
    return Zone(
        scenario=s.id,
        packages=package_count(s),
        passing=passing,
        branches=[  # in the scenario's order; a branch no package reaches is left out
            BranchShare(branch=b.id, label=b.label, packages=branches[b.id])
            for b in s.branches
            if branches.get(b.id)
        ],
        parties=[
            _party(p, cards[p].threshold, cards[p].veto, everywhere[p], inside[p], margins[p])
            for p in s.parties
        ],
    )


def _scored(end: tuple[int, dict[str, str]] | None, threshold: int) -> Scored | None:
    if end is None:
        return None
    return Scored(package=end[1], score=end[0], margin=end[0] - threshold)


def _party(
    party: str, threshold: int, veto: bool, everywhere: _Ends, inside: _Ends, margins: list[int]
) -> PartyEnds:
    best, worst = _scored(everywhere.best, threshold), _scored(everywhere.worst, threshold)
    assert best is not None and worst is not None  # an agenda has at least one package
    return PartyEnds(
        party=party,
        veto=veto,
        threshold=threshold,
        best=best,
        worst=worst,
        best_in_zone=_scored(inside.best, threshold),
        worst_in_zone=_scored(inside.worst, threshold),
        accepts=sum(m >= 0 for m in margins),
        min_margin=min(margins, default=None),
        median_margin=median(margins) if margins else None,
    )
