"""Table-driven tests of the comparison statistics, with the degenerate cases."""

from __future__ import annotations

import pytest

from majlis.compare import bootstrap_ci, sign_flip_test


@pytest.mark.parametrize(
    ("values", "mean", "low", "high"),
    [
        ([], None, None, None),
        ([3.0], 3.0, None, None),  # one value: a mean, no interval
        ([2.0, 2.0, 2.0], 2.0, 2.0, 2.0),  # no spread: a point
    ],
)
def test_bootstrap_degenerate(
    values: list[float], mean: float | None, low: float | None, high: float | None
) -> None:
    ci = bootstrap_ci(values)
    assert (ci.mean, ci.low, ci.high, ci.n) == (mean, low, high, len(values))


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_n() -> None:
    small = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    big = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0] * 20)
    assert small.low < small.mean == 3.0 < small.high
    assert (big.high - big.low) < (small.high - small.low)
    assert small.low >= 1.0 and small.high <= 5.0
    assert bootstrap_ci([1.0, 5.0], seed=1) == bootstrap_ci([1.0, 5.0], seed=1)


@pytest.mark.parametrize(
    ("diffs", "p", "min_p"),
    [
        ([1.0, 1.0, 1.0, 1.0], 2 / 16, 2 / 16),  # all positive: only the two extreme patterns tie
        ([1.0, -1.0, 1.0, -1.0], 1.0, 2 / 16),  # sums to zero: every pattern is as extreme
        ([2.0, 1.0, 1.0], 2 / 8, 2 / 8),
        ([3.0, -1.0], 1.0, 2 / 4),  # |3-1| = 2; every sign pattern gives 2 or 4
    ],
)
def test_sign_flip_exact(diffs: list[float], p: float, min_p: float) -> None:
    t = sign_flip_test(diffs)
    assert t.p_value == pytest.approx(p)
    assert t.min_p == pytest.approx(min_p)
    assert t.exact


def test_too_few_pairs_is_said() -> None:
    t = sign_flip_test([1.0, 2.0, 1.5, 2.5])
    assert t.p_value == pytest.approx(2 / 16)
    assert "too few pairs" in t.note and "0.125" in t.note


def test_enough_pairs_can_be_significant() -> None:
    t = sign_flip_test([1.0, 2.0, 1.5, 2.5, 1.0, 3.0, 2.0])
    assert t.p_value == pytest.approx(2 / 128)
    assert t.note.startswith("significant") and t.effect_size is not None and t.effect_size > 1


def test_no_pairs_and_no_difference() -> None:
    assert sign_flip_test([]).p_value is None and "no pairs" in sign_flip_test([]).note
    t = sign_flip_test([0.0, 0.0, 0.0])
    assert t.p_value == 1.0 and t.effect_size is None and t.mean_diff == 0.0


def test_monte_carlo_beyond_the_exact_limit() -> None:
    t = sign_flip_test([1.0] * 20, max_exact=16)
    assert not t.exact and t.p_value < 0.001
