"""The command line: `majlis run`, `resume`, `scenarios`, `agents`, `validate`, `schema`."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import openai
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import MajlisError, UserError, kept
from ..files import parse_file
from ..model.activity import Activity
from ..model.budget import Budget, Spending, load_prices
from ..model.client import EMBEDDED_ROUNDS, ModelConfig, ModelsFile, error_line
from ..run.human import Terminal
from ..scenario.load import data_root, list_scenarios, load_scenario

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="majlis: multi-agent LLM negotiation sessions.",
)
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

Home = Annotated[
    Path | None, typer.Option("--home", help="Folder holding agents/, prompts/, scenarios/.")
]


def fail(message: str) -> None:
    """One plain line on stderr, never wrapped, so scripts and people read it the same way."""
    typer.echo(" ".join(message.split()), err=True)


def _kept(exc: BaseException) -> str:
    """Where a stopped run is kept, to end its one line with; empty if none was."""
    note = kept(exc)
    return f"; {note}" if note else ""


def friendly(fn: F) -> F:
    """Turn known errors into one line on stderr: exit 2 for the user's errors, 1 otherwise."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            fail(f"majlis: error: {exc}")
            raise typer.Exit(2) from None
        except openai.AuthenticationError as exc:
            err.print(
                f"majlis: error: the endpoint refused the API key: {escape(str(exc))}",
                highlight=False,
            )
            raise typer.Exit(2) from None
        except (MajlisError, openai.APIError) as exc:
            fail(f"majlis: stopped: {error_line(exc)}{_kept(exc)}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt as exc:
            fail(f"majlis: interrupted{_kept(exc)}")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@friendly
def run(
    scenario: Annotated[
        str, typer.Option(help="Scenario name (scenarios/NAME) or path.")
    ] = "cornered-in-iraq",
    rounds: Annotated[
        int | None,
        typer.Option(
            help="Override the scenario's maximum rounds. Default: the scenario's, or "
            f"{EMBEDDED_ROUNDS} when every party plays the embedded model."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed passed to every model call.")] = None,
    model: Annotated[
        str, typer.Option(help="embedded, scripted[:firm|:soft], or a model name at --base-url.")
    ] = "embedded",
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1.")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the API key.")
    ] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    max_tokens: Annotated[int, typer.Option(help="Maximum tokens per reply.")] = 700,
    timeout: Annotated[float, typer.Option(help="Seconds before a model call times out.")] = 120,
    structured: Annotated[
        str, typer.Option(help="auto, json_schema, json_object or prompt.")
    ] = "auto",
    models: Annotated[Path | None, typer.Option(help="YAML file with per-party models.")] = None,
    variant: Annotated[
        str | None, typer.Option(help="Prompt variant under prompts/variants/.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Runs folder (default: runs/).")
    ] = None,
    show_private: Annotated[
        bool, typer.Option(help="Show private reasoning in the live view.")
    ] = False,
    human: Annotated[
        list[str] | None,
        typer.Option(help="Party a person plays from this terminal (trainee play)."),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            help="full record, or window:N (last N rounds plus a rolling summary). Default: "
            "full, or window:2 when every party plays the embedded model (its context window "
            "is 8192 tokens, which the full record outgrows by round 4)."
        ),
    ] = None,
    max_calls: Annotated[
        int | None, typer.Option(help="Stop cleanly after this many model calls.")
    ] = None,
    max_tokens_total: Annotated[
        int | None, typer.Option("--max-total-tokens", help="Stop cleanly after this many tokens.")
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(help="Stop cleanly at this estimated cost (USD, evals/prices.yaml)."),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No live view; print only the run folder.")] = False,
    cache: Annotated[
        bool | None,
        typer.Option(
            "--cache/--no-cache", help="Replay cached replies (default: on when --seed is set)."
        ),
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            help="Prompt profile: full, compact (for small local models: short brief, "
            "score table, what happened since the party's last move, plain-sentence "
            "replies), or auto (compact on the embedded model, full elsewhere)."
        ),
    ] = "auto",
    narrate: Annotated[
        list[str] | None,
        typer.Option(
            help="Party (or 'all') whose moves the scripted negotiator decides while the "
            "model writes its words; repeat for more parties."
        ),
    ] = None,
    home: Home = None,
) -> None:
    """Run a whole negotiation session and record it under runs/."""
    from ..run.session import RunOptions, party_configs, run_session

    try:
        default = ModelConfig(
            model=model,
            base_url=base_url,
            api_key_env=api_key_env,
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=timeout,
            structured=structured,
            profile=profile,
        )  # type: ignore[arg-type]
    except ValidationError as exc:
        e = exc.errors()[0]
        raise UserError(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}") from None
    party_models: dict[str, ModelConfig] = {}
    if models is not None:
        spec = parse_file(models, ModelsFile)
        default = spec.default or default
        party_models = spec.parties
    if seed is not None and not 0 <= seed < 2**63:
        raise UserError(f"--seed must be between 0 and {2**63 - 1}, not {seed}")
    runs_root = out_dir or data_root(home) / "runs"
    use_cache = seed is not None if cache is None else cache
    store = _open_cache(runs_root / "cache.sqlite") if use_cache else None
    opts = RunOptions(
        scenario=scenario,
        rounds=rounds,
        seed=seed,
        model=default,
        party_models=party_models,
        variant=variant,
        runs_root=runs_root,
        home=home,
        command=sys.argv,
        cache=store,
        humans=human or [],
        context=context or "full",
        narrate=narrate or [],
        spending=Spending(
            _budget(max_calls, max_tokens_total, max_cost),
            load_prices(data_root(home) / "evals" / "prices.yaml"),
        ),
    )
    # every party on the embedded model (after the variant's and --human's say): a bounded
    # context, should the full profile be asked for, and a short session that shows the arc
    whole = load_scenario(scenario, data_root(home))
    configs = party_configs(opts, list(whole.scenario.parties), data_root(home))
    all_embedded = all(c.is_embedded for c in configs.values())
    full = whole.scenario.deal_rule.max_rounds
    if context is None and all_embedded:
        opts.context = "window:2"
    if rounds is None and all_embedded:
        opts.rounds = min(EMBEDDED_ROUNDS, full)
    ask = Terminal() if human else None
    if quiet:
        result = asyncio.run(run_session(opts, ask_human=ask))
    else:
        from ..run.session import with_rounds
        from .live import LiveView

        loaded = with_rounds(whole, opts.rounds)
        if all_embedded:
            err.print(
                "[dim]Using the embedded SmolLM2-135M model: a tiny model for trying majlis "
                f"offline, {loaded.scenario.deal_rule.max_rounds} of the scenario's {full} rounds "
                "(--rounds N for more). Point --base-url/--model at a real one for real "
                "negotiations.[/]"
            )
        opts.activity = Activity()
        with LiveView(
            loaded, out, show_private, progress=not human, activity=opts.activity
        ) as view:
            result = asyncio.run(run_session(opts, sink=view, ask_human=ask))
    _summary(result)
    if store is not None:
        out.print(str(store.stats))


