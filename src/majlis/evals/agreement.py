"""Judges you can trust: do a judge's verdicts survive a change of presentation or of judge?

The same transcripts are judged under each of the rubric's presentations (judge.PRESENTATIONS)
and by each judge model. Two figures per rubric dimension say how far the verdicts hold:

- across presentations: each (transcript, party, judge) is a unit, each presentation a
  rater. Low agreement here is position bias: the judge's score moved with an order that
  means nothing.
- across judges: each (transcript, party, presentation) is a unit, each judge model a rater.

The figure is Krippendorff's alpha (the `krippendorff` package) at the interval level: the
scores are points on a numeric scale whose means the reports already take, any number of
raters may score a unit, and a verdict the judge failed to give is a missing value rather
than a dropped unit. Alpha is 1 for perfect agreement, 0 for agreement no better than
chance and below 0 for systematic disagreement; it is undefined (None) when every score
given is the same, as there is then no variation to agree on, and `same` (the share of
units scored identically) says what happened. Beside the figures, every (transcript,
party, dimension) whose score moves by more than `tolerance` of the dimension's range
between presentations is flagged, with its scores, so a reader can look at that verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .judge import PRESENTATIONS, PartyVerdict, Rubric

MEASURE = "krippendorff-alpha-interval"
TOLERANCE = 0.1  # a score may move by this share of its range between orders unflagged
Across = Literal["presentation", "judge"]
Judged = tuple[str, PartyVerdict]  # (transcript: run id or calibration case, verdict)


class DimensionAgreement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dimension: str
    units: int  # units scored by at least two raters: the ones agreement is measured on
    alpha: float | None  # Krippendorff's alpha; None when undefined (no variation, no units)
    same: float | None  # share of those units whose raters gave the same score


class OrderFlag(BaseModel):
    """A verdict that moved with the presentation by more than the tolerance allows."""

    model_config = ConfigDict(extra="forbid")
    transcript: str
    judge: str
    party: str
    dimension: str
    scores: dict[str, int]  # presentation -> score
    change: int  # highest minus lowest


class JudgeAgreement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    measure: str = MEASURE
    tolerance: float
    presentations: list[DimensionAgreement] = []  # empty when judged under one presentation
    judges: list[DimensionAgreement] = []  # empty with one judge model
    flags: list[OrderFlag] = []


def agreement(verdicts: Sequence[Judged], rubric: Rubric, tolerance: float) -> JudgeAgreement:
    """Agreement across presentations and across judges, and the verdicts the order moved."""
    return JudgeAgreement(
        tolerance=tolerance,
        presentations=reliability(verdicts, rubric, "presentation"),
        judges=reliability(verdicts, rubric, "judge"),
        flags=order_flags(verdicts, rubric, tolerance),
    )


def _rater(v: PartyVerdict, across: Across) -> str:
    return v.presentation if across == "presentation" else v.judge or ""


def _unit(t: str, v: PartyVerdict, across: Across) -> tuple[str, str, str]:
    other = (v.judge or "") if across == "presentation" else v.presentation
    return (t, v.party, other)


def reliability(
    verdicts: Sequence[Judged], rubric: Rubric, across: Across
) -> list[DimensionAgreement]:
    """Per dimension, how well the raters (presentations or judges) agree; [] with one rater."""
    raters = sorted({_rater(v, across) for _, v in verdicts}, key=_rater_order)
    if len(raters) < 2:
        return []
    units = sorted({_unit(t, v, across) for t, v in verdicts})
    out = []
    for d in rubric.dimensions:
        scores: dict[tuple[tuple[str, str, str], str], int] = {
            (_unit(t, v, across), _rater(v, across)): v.scores[d.id]
            for t, v in verdicts
            if d.id in v.scores
        }
        rows = [[scores.get((u, r)) for u in units] for r in raters]
        out.append(_agreement_of(d.id, rows))
    return out


def _rater_order(name: str) -> tuple[int, str]:
    """Presentations in their own order, judges by name."""
    return (PRESENTATIONS.index(name) if name in PRESENTATIONS else len(PRESENTATIONS), name)


def _agreement_of(dimension: str, rows: list[list[int | None]]) -> DimensionAgreement:
    """Alpha and the share of identical scores over the units at least two raters scored."""
    columns = [[x for x in col if x is not None] for col in zip(*rows, strict=True)]
    pairable = [c for c in columns if len(c) >= 2]
    same = sum(len(set(c)) == 1 for c in pairable) / len(pairable) if pairable else None
    return DimensionAgreement(
        dimension=dimension, units=len(pairable), alpha=alpha(rows), same=same
    )


def alpha(rows: list[list[int | None]]) -> float | None:
    """Krippendorff's alpha (interval) of a raters x units table, None for a missing score;
    None when it is undefined: fewer than two values to compare, or every value the same."""
    values = {x for row in rows for x in row if x is not None}
    if len(values) < 2:
        return None
    import krippendorff  # numpy behind it: loaded only when agreement is measured

    data = [[math.nan if x is None else float(x) for x in row] for row in rows]
    try:
        a = float(krippendorff.alpha(reliability_data=data, level_of_measurement="interval"))
    except (ValueError, ZeroDivisionError):  # no unit scored twice: nothing to compare
        return None
    return None if math.isnan(a) else a


def order_flags(verdicts: Sequence[Judged], rubric: Rubric, tolerance: float) -> list[OrderFlag]:
    """Each (transcript, judge, party, dimension) whose scores under the presentations differ
    by more than `tolerance` of the dimension's range."""
    by_unit: dict[tuple[str, str, str], dict[str, PartyVerdict]] = {}
    for t, v in verdicts:
        by_unit.setdefault((t, v.judge or "", v.party), {})[v.presentation] = v
    flags = []
    for (t, judge, party), shown in by_unit.items():
        for d in rubric.dimensions:
            scores = {
                p: shown[p].scores[d.id]
                for p in sorted(shown, key=_rater_order)
                if d.id in shown[p].scores
            }
            if len(scores) < 2:
                continue
            change = max(scores.values()) - min(scores.values())
            if change > tolerance * (d.max - d.min):
                flags.append(
                    OrderFlag(
                        transcript=t,
                        judge=judge,
                        party=party,
                        dimension=d.id,
                        scores=scores,
                        change=change,
                    )
                )
    return flags
