"""`majlis eval` and `majlis calibrate`: metrics, checks and the judge."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..errors import UserError

if TYPE_CHECKING:
    from ..evals import JudgeAgreement, JudgeSetup
    from ..model import ModelConfig

from .core import Home, app, fail, friendly, home_folder, open_cache, out, runs_folder


def _judge_options(
    models: list[str] | None,
    base_url: str | None,
    api_key_env: str | None,
    judges_file: Path | None = None,
) -> list[ModelConfig]:
    """The panel: the judges file's (each at its own endpoint), then one per --judge-model
    (all at --judge-base-url); [] for no judge."""
    from ..files import parse_file
    from ..model import JUDGE_SETTINGS, JudgesFile, ModelConfig

    panel = [] if judges_file is None else parse_file(judges_file, JudgesFile).configs()
    panel += [
        ModelConfig(model=model, base_url=base_url, api_key_env=api_key_env, **JUDGE_SETTINGS)
        for model in models or []
    ]
    return panel


JudgeModel = Annotated[
    list[str] | None,
    typer.Option(
        help="Judge model (default: no judge, metrics and checks only). Give it again for a "
        "panel: each judges every transcript, and their agreement is measured."
    ),
]
JudgeOrders = Annotated[
    int,
    typer.Option(
        help="Presentations of the rubric each judge scores under: 1, as written; 2, also "
        "reversed (dimensions and scale anchors in the opposite order), to measure and flag "
        "position bias."
    ),
]
OrderTolerance = Annotated[
    float,
    typer.Option(
        help="Flag a verdict whose score moves between presentations by more than this "
        "share of its scale's range.",
    ),
]
JudgeURL = Annotated[str | None, typer.Option(help="Judge endpoint (OpenAI-compatible).")]
JudgesOption = Annotated[
    Path | None,
    typer.Option(
        "--judges",
        help="Judges file: a panel whose judges each name their own endpoint and key "
        "(schemas/judges.schema.json); with --judge-model too, both join the panel.",
    ),
]
JudgeKey = Annotated[
    str | None, typer.Option(help="Environment variable with the judge's API key.")
]


RUBRIC = "evals/rubrics/negotiation.yaml"  # the judge's rubric unless --rubric names one
SHOWN_SKIPPED = 5  # damaged lines eval names on the terminal; eval.json lists them all


@app.command("eval")
@friendly
def eval_(
    path: Annotated[Path, typer.Argument(help="A run folder, or a folder of runs (or a sweep).")],
    judge_model: JudgeModel = None,
    judge_base_url: JudgeURL = None,
    judge_api_key_env: JudgeKey = None,
    judges: JudgesOption = None,
    judge_orders: JudgeOrders = 1,
    order_tolerance: OrderTolerance = 0.1,
    rubric: Annotated[
        Path | None, typer.Option(help="Rubric file (default: evals/rubrics/negotiation.yaml).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv, json or md.")] = "table",
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="Replay cached judge replies.")
    ] = True,
    home: Home = None,
) -> None:
    """Negotiation metrics, rule-based checks and LLM-judge rubrics; writes eval.json per run."""
    from ..evals import eval_row, evaluate_run, find_runs, judge_setup
    from ..scenario import shipped_file

    if fmt not in ("table", "csv", "json", "md"):
        raise UserError(f"--format must be table, csv, json or md, not {fmt!r}")
    runs = find_runs(path)
    root = home_folder(home)
    judge_cfg = _judge_options(judge_model, judge_base_url, judge_api_key_env, judges)
    store = open_cache(runs_folder(home) / "cache.sqlite") if cache and judge_cfg else None

    async def go() -> tuple[list[Any], JudgeSetup | None]:
        judge = None
        if judge_cfg:
            judge_file = rubric or shipped_file(root, RUBRIC)
            judge = judge_setup(judge_cfg, judge_file, root, store, judge_orders, order_tolerance)
        try:  # a judge whose endpoint is dead is closed too: its error stays one line
            if judge is not None:
                await judge.check()
            return [await evaluate_run(r, judge) for r in runs], judge
        finally:
            if judge is not None:
                await judge.aclose()

    reports, judge = asyncio.run(go())
    rows = [eval_row(r) for r in reports]
    _print_rows(rows, fmt)
    if fmt == "table" and judge is not None and (judge.orders > 1 or len(judge.clients) > 1):
        from ..evals import agreement

        judged = [(r.run_id, v) for r in reports for v in r.verdicts]
        pooled = agreement(judged, judge.rubric, judge.tolerance)
        _print_agreement(pooled, f"{len(reports)} run(s)", ": agreement.flags in each eval.json")
    for r in reports:
        if r.truncated or r.incomplete:
            fail(
                f"majlis: note: {r.run_id} is {'cut' if r.truncated else 'unfinished'}: evaluated up to event "
                f"{r.events - 1}"
            )
        for line in r.skipped[:SHOWN_SKIPPED]:
            fail(f"majlis: warning: left out of the evaluation: {line}")
        if len(r.skipped) > SHOWN_SKIPPED:
            more = len(r.skipped) - SHOWN_SKIPPED
            fail(
                f"majlis: warning: {r.run_id}: {more} more damaged lines left out (in its eval.json)"
            )


def _print_rows(rows: list[dict[str, Any]], fmt: str) -> None:
    import csv
    import io
    import json

    columns = list(dict.fromkeys(k for row in rows for k in row))
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        typer.echo(buf.getvalue(), nl=False)
    elif fmt == "md":
        typer.echo("| " + " | ".join(columns) + " |")
        typer.echo("|" + " --- |" * len(columns))
        for row in rows:
            typer.echo(
                "| "
                + " | ".join("" if row.get(c) is None else str(row.get(c)) for c in columns)
                + " |"
            )
    else:
        brief = [
            "run_id",
            "kind",
            "branch_label",  # the table shows the branch in the scenario's words
            "deal_round",
            "welfare_sum",
            "nash",
            "min_margin",
            "pareto_efficient",
            "failed_turns",
            "truncated",
            "skipped",
        ]
        per_dimension = ("judge.order_alpha.", "judge.judges_alpha.")  # in csv, json, md
        keep = [
            c
            for c in columns
            if c in brief
            or (c.startswith(("findings.", "judge.")) and not c.startswith(per_dimension))
        ]
        heads = {"branch_label": "branch"}
        table = Table(
            *(heads.get(c, c).replace("findings.", "").replace("judge.", "j:") for c in keep)
        )
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in keep))
        out.print(table)
        out.print(
            "[dim]every column: --format csv|json|md; per-run details in each run's eval.json[/]"
        )


@app.command()
@friendly
def calibrate(
    calibration_set: Annotated[
        Path | None, typer.Option("--set", help="Calibration folder.")
    ] = None,
    judge_model: JudgeModel = None,
    judge_base_url: JudgeURL = None,
    judge_api_key_env: JudgeKey = None,
    judges: JudgesOption = None,
    judge_orders: JudgeOrders = 1,
    order_tolerance: OrderTolerance = 0.1,
    rubric: Annotated[Path | None, typer.Option(help="Rubric file.")] = None,
    scenario: Annotated[
        str | None,
        typer.Option(help="Scenario the set was played in (default: the set's set.yaml)."),
    ] = None,
    home: Home = None,
) -> None:
    """Agreement of the rule-based checks (and judge models) with the labelled calibration
    set; with two presentations or judges, how far the judges' verdicts agree."""
    from ..evals import (
        JudgeCalibration,
        judge_agreement,
        judge_setup,
        load_set,
        rule_agreement,
        set_scenario,
    )
    from ..scenario import load_scenario, shipped_file

    root = home_folder(home)
    folder = calibration_set or root / "tests" / "calibration"
    cases = load_set(folder)
    loaded = load_scenario(scenario or set_scenario(folder), root)
    results = rule_agreement(loaded, cases)
    judge_cfg = _judge_options(judge_model, judge_base_url, judge_api_key_env, judges)
    reliability = None
    if judge_cfg:
        judge_file = rubric or shipped_file(root, RUBRIC)
        judge = judge_setup(judge_cfg, judge_file, root, None, judge_orders, order_tolerance)

        async def go() -> JudgeCalibration:
            try:  # a dead endpoint is said at once, as eval says it
                await judge.check()
                return await judge_agreement(loaded, cases, judge)
            finally:
                await judge.aclose()

        calibration = asyncio.run(go())
        results += calibration.checks
        reliability = calibration.reliability
    table = Table(
        "checker", "property", "precision", "recall", "agreement", "missed", "false alarms"
    )
    for a in results:
        flags = a.caught + len(a.false_alarms)
        table.add_row(
            a.checker,
            a.kind,
            "-" if a.precision is None else f"{a.caught}/{flags} ({a.precision:.0%})",
            "-" if a.recall is None else f"{a.caught}/{a.planted} ({a.recall:.0%})",
            f"{a.agree}/{a.total} ({a.rate:.0%})",
            ", ".join(a.missed) or "-",
            ", ".join(a.false_alarms) or "-",
        )
    out.print(f"{len(cases)} labelled transcripts; one decision per transcript, party and property")
    out.print(table)
    if reliability is not None:
        _print_agreement(reliability, f"{len(cases)} labelled transcripts")