@app.command()
@friendly
def resume(
    run_dir: Annotated[Path, typer.Argument(help="The run folder, or its id under runs/.")],
    quiet: Annotated[bool, typer.Option(help="No live view.")] = False,
    home: Home = None,
) -> None:
    """Finish an interrupted run from its last checkpoint (a person's party asks here again)."""
    from ..run.folder import RunDir
    from ..run.session import load_snapshot, resume_session
    from .live import LiveView

    path = run_dir if run_dir.exists() else data_root(home) / "runs" / str(run_dir)
    rd = RunDir.open(path)
    people = [p for p, m in rd.read_manifest().parties.items() if m.played_by == "human"]
    ask = Terminal() if people else None
    if quiet:
        result = asyncio.run(resume_session(path, ask_human=ask))
    else:
        activity = Activity()
        with LiveView(load_snapshot(rd), out, progress=not people, activity=activity) as view:
            result = asyncio.run(resume_session(path, sink=view, ask_human=ask, activity=activity))
    _summary(result)


def _open_cache(path: Path) -> Any:
    from ..model.cache import ResponseCache

    try:
        return ResponseCache(path)
    except (OSError, sqlite3.Error) as exc:
        raise UserError(f"cannot open the response cache {path}: {exc}") from None


def _budget(calls: int | None, tokens: int | None, cost: float | None) -> Budget:
    try:
        return Budget(max_calls=calls, max_tokens=tokens, max_cost=cost)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise UserError(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}") from None


