"""Compare variants (or models) across a sweep: intervals, paired tests, a report.

Runs are paired on everything but the compared factor (same seed, same model set-up), so
a difference is measured within a pair rather than between noisy groups. A cross-play
sweep (a population in its experiment) also gets its members rated (`crossplay.py`).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import UserError
from ..evals import compute_metrics, summary_row
from ..run import RunDir, load_snapshot
from ..scenario import in_words
from .crossplay import (
    CrossPlay,
    cross_play,
    csv_rows as cross_play_rows,
    markdown as cross_play_markdown,
    seat_results,
    to_dict as cross_play_dict,
)
from .seating import read_seating
from .stats import Interval, PairedTest, bootstrap_ci, sign_flip_test

By = Literal["variant", "model"]
DEFAULT_METRICS = ["deal", "welfare_sum", "nash", "min_margin", "pareto_distance"]


@dataclass
class RunRow:
    run_id: str
    variant: str
    model: str
    seed: int
    values: dict[str, float | None]
    path: Path
    branch: str = ""  # the id of the branch the run's outcome is filed under
    branches: dict[str, str] = field(default_factory=dict)  # its scenario's: id -> label
    seats: dict[str, str] = field(default_factory=dict)  # cross-play: party -> member
    results: dict[str, float] = field(default_factory=dict)  # party -> normalised margin


@dataclass
class MetricResult:
    metric: str
    groups: dict[str, Interval]
    paired: dict[str, PairedTest]  # "variant vs baseline" -> test
    diffs: dict[str, list[float]]


@dataclass
class Comparison:
    by: By
    baseline: str
    rows: list[RunRow]
    results: list[MetricResult] = field(default_factory=list)
    cross_play: CrossPlay | None = None  # a population's ratings, for a cross-play sweep


def parse_run_id(run_id: str) -> tuple[str, str, int] | None:
    """A sweep's run ids read `variant--model--sN`; in a cross-play sweep the middle part
    is the seating, each seat's member in the scenario's party order: `firm.soft.firm`."""
    parts = run_id.split("--")
    if len(parts) != 3 or not parts[2].startswith("s") or not parts[2][1:].isdigit():
        return None
    return parts[0], parts[1], int(parts[2][1:])


def population(sweep_dir: Path) -> list[str]:
    """The member names of a cross-play sweep, from the experiment its sweep recorded; none
    for a sweep of model set-ups (or one whose record is missing or unreadable)."""
    try:
        recorded = json.loads((sweep_dir / "experiment.json").read_text(encoding="utf-8"))
        return [m["name"] for m in recorded.get("population") or []]
    except (OSError, ValueError, TypeError, KeyError):
        return []


def collect(sweep_dir: Path) -> list[RunRow]:
    runs = sweep_dir / "runs"
    if not runs.is_dir():
        raise UserError(f"{sweep_dir} is not a sweep folder (no runs/ inside)")
    members = population(sweep_dir)
    rows = []
    for path in sorted(p for p in runs.iterdir() if p.is_dir()):
        cell = parse_run_id(path.name)
        if cell is None or not (path / "outcome.json").exists():
            continue  # not a sweep cell, or not finished
        rd = RunDir(path)
        events, _cut = rd.read_events()  # a damaged line refuses the comparison, naming it
        loaded = load_snapshot(rd)
        metrics = compute_metrics(loaded, events)
        summary = summary_row(metrics)
        values = {k: float(v) if isinstance(v, int | float) else None for k, v in summary.items()}
        labels = {b.id: b.label for b in loaded.scenario.branches}
        row = RunRow(path.name, cell[0], cell[1], cell[2], values, path, metrics.branch, labels)
        parties = list(loaded.scenario.parties)
        seating = read_seating(cell[1], len(parties), members) if members else None
        if seating is not None:
            row.seats = dict(zip(parties, seating, strict=True))
            row.results = seat_results(loaded, metrics)
        rows.append(row)
    if not rows:
        raise UserError(f"{sweep_dir} has no finished runs to compare")
    return rows


def compare(
    rows: list[RunRow],
    by: By = "variant",
    metrics: list[str] | None = None,
    baseline: str | None = None,
) -> Comparison:
    key = (lambda r: r.variant) if by == "variant" else (lambda r: r.model)
    other = (lambda r: (r.model, r.seed)) if by == "variant" else (lambda r: (r.variant, r.seed))
    groups = sorted({key(r) for r in rows})
    base = baseline or ("baseline" if "baseline" in groups else groups[0])
    if base not in groups:
        raise UserError(f"no runs with {by} {base!r} (have: {', '.join(groups)})")
    names = metrics or DEFAULT_METRICS
    known = set().union(*(r.values for r in rows))
    for m in names:
        if m not in known:
            raise UserError(f"unknown metric {m!r} (known: {', '.join(sorted(known))})")
    result = Comparison(by, base, rows)
    for m in names:
        per_group = {
            g: [r.values[m] for r in rows if key(r) == g and r.values[m] is not None]
            for g in groups
        }
        intervals = {g: bootstrap_ci(v) for g, v in per_group.items()}
        paired, diffs = {}, {}
        base_by_pair = {other(r): r.values[m] for r in rows if key(r) == base}
        for g in groups:
            if g == base:
                continue
            d = [
                r.values[m] - base_by_pair[other(r)]
                for r in rows
                if key(r) == g
                and r.values[m] is not None
                and base_by_pair.get(other(r)) is not None
            ]
            label = f"{g} vs {base}"
            diffs[label] = d
            paired[label] = sign_flip_test(d)
        result.results.append(MetricResult(m, intervals, paired, diffs))
    result.cross_play = cross_play(rows)
    return result


def branch_counts(c: Comparison) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The branches the runs' scenarios define (id -> label, in their order), and per group
    how many runs reached each: counted by id, a branch no run reached at 0."""
    labels: dict[str, str] = {}
    for r in c.rows:
        labels |= {b: label for b, label in r.branches.items() if b not in labels}
    for r in c.rows:  # a run filed under a branch its scenario does not name (hand-edited)
        labels.setdefault(r.branch, in_words(r.branch))
    groups = group_runs(c)
    counts = {g: dict.fromkeys(labels, 0) for g in sorted(groups)}
    for g, rows in groups.items():
        for r in rows:
            counts[g][r.branch] += 1
    return labels, counts


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def to_csv(c: Comparison) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "metric",
            "group",
            "n",
            "mean",
            "ci_low",
            "ci_high",
            "vs",
            "pairs",
            "mean_diff",
            "p_value",
            "effect_size",
            "note",
        ]
    )
    for r in c.results:
        for g, iv in r.groups.items():
            t = r.paired.get(f"{g} vs {c.baseline}")
            w.writerow(
                [
                    r.metric,
                    g,
                    iv.n,
                    iv.mean,
                    iv.low,
                    iv.high,
                    c.baseline if t else "",
                    t.n if t else "",
                    t.mean_diff if t else "",
                    t.p_value if t else "",
                    t.effect_size if t else "",
                    t.note if t else "",
                ]
            )
    return buf.getvalue()