SHOWN_FLAGS = 10  # verdicts the order moved, named on the terminal (eval.json has them all)


def _print_agreement(a: JudgeAgreement, over: str, listed: str = "") -> None:
    """Per dimension: alpha and the share of identical scores across presentations and
    across judges, and how many verdicts the order moved; then the first of those."""
    figures = {"orders": a.presentations, "judges": a.judges}
    shown = {name: {f.dimension: f for f in fs} for name, fs in figures.items() if fs}
    heads = [f"{name} {what}" for name in shown for what in ("α", "same")]
    table = Table("dimension", *heads, *(["flags"] if a.presentations else []))
    for d in dict.fromkeys(dim for by in shown.values() for dim in by):
        cells = [d]
        for by in shown.values():
            f = by.get(d)
            cells.append("-" if f is None or f.alpha is None else f"{f.alpha:.2f}")
            cells.append("-" if f is None or f.same is None else f"{f.same:.0%} of {f.units}")
        if a.presentations:
            cells.append(str(sum(flag.dimension == d for flag in a.flags)))
        table.add_row(*cells)
    out.print(
        f"Judge agreement over {over}: Krippendorff's alpha (interval; 1 perfect, 0 chance, "
        "- where every score was the same), and the share of verdicts scored the same"
    )
    out.print(table)
    if not a.presentations:
        return
    share = f"{a.tolerance:.0%} of its range"
    out.print(f"{len(a.flags)} verdict(s) moved with the order by more than {share}")
    for flag in a.flags[:SHOWN_FLAGS]:
        moved = " -> ".join(f"{s} ({p})" for p, s in flag.scores.items())
        out.print(f"  {flag.transcript} {flag.party} {flag.dimension}, {flag.judge}: {moved}")
    if len(a.flags) > SHOWN_FLAGS:
        out.print(f"  and {len(a.flags) - SHOWN_FLAGS} more{listed}")