def _summary(result: Any) -> None:
    o = result.outcome
    table = Table(title=f"{o.kind} ({o.branch.replace('_', ' ')}) after {o.rounds_used} round(s)")
    for col in ("party", "score", "walk-away", "margin", "last vote"):
        table.add_column(col)
    for pid, r in o.parties.items():
        colour = "green" if r.margin >= 0 else "red"
        table.add_row(
            pid, str(r.score), str(r.threshold), f"[{colour}]{r.margin:+d}[/]", r.vote or "-"
        )
    out.print(table)
    if o.stopped:
        out.print(f"[yellow]stopped early: {escape(o.stopped)}[/]")
    out.print(
        f"calls {o.calls}, tokens {o.usage.prompt_tokens}+{o.usage.completion_tokens}, "
        f"failed turns {o.failed_turns}"
    )
    out.print(f"run folder: {result.run_dir.path}")


@app.command()
@friendly
def scenarios(home: Home = None) -> None:
    """List the scenarios."""
    root = data_root(home)
    table = Table("name", "title", "parties", "issues", "rounds")
    broken: list[str] = []
    for name in list_scenarios(root):
        try:
            s = load_scenario(name, root).scenario
        except UserError as exc:  # the good ones are listed all the same; this one is named
            broken.append(str(exc))
            table.add_row(name, "[red]broken: see below[/]", "", "", "")
            continue
        table.add_row(
            name, s.title, ", ".join(s.parties), str(len(s.agenda)), str(s.deal_rule.max_rounds)
        )
    out.print(table)
    for line in broken:
        fail(f"majlis: error: {line}")
    if broken:
        raise typer.Exit(2)


@app.command()
@friendly
def agents(
    scenario: Annotated[
        str, typer.Option(help="Scenario whose parties to list.")
    ] = "cornered-in-iraq",
    home: Home = None,
) -> None:
    """List the stakeholder cards of a scenario."""
    loaded = load_scenario(scenario, data_root(home))
    table = Table("id", "name", "role", "veto", "persona")
    for pid in loaded.scenario.parties:
        c = loaded.cards[pid]
        table.add_row(
            pid,
            f"[{c.color}]{escape(c.name)}[/]",
            escape(c.role),
            "yes" if c.veto else "",
            c.persona,
        )
    out.print(table)


@app.command()
@friendly
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Scenario, agent card or template files; default: all."),
    ] = None,
    home: Home = None,
) -> None:
    """Check scenario, agent and prompt files; one line per problem, exit 2 if any."""
    from .validate import validate_paths

    root = data_root(home)
    problems, checked, zones = validate_paths(root, paths or [])
    for p in problems:
        fail(f"majlis: error: {p}")
    for zone in zones:
        typer.echo(zone.line())
        if not zone.passing:
            fail(
                f"majlis: warning: {zone.scenario}: no package clears every veto party and "
                "enough others at their walk-away points: no deal is possible"
            )
    if problems:
        raise typer.Exit(2)
    out.print(f"ok: {checked} file(s) valid")


@app.command()
@friendly
def schema(
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the JSON schemas.")] = Path(
        "schemas"
    ),
) -> None:
    """Export JSON schemas of every file format, for editors."""
    from .schemas import export

    for path in export(out_dir):
        out.print(f"wrote {path}")


