"""Statistics for comparing variants: bootstrap intervals, paired differences, exact tests.

Pure functions on lists of floats, with the degenerate cases (one value, all values equal,
no pairs) answered explicitly rather than by NaN. `bootstrap` resamples any list with any
statistic: the cross-play ratings resample whole sessions with it.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Interval:
    mean: float | None
    low: float | None
    high: float | None
    n: int


def bootstrap_ci(
    values: list[float], level: float = 0.95, resamples: int = 4000, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of the mean. One value: no interval; equal values: a point."""
    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0)
    mean = statistics.fmean(values)
    if n == 1:
        return Interval(mean, None, None, 1)
    if min(values) == max(values):
        return Interval(mean, mean, mean, n)
    [(low, high)] = bootstrap(
        values, lambda xs: [statistics.fmean(xs)], level=level, resamples=resamples, seed=seed
    )
    return Interval(mean, low, high, n)


def bootstrap(
    items: Sequence[T],
    statistic: Callable[[list[T]], Sequence[float]],
    level: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> list[tuple[float, float]]:
    """Percentile bootstrap: `items` drawn with replacement `resamples` times, and for each
    number the statistic returns, the interval that holds `level` of its values."""
    rng = random.Random(seed)
    n = len(items)
    draws = [statistic(rng.choices(items, k=n)) for _ in range(resamples)]
    tail = (1 - level) / 2
    out = []
    for column in zip(*draws, strict=True):
        ordered = sorted(column)
        low = ordered[math.floor(tail * (resamples - 1))]
        high = ordered[math.ceil((1 - tail) * (resamples - 1))]
        out.append((low, high))
    return out


@dataclass(frozen=True)
class PairedTest:
    n: int
    mean_diff: float | None
    p_value: float | None
    min_p: float | None  # the smallest p-value this many pairs could ever give
    effect_size: float | None  # Cohen's d_z: mean difference over its standard deviation
    exact: bool
    note: str


def sign_flip_test(
    diffs: list[float], alpha: float = 0.05, max_exact: int = 16, draws: int = 20000, seed: int = 0
) -> PairedTest:
    """Two-sided paired permutation test: flip the sign of each difference at random.

    Exact (all 2^n sign patterns) up to `max_exact` pairs, Monte Carlo beyond.
    """
    n = len(diffs)
    if n == 0:
        return PairedTest(0, None, None, None, None, True, "no pairs: the variants share no seed")
    mean = statistics.fmean(diffs)
    sd = statistics.stdev(diffs) if n > 1 else 0.0
    effect = mean / sd if sd > 0 else None
    observed = abs(sum(diffs))
    min_p = min(1.0, 2 / 2**n)
    if all(d == 0 for d in diffs):
        return PairedTest(n, 0.0, 1.0, min_p, None, True, "no difference in any pair")
    tol = 1e-12
    if n <= max_exact:
        count = sum(
            abs(sum(s * d for s, d in zip(signs, diffs, strict=True))) >= observed - tol
            for signs in itertools.product((1, -1), repeat=n)
        )
        p, exact = count / 2**n, True
    else:
        rng = random.Random(seed)
        count = sum(
            abs(sum(d if rng.random() < 0.5 else -d for d in diffs)) >= observed - tol
            for _ in range(draws)
        )
        p, exact = (count + 1) / (draws + 1), False
    if min_p > alpha:
        note = f"too few pairs for significance at {alpha}: with {n} pairs the smallest possible p is {min_p:.3g}"
    elif p <= alpha:
        note = f"significant at {alpha}"
    else:
        note = f"not significant at {alpha}"
    return PairedTest(n, mean, p, min_p, effect, exact, note)