def cross_play_csv(cp: CrossPlay) -> str:
    """The leaderboard and the seat-by-member matrix in one long table."""
    buf = io.StringIO()
    csv.writer(buf).writerows(cross_play_rows(cp))
    return buf.getvalue()


def runs_csv(c: Comparison) -> str:
    """One row per run: its cell, its branch (id and words), then every metric."""
    metrics = sorted(set().union(*(r.values for r in c.rows)) - {"branch", "branch_label"})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["run_id", "variant", "model", "seed", "branch", "branch_label", *metrics])
    for r in c.rows:
        label = r.branches.get(r.branch, in_words(r.branch))
        cell = [r.run_id, r.variant, r.model, r.seed, r.branch, label]
        w.writerow([*cell, *(r.values.get(m) for m in metrics)])
    return buf.getvalue()


def to_markdown(c: Comparison) -> str:
    lines = [
        f"# Comparison by {c.by} (baseline: {c.baseline})",
        "",
        f"{len(c.rows)} finished runs. Intervals are 95% bootstrap intervals of the mean; tests are exact "
        "paired sign-flip tests on runs that share a seed and the other factors.",
        "",
    ]
    for r in c.results:
        lines += [
            f"## {r.metric}",
            "",
            "| group | n | mean | 95% CI | diff vs baseline | p | effect size | note |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for g, iv in r.groups.items():
            t = r.paired.get(f"{g} vs {c.baseline}")
            ci = "-" if iv.low is None else f"[{_fmt(iv.low)}, {_fmt(iv.high)}]"
            lines.append(
                f"| {g} | {iv.n} | {_fmt(iv.mean)} | {ci} | {_fmt(t.mean_diff) if t else '-'} | "
                f"{_fmt(t.p_value) if t else '-'} | {_fmt(t.effect_size) if t else '-'} | "
                f"{t.note if t else 'baseline'} |"
            )
        lines.append("")
    labels, counts = branch_counts(c)
    lines += ["## Outcome branches", "", "| group | " + " | ".join(labels.values()) + " |"]
    lines.append("| --- |" + " --- |" * len(labels))
    lines += [
        f"| {g} | " + " | ".join(str(n) for n in by.values()) + " |" for g, by in counts.items()
    ]
    if c.cross_play is not None:
        lines += ["", *cross_play_markdown(c.cross_play)]
    return "\n".join(lines) + "\n"


def to_json(c: Comparison) -> str:
    return json.dumps(
        {
            "by": c.by,
            "baseline": c.baseline,
            "runs": [r.run_id for r in c.rows],
            "results": [
                {
                    "metric": r.metric,
                    "groups": {g: iv.__dict__ for g, iv in r.groups.items()},
                    "paired": {k: t.__dict__ for k, t in r.paired.items()},
                }
                for r in c.results
            ],
            "cross_play": None if c.cross_play is None else cross_play_dict(c.cross_play),
        },
        indent=2,
    )


def group_runs(c: Comparison) -> dict[str, list[RunRow]]:
    out: dict[str, list[RunRow]] = defaultdict(list)
    for r in c.rows:
        out[r.variant if c.by == "variant" else r.model].append(r)
    return out
