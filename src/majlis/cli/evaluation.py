"""`majlis eval` and `majlis calibrate`: metrics, checks and the judge."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..errors import UserError

if TYPE_CHECKING:
    from ..model import ModelConfig

from .core import Home, app, fail, friendly, home_folder, open_cache, out, runs_folder


def _judge_options(
    model: str | None, base_url: str | None, api_key_env: str | None
) -> ModelConfig | None:
    from ..model import ModelConfig

    if model is None:
        return None
    return ModelConfig(
        model=model,
        base_url=base_url,
        api_key_env=api_key_env,
        temperature=0,
        seed=0,
        max_tokens=1500,
    )


JudgeModel = Annotated[
    str | None, typer.Option(help="Judge model (default: no judge, metrics and checks only).")
]
JudgeURL = Annotated[str | None, typer.Option(help="Judge endpoint (OpenAI-compatible).")]
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
    judge_cfg = _judge_options(judge_model, judge_base_url, judge_api_key_env)
    store = open_cache(runs_folder(home) / "cache.sqlite") if cache and judge_cfg else None

    async def go() -> list[Any]:
        judge = None
        if judge_cfg is not None:
            judge = judge_setup(judge_cfg, rubric or shipped_file(root, RUBRIC), root, store)
            await judge.client.backend.check()
        try:
            return [await evaluate_run(r, judge) for r in runs]
        finally:
            if judge is not None:
                await judge.client.backend.aclose()

    reports = asyncio.run(go())
    rows = [eval_row(r) for r in reports]
    _print_rows(rows, fmt)
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
        keep = [c for c in columns if c in brief or c.startswith(("findings.", "judge."))]
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
    rubric: Annotated[Path | None, typer.Option(help="Rubric file.")] = None,
    scenario: Annotated[
        str | None,
        typer.Option(help="Scenario the set was played in (default: the set's set.yaml)."),
    ] = None,
    home: Home = None,
) -> None:
    """Agreement of the rule-based checks (and a judge model) with the labelled calibration set."""
    from ..evals import judge_agreement, judge_setup, load_set, rule_agreement, set_scenario
    from ..scenario import load_scenario, shipped_file

    root = home_folder(home)
    folder = calibration_set or root / "tests" / "calibration"
    cases = load_set(folder)
    loaded = load_scenario(scenario or set_scenario(folder), root)
    results = rule_agreement(loaded, cases)
    judge_cfg = _judge_options(judge_model, judge_base_url, judge_api_key_env)
    if judge_cfg is not None:
        judge = judge_setup(judge_cfg, rubric or shipped_file(root, RUBRIC), root, None)
        results += asyncio.run(judge_agreement(loaded, cases, judge))
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
