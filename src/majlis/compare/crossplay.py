"""Cross-play ratings: which member of a population does better against the others.

Each session seats members of the population in the scenario's seats (`seating.py`).
A seat's result is its margin over its walk-away point (its score of the deal minus its
threshold; no deal: 0, since every party then keeps its walk-away), divided by the
spread of its own score table, so that a party with larger numbers does not count for more.

Seats are not equal: some tables leave more room above the walk-away point than others. A
balanced design puts every member in every seat about equally often, and each result is
taken relative to its seat's mean over the sessions (of the same prompt variant), so what
is compared is how far a member did better than that seat usually does. Two seats of one session held by different
members are one comparison: the better result wins, equal results are a tie, worth half a
win to each. A Bradley-Terry model of those comparisons, fitted by `choix`, gives each
member a rating; the intervals come from refitting on sessions drawn with replacement
(whole sessions, since the comparisons within one are not independent).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..evals import RunMetrics
from ..scenario import LoadedScenario
from .stats import bootstrap

if TYPE_CHECKING:
    import numpy as np

    from .comparison import RunRow

ALPHA = 0.1  # choix's regularisation: an unbeaten member's rating stays finite
TIE = 1e-9  # results closer than this are equal
RESAMPLES = 1000


def seat_results(loaded: LoadedScenario, metrics: RunMetrics) -> dict[str, float]:
    """Each party's margin over its walk-away point in a session, over its score spread."""
    out = {}
    for party in loaded.scenario.parties:
        card = loaded.cards[party]
        spread = sum(max(opts.values()) - min(opts.values()) for opts in card.scores.values())
        margin = metrics.parties[party].margin if metrics.scored == "deal" else 0
        out[party] = (margin or 0) / spread if spread else 0.0
    return out


@dataclass(frozen=True)
class Rating:
    member: str
    rating: float | None  # Bradley-Terry log-strength; the rated members average 0
    low: float | None  # its interval, from the bootstrap over sessions
    high: float | None
    comparisons: int  # seats it held against a seat of another member
    wins: float  # of those, the ones it won, ties counting half

    def shown(self) -> tuple[str, str]:
        """Its rating and its interval, as the tables print them."""
        rating = "-" if self.rating is None else f"{self.rating:+.2f}"
        return rating, "-" if self.low is None else f"[{self.low:+.2f}, {self.high:+.2f}]"


@dataclass(frozen=True)
class SeatCell:
    mean: float | None  # the member's mean normalised margin in this seat
    n: int

    def shown(self) -> str:
        return f"{'-' if self.mean is None else f'{self.mean:+.2f}'} ({self.n})"


@dataclass
class CrossPlay:
    seats: list[str]
    members: list[str]
    sessions: int
    seatings: int
    seeds: int
    matrix: dict[str, dict[str, SeatCell]]  # seat -> member -> its results there
    ratings: list[Rating] = field(default_factory=list)  # best first
    level: float = 0.95

    def describe(self) -> str:
        return (
            f"{self.sessions} sessions ({self.seatings} seatings x {self.seeds} seeds). A "
            "result is a seat's margin over its walk-away point, over the party's score "
            "spread; two members of a session are compared on their results less their "
            "seats' means. Ratings are Bradley-Terry log-strengths (0: the population's "
            f"average; +1 wins 73% of comparisons against 0), with {self.level:.0%} "
            "bootstrap intervals over sessions"
        )


class _Table:
    """The sessions as arrays: results and members by session and seat."""

    def __init__(self, rows: Sequence[RunRow], seats: list[str], members: list[str]) -> None:
        import numpy as np

        self.results = np.array([[r.results[p] for p in seats] for r in rows], dtype=float)
        self.who = np.array([[members.index(r.seats[p]) for p in seats] for r in rows])
        variants = sorted({r.variant for r in rows})
        self.variant = np.array([variants.index(r.variant) for r in rows])
        self.k = len(members)

    def levelled(self, idx: list[int]) -> np.ndarray:
        """The results of the sessions `idx`, less the mean of their seat among those
        sessions of the same variant (a variant may move what a seat can get)."""
        res, variant = self.results[idx], self.variant[idx]
        out = res.copy()
        for v in set(variant.tolist()):
            same = variant == v
            out[same] -= res[same].mean(axis=0)
        return out

    def wins(self, idx: Sequence[int]) -> np.ndarray:
        """wins[i, j]: how often member i did better than member j in the sessions `idx`
        (a tie adds half to both), each result levelled by its seat's mean there."""
        import numpy as np

        rel, who = self.levelled(list(idx)), self.who[list(idx)]
        wins = np.zeros((self.k, self.k))
        for p, q in itertools.combinations(range(rel.shape[1]), 2):
            a, b, x, y = who[:, p], who[:, q], rel[:, p], rel[:, q]
            apart = a != b
            tie = apart & (np.abs(x - y) <= TIE)
            first = apart & ~tie & (x > y)
            second = apart & ~tie & (x < y)
            np.add.at(wins, (a[first], b[first]), 1.0)
            np.add.at(wins, (b[second], a[second]), 1.0)
            np.add.at(wins, (a[tie], b[tie]), 0.5)
            np.add.at(wins, (b[tie], a[tie]), 0.5)
        return wins