@app.command()
@friendly
def variants(home: Home = None) -> None:
    """List the prompt variants under prompts/variants/."""
    from ..scenario.variants import list_variants, load_variant, template_files

    root = data_root(home)
    table = Table("name", "description", "templates", "model settings")
    for name in list_variants(root):
        v = load_variant(root, name)
        models = "; ".join(f"{p}: {cfg}" for p, cfg in v.models.items())
        table.add_row(
            name, escape(v.description), ", ".join(template_files(root, name)), escape(models)
        )
    out.print(table)


@app.command()
@friendly
def sweep(
    experiment: Annotated[Path, typer.Argument(help="Experiment file (YAML).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Sweep folder (default: runs/sweeps/NAME).")
    ] = None,
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="Replay cached replies.")
    ] = True,
    cache_file: Annotated[
        Path | None, typer.Option(help="Cache file (default: runs/cache.sqlite).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes to spread the sessions over (default: the experiment's `workers`, "
            "1). More help only when the sweep is CPU-bound: many sessions, a fast endpoint.",
        ),
    ] = None,
    home: Home = None,
) -> None:
    """Run variants x models x seeds concurrently; run it again to resume."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from ..compare.sweep import cells, load_experiment, preflight, run_sweep, sweep_configs
    from ..model.usage import Usage

    root = data_root(home)
    exp = load_experiment(experiment, root)
    if workers is not None:
        exp = exp.model_copy(update={"workers": workers})
    asyncio.run(
        preflight(sweep_configs(exp, root))
    )  # a dead endpoint is one line, before any progress bar
    folder = out_dir or root / "runs" / "sweeps" / exp.name
    todo = cells(exp)
    models = {c.run_id: c.setup for c in todo}
    totals = {"prompt": 0, "completion": 0, "cost": 0.0}
    prices = exp.price_table()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sessions"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[tokens]} tokens, ~${task.fields[cost]:.4f}"),
    )
    with Progress(*columns, console=out) as bar:
        task = bar.add_task(exp.name, total=len(todo), tokens=0, cost=0.0)

        def progress(what: str, info: dict[str, Any]) -> None:
            if what == "usage":
                setup = models[info["run_id"]]
                model = setup.parties.get(info["party"], setup.default).model
                totals["prompt"] += info["prompt_tokens"]
                totals["completion"] += info["completion_tokens"]
                usage = Usage(
                    prompt_tokens=info["prompt_tokens"], completion_tokens=info["completion_tokens"]
                )
                totals["cost"] += prices.cost(model, usage)
                bar.update(
                    task, tokens=totals["prompt"] + totals["completion"], cost=totals["cost"]
                )
            elif what in ("finished", "skipped", "failed"):
                bar.advance(task)
                if what == "failed":
                    bar.console.print(f"[red]failed[/] {info['run_id']}: {escape(info['error'])}")

        store = (cache_file or root / "runs" / "cache.sqlite") if cache else None
        result = asyncio.run(
            run_sweep(exp, folder, root, cache_file=store, progress=progress, check=False)
        )
    out.print(
        f"{len(result.done)} run, {len(result.skipped)} already complete, {len(result.failed)} failed"
    )
    if result.cache is not None:
        out.print(str(result.cache))
    out.print(f"sweep folder: {folder}")
    if result.failed:
        raise typer.Exit(1)


@app.command()
@friendly
def compare(
    sweep_dir: Annotated[Path, typer.Argument(help="A sweep folder.")],
    by: Annotated[str, typer.Option(help="Compare by variant or model.")] = "variant",
    metric: Annotated[
        list[str] | None, typer.Option(help="Metric to compare (repeatable).")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Group the others are compared with.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: SWEEP_DIR/compare).")
    ] = None,
) -> None:
    """Means with 95% intervals, paired tests on shared seeds, and an HTML report."""
    from ..compare.comparison import collect, compare as run_compare
    from ..compare.report import write_report

    if by not in ("variant", "model"):
        raise UserError(f"--by must be variant or model, not {by!r}")
    c = run_compare(collect(sweep_dir), by=by, metrics=metric, baseline=baseline)  # type: ignore[arg-type]
    for r in c.results:
        table = Table(title=r.metric)
        for col in ("group", "n", "mean", "95% CI", "paired diff", "p", "effect", "note"):
            table.add_column(col)
        for g, iv in r.groups.items():
            t = r.paired.get(f"{g} vs {c.baseline}")
            table.add_row(
                g,
                str(iv.n),
                "-" if iv.mean is None else f"{iv.mean:.3g}",
                "-" if iv.low is None else f"[{iv.low:.3g}, {iv.high:.3g}]",
                "-" if not t or t.mean_diff is None else f"{t.mean_diff:+.3g}",
                "-" if not t or t.p_value is None else f"{t.p_value:.3g}",
                "-" if not t or t.effect_size is None else f"{t.effect_size:.2f}",
                t.note if t else "baseline",
            )
        out.print(table)
    paths = write_report(c, out_dir or sweep_dir / "compare")
    out.print(f"report: {paths[0]}")


@app.command()
@friendly
def view(
    run_dir: Annotated[Path, typer.Argument(help="The run folder.")],
    audience: Annotated[
        str, typer.Option(help="facilitator (everything) or participant (public only).")
    ] = ("facilitator"),
    out_path: Annotated[Path | None, typer.Option("--out", help="HTML file to write.")] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open it in the browser.")] = False,
) -> None:
    """Write one self-contained HTML view of a transcript (works offline)."""
    from ..run.folder import RunDir
    from ..workshop.tags import read_annotations
    from ..workshop.viewer import write_html

    RunDir.open(run_dir)
    notes = read_annotations(run_dir) if audience == "facilitator" else None
    path = write_html(run_dir, audience, out_path, annotations=notes)  # type: ignore[arg-type]
    out.print(f"wrote {path}")
    if open_it:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


def _judge_options(
    model: str | None, base_url: str | None, api_key_env: str | None
) -> ModelConfig | None:
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
    from ..evals.evaluate import eval_row, evaluate_run, find_runs, judge_setup

    if fmt not in ("table", "csv", "json", "md"):
        raise UserError(f"--format must be table, csv, json or md, not {fmt!r}")
    runs = find_runs(path)
    root = data_root(home)
    judge_cfg = _judge_options(judge_model, judge_base_url, judge_api_key_env)
    store = _open_cache(root / "runs" / "cache.sqlite") if cache and judge_cfg else None

    async def go() -> list[Any]:
        judge = None
        if judge_cfg is not None:
            judge = judge_setup(
                judge_cfg, rubric or root / "evals" / "rubrics" / "negotiation.yaml", root, store
            )
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
            "branch",
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
        table = Table(*(c.replace("findings.", "").replace("judge.", "j:") for c in keep))
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
    home: Home = None,
) -> None:
    """Agreement of the rule-based checks (and a judge model) with the labelled calibration set."""
    from ..evals.calibrate import judge_agreement, load_set, rule_agreement
    from ..evals.evaluate import judge_setup

    root = data_root(home)
    cases = load_set(calibration_set or root / "tests" / "calibration")
    loaded = load_scenario("cornered-in-iraq", root)
    results = rule_agreement(loaded, cases)
    judge_cfg = _judge_options(judge_model, judge_base_url, judge_api_key_env)
    if judge_cfg is not None:
        judge = judge_setup(
            judge_cfg, rubric or root / "evals" / "rubrics" / "negotiation.yaml", root, None
        )
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


@app.command()
@friendly
def serve(
    runs_dir: Annotated[Path, typer.Argument(help="Folder of runs.")] = Path("runs"),
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8765,
    open_it: Annotated[bool, typer.Option("--open", help="Open the index in the browser.")] = False,
) -> None:
    """Serve a local index of runs; facilitators tag events in the browser (saved to each run)."""
    import time

    from ..workshop.serve import serve_runs

    if not runs_dir.is_dir():
        raise UserError(f"{runs_dir} is not a folder of runs")
    server = serve_runs(runs_dir, port).start()
    out.print(f"serving {runs_dir} at {server.url} (Ctrl-C to stop)")
    if open_it:
        import webbrowser

        webbrowser.open(server.url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@app.command()
@friendly
def debrief(
    run_dir: Annotated[Path, typer.Argument(help="The run folder.")],
    texts: Annotated[
        Path | None, typer.Option(help="Debrief texts (default: evals/debrief.yaml).")
    ] = None,
) -> None:
    """Write the after-action debrief (Markdown and HTML) for each stakeholder's team."""
    from ..run.folder import RunDir
    from ..workshop.debrief import write_debrief

    RunDir.open(run_dir)
    md, page = write_debrief(run_dir, texts)
    out.print(f"wrote {md}\nwrote {page}")


