"""Who sits where in a cross-play sweep: every seating of a population, or a balanced sample.

A seating gives each seat (a scenario's party, in the scenario's order) one member of the
population. Only mixed seatings are played: one member in every seat is self-play, which
yields no comparison between members. Pure functions of names and numbers: the sweep and
the report both read them, and a sample is the same wherever it is drawn.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UserError

Seating = tuple[str, ...]  # one member name per seat, in the scenario's party order
SEP = "."  # between the members of a seating in a run id: member names cannot hold it
MAX_ALL = 500  # `seating: all` plays every seating only up to this many sessions


def seating_id(seating: Seating) -> str:
    """The seating as a run id reads it: `firm.soft.soft.firm`, seat by seat."""
    return SEP.join(seating)


def read_seating(text: str, seats: int, members: Sequence[str]) -> Seating | None:
    """The seating a run id's middle part names, or None if it names none of this population."""
    names = tuple(text.split(SEP))
    if len(names) != seats or not set(names) <= set(members):
        return None
    return names


def mixed_count(members: int, seats: int) -> int:
    """How many seatings hold at least two different members."""
    return members**seats - members


def all_seatings(members: Sequence[str], seats: int) -> list[Seating]:
    """Every mixed seating, in a fixed order; each member sits in each seat equally often."""
    return [s for s in itertools.product(members, repeat=seats) if len(set(s)) > 1]


def sample_seatings(members: Sequence[str], seats: int, n: int, seed: int) -> list[Seating]:
    """`n` different mixed seatings in which each member sits in each seat n/len(members)
    times, give or take one: deterministic for the same members, seats, n and seed.

    Each seat's column is dealt out evenly and shuffled; a row that came out with one
    member in every seat, or the same as another row, swaps one seat with another row's
    until both rows are fine. A swap inside a column keeps that column's counts.
    """
    total = mixed_count(len(members), seats)
    if n > total:
        raise UserError(
            f"samples: {n} is more than the {total} mixed seatings there are: use `seating: all`"
        )
    rng = random.Random(f"seating/{seed}")
    columns = []
    for j in range(seats):
        column = [members[(i + j) % len(members)] for i in range(n)]
        rng.shuffle(column)
        columns.append(column)
    rows = [list(r) for r in zip(*columns, strict=True)]
    _repair(rows, rng)
    return [tuple(r) for r in rows]


def _repair(rows: list[list[str]], rng: random.Random) -> None:
    """Swap seats between rows until every row is mixed and no two rows are the same: a
    swap that leaves more wrong than it found is undone."""
    seen = Counter(tuple(r) for r in rows)

    def cost(touched: list[list[str]], tuples: set[Seating]) -> int:
        mono = sum(len(set(r)) == 1 for r in touched)
        return mono + sum(max(seen[t] - 1, 0) for t in tuples)

    for _ in range(200 * len(rows) + 1000):
        broken = [i for i, r in enumerate(rows) if len(set(r)) == 1 or seen[tuple(r)] > 1]
        if not broken:
            return
        i, k = rng.choice(broken), rng.randrange(len(rows))
        j = rng.randrange(len(rows[i]))
        if rows[i][j] == rows[k][j]:
            continue
        old = [tuple(rows[i]), tuple(rows[k])]
        rows[i][j], rows[k][j] = rows[k][j], rows[i][j]
        new = [tuple(rows[i]), tuple(rows[k])]
        tuples = {*old, *new}
        before = cost([list(t) for t in old], tuples)
        seen.subtract(old)
        seen.update(new)
        if cost([rows[i], rows[k]], tuples) > before:
            seen.subtract(new)
            seen.update(old)
            rows[i][j], rows[k][j] = rows[k][j], rows[i][j]
    raise UserError(
        f"no balanced sample of {len(rows)} different seatings was found: "
        "ask for fewer samples, or use `seating: all`"
    )


@dataclass(frozen=True)
class Design:
    """The seatings a sweep plays, and how it came to them: stated in the output, recorded."""

    kind: str  # all, or sample
    seatings: list[Seating]
    possible: int  # mixed seatings there are

    def per_seat(self) -> tuple[int, int]:
        """The fewest and most times any member sits in any one seat."""
        counts = [
            Counter(s[j] for s in self.seatings)
            for j in range(len(self.seatings[0]) if self.seatings else 0)
        ]
        members = {m for s in self.seatings for m in s}
        found = [c[m] for c in counts for m in members] or [0]
        return min(found), max(found)

    def summary(self, seeds: int, variants: int) -> str:
        lo, hi = self.per_seat()
        times = str(lo) if lo == hi else f"{lo} to {hi}"
        what = (
            f"all {len(self.seatings)} mixed seatings"
            if self.kind == "all"
            else f"a balanced sample of {len(self.seatings)} of the {self.possible} mixed seatings"
        )
        sessions = len(self.seatings) * seeds * variants
        return (
            f"cross-play: {what} x {seeds} seeds"
            + (f" x {variants} variants" if variants > 1 else "")
            + f" = {sessions} sessions; each member takes each seat in {times} of the seatings"
        )

    def record(self) -> dict[str, object]:
        lo, hi = self.per_seat()
        return {
            "seating": self.kind,
            "seatings": [seating_id(s) for s in self.seatings],
            "possible": self.possible,
            "per_seat": [lo, hi],
        }


def design(members: Sequence[str], seats: int, kind: str, samples: int | None, seed: int) -> Design:
    """The seatings of a population: all of them, or a balanced sample of `samples`."""
    possible = mixed_count(len(members), seats)
    if kind == "all":
        if possible > MAX_ALL:  # enumerating past this is both slow and pointless
            raise UserError(
                f"seating: all would play {possible} seatings ({len(members)} members in "
                f"{seats} seats), more than {MAX_ALL}: use `seating: sample` with `samples: N`"
            )
        return Design("all", all_seatings(members, seats), possible)
    return Design("sample", sample_seatings(members, seats, samples or 0, seed), possible)


def sessions_within(design: Design, seeds: int, variants: int) -> None:
    """`seating: all` is meant for small populations: past MAX_ALL sessions, a sample."""
    sessions = len(design.seatings) * seeds * variants
    if design.kind == "all" and sessions > MAX_ALL:
        raise UserError(
            f"seating: all would run {len(design.seatings)} seatings x {seeds} seeds x "
            f"{variants} variants = {sessions} sessions, more than {MAX_ALL}: use `seating: sample` with `samples: N`"
        )