def strengths(wins: np.ndarray) -> list[float | None]:
    """Bradley-Terry log-strengths of the members that took part in any comparison (their
    mean 0), by choix's iterative Luce spectral ranking; None for the others."""
    import choix

    played = [i for i in range(len(wins)) if wins[i].sum() + wins[:, i].sum() > 0]
    out: list[float | None] = [None] * len(wins)
    if len(played) < 2:
        return out
    fitted = choix.ilsr_pairwise_dense(wins[played][:, played], alpha=ALPHA, max_iter=1000)
    for i, value in zip(played, fitted, strict=True):
        out[i] = float(value)
    return out


def cross_play(rows: Sequence[RunRow], level: float = 0.95, seed: int = 0) -> CrossPlay | None:
    """The matrix and the ratings of the cross-play runs among `rows` (None if none is)."""
    rows = [r for r in rows if r.seats]
    if not rows:
        return None
    seats = list(rows[0].seats)
    members = sorted({m for r in rows for m in r.seats.values()})
    matrix = {
        p: {m: _cell([r.results[p] for r in rows if r.seats[p] == m]) for m in members}
        for p in seats
    }
    seatings = len({tuple(r.seats.values()) for r in rows})
    seeds = len({r.seed for r in rows})
    found = CrossPlay(seats, members, len(rows), seatings, seeds, matrix, level=level)
    table = _Table(rows, seats, members)
    everyone = list(range(len(rows)))
    wins = table.wins(everyone)
    point = strengths(wins)
    draws = bootstrap(
        everyone,
        lambda idx: [_or_average(x) for x in strengths(table.wins(idx))],
        level=level,
        resamples=RESAMPLES,
        seed=seed,
    )
    ratings = []
    for i, m in enumerate(members):
        n = int(wins[i].sum() + wins[:, i].sum())
        low, high = draws[i] if point[i] is not None else (None, None)
        ratings.append(Rating(m, point[i], low, high, n, float(wins[i].sum())))
    found.ratings = sorted(ratings, key=lambda r: -1e9 if r.rating is None else -r.rating)
    return found


def _or_average(x: float | None) -> float:
    """A member left out of a resample's comparisons sits at the average there."""
    return 0.0 if x is None else x


def _cell(values: list[float]) -> SeatCell:
    return SeatCell(statistics.fmean(values) if values else None, len(values))


def to_dict(cp: CrossPlay) -> dict[str, Any]:
    """The cross-play results as JSON has them."""
    return {
        "seats": cp.seats,
        "members": cp.members,
        "sessions": cp.sessions,
        "seatings": cp.seatings,
        "seeds": cp.seeds,
        "level": cp.level,
        "leaderboard": [r.__dict__ for r in cp.ratings],
        "matrix": {p: {m: c.__dict__ for m, c in row.items()} for p, row in cp.matrix.items()},
    }


def markdown(cp: CrossPlay) -> list[str]:
    """The leaderboard and the seat-by-member matrix as Markdown lines."""
    lines = ["## Cross-play leaderboard", "", cp.describe() + ".", ""]
    lines += [
        "| member | rating | 95% CI | comparisons | wins |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.member} | {' | '.join(r.shown())} | {r.comparisons} | {r.wins:g} |"
        for r in cp.ratings
    ]
    lines += ["", "## Seat by member (mean normalised margin, n)", ""]
    lines += ["| seat | " + " | ".join(cp.members) + " |", "| --- |" + " --- |" * len(cp.members)]
    for p, row in cp.matrix.items():
        lines.append(f"| {p} | " + " | ".join(c.shown() for c in row.values()) + " |")
    return [*lines, ""]


def csv_rows(cp: CrossPlay) -> list[list[object]]:
    """One table for both: the leaderboard's rows (no seat), then the matrix's (a seat)."""
    out: list[list[object]] = [
        ["table", "member", "seat", "n", "value", "ci_low", "ci_high", "wins"]
    ]
    out += [
        ["leaderboard", r.member, "", r.comparisons, r.rating, r.low, r.high, r.wins]
        for r in cp.ratings
    ]
    out += [
        ["matrix", m, p, c.n, c.mean, "", "", ""]
        for p, row in cp.matrix.items()
        for m, c in row.items()
    ]
    return out