@app.command()
@friendly
def tags(
    run_dir: Annotated[Path, typer.Argument(help="The run folder.")],
    add: Annotated[
        int | None, typer.Option("--add", help="Tag the event with this seq number.")
    ] = None,
    tag: Annotated[
        str | None,
        typer.Option(
            help="The tag: anchor, concession, threat, red_line, "
            "walk_away_revealed, turning_point, or your own."
        ),
    ] = None,
    note: Annotated[str, typer.Option(help="A note with the tag.")] = "",
    remove: Annotated[str | None, typer.Option(help="Remove the tag with this id.")] = None,
    export: Annotated[str | None, typer.Option(help="Export as csv or json.")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="File for --export.")] = None,
) -> None:
    """List, add, remove or export a run's facilitator tags (annotations.jsonl)."""
    from ..run.folder import RunDir
    from ..workshop.tags import add_annotation, dumps, read_annotations, remove_annotation, to_csv

    RunDir.open(run_dir)
    if add is not None:
        if not tag:
            raise UserError("--add needs --tag")
        a = add_annotation(run_dir, add, tag, note)
        out.print(f"tagged event {a.seq} as {a.tag} (id {a.id})")
    elif remove is not None:
        remove_annotation(run_dir, remove)
        out.print(f"removed tag {remove}")
    elif export is not None:
        if export not in ("csv", "json"):
            raise UserError(f"--export must be csv or json, not {export!r}")
        text = to_csv(run_dir) if export == "csv" else dumps(read_annotations(run_dir))
        if out_path:
            out_path.write_text(text, encoding="utf-8")
            out.print(f"wrote {out_path}")
        else:
            typer.echo(text, nl=False)
    else:
        table = Table("id", "seq", "tag", "note", "author", "when")
        for a in read_annotations(run_dir):
            table.add_row(
                a["id"], str(a["seq"]), a["tag"], escape(a["note"]), escape(a["author"]), a["ts"]
            )
        out.print(table)


def main(argv: list[str] | None = None) -> int:
    """The `majlis` command. A usage error (an unknown option, `--seed abc`) is one line that
    says what is wrong first, then where to read more, and exit 2; Click would put its
    `Usage:` line first and the error last."""
    try:  # Typer 0.2x carries its own copy of Click; earlier ones use Click itself
        from typer._click import exceptions as click_errors
    except ImportError:  # pragma: no cover - depends on the installed Typer
        from click import exceptions as click_errors  # type: ignore[no-redef]

    args = sys.argv[1:] if argv is None else argv
    try:
        code = app(args=args, prog_name="majlis", standalone_mode=False)
    except click_errors.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `majlis` alone: the help, as asked
            typer.echo(exc.format_message(), err=True)
            return 2
        where = exc.ctx.command_path if exc.ctx is not None else "majlis"
        fail(f"majlis: error: {exc.format_message()} (see '{where} --help')")
        return 2
    except click_errors.Abort:
        fail("majlis: interrupted")
        return 130
    except click_errors.ClickException as exc:
        fail(f"majlis: error: {exc.format_message()}")
        return exc.exit_code
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
