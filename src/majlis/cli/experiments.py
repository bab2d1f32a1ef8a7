"""Many runs: `majlis sweep` and `majlis compare`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import UserError
from .core import Home, Trace, app, err, friendly, home_folder, out, runs_folder


def limit_text(limits: dict[tuple[str, int], int]) -> str:
    """The adaptive limits now, for the progress line: calls at once per endpoint, each
    worker process's own limit added up (each finds its share for itself)."""
    if not limits:
        return ""
    per: dict[str, int] = {}
    for (endpoint, _worker), n in limits.items():
        per[endpoint] = per.get(endpoint, 0) + n
    if len(per) == 1:
        return f"auto: {next(iter(per.values()))} calls at once"
    return "auto: " + ", ".join(f"{n} at {endpoint}" for endpoint, n in per.items())


class SweepBar:
    """The sweep's progress bar: sessions done, and tokens and their estimated cost so far,
    and under `concurrency: auto` each endpoint's calls at once, fed by the sweep's progress
    callback (this object, called with what happened)."""

    def __init__(self, exp: Any, home: Path) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        from ..compare import cells

        todo = cells(exp, home)
        self.models = {c.run_id: c.setup for c in todo}
        self.prices = exp.price_table()
        self.tokens, self.cost = 0, 0.0
        self.limits: dict[tuple[str, int], int] = {}  # (endpoint, worker) -> adaptive limit
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("sessions"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[tokens]} tokens, ~${task.fields[cost]:.4f}"),
            TextColumn("{task.fields[limit]}"),
            console=out,
        )
        self.task = self.bar.add_task(exp.name, total=len(todo), tokens=0, cost=0.0, limit="")

    def __enter__(self) -> SweepBar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def __call__(self, what: str, info: dict[str, Any]) -> None:
        from ..model import Usage

        if what == "usage":
            setup = self.models[info["run_id"]]
            model = setup.parties.get(info["party"], setup.default).model
            usage = Usage(
                prompt_tokens=info["prompt_tokens"], completion_tokens=info["completion_tokens"]
            )
            self.tokens += usage.tokens
            self.cost += self.prices.cost(model, usage)
            self.bar.update(self.task, tokens=self.tokens, cost=self.cost)
        elif what == "limit":
            self.limits[info["endpoint"], info.get("worker", 0)] = info["limit"]
            self.bar.update(self.task, limit=limit_text(self.limits))
        elif what in ("finished", "skipped", "failed"):
            self.bar.advance(self.task)
            if what == "failed":
                self.bar.console.print(f"[red]failed[/] {info['run_id']}: {escape(info['error'])}")


# The options of `majlis sweep`.
ExperimentFile = Annotated[Path, typer.Argument(help="Experiment file (YAML).")]
SweepFolder = Annotated[
    Path | None, typer.Option("--out", help="Sweep folder (default: runs/sweeps/NAME).")
]
UseCache = Annotated[bool, typer.Option("--cache/--no-cache", help="Replay cached replies.")]
CacheFile = Annotated[Path | None, typer.Option(help="Cache file (default: runs/cache.sqlite).")]
Workers = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Processes to spread the sessions over (default: the experiment's `workers`, "
        "1). More help only when the sweep is CPU-bound: many sessions, a fast endpoint.",
    ),
]
Concurrency = Annotated[
    str | None,
    typer.Option(
        help="Sessions in flight at once, or `auto`: each endpoint's calls at once found as "
        "the sweep runs, backing off on 429s, 503s and timeouts (default: the experiment's "
        "`concurrency`).",
    ),
]


def concurrency_of(value: str) -> int | str:
    """`--concurrency`: a whole number of at least one, or auto."""
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise UserError(
            f"--concurrency must be a whole number of at least 1 or auto, not {value!r}"
        )
    return n


@app.command()
@friendly
def sweep(
    experiment: ExperimentFile,
    out_dir: SweepFolder = None,
    cache: UseCache = True,
    cache_file: CacheFile = None,
    workers: Workers = None,
    trace: Trace = False,
    concurrency: Concurrency = None,
    home: Home = None,
) -> None:
    """Run variants x models x seeds concurrently; run it again to resume."""
    from .. import tracing
    from ..compare import cross_play_design, load_experiment, preflight, run_sweep, sweep_configs

    tracing.setup(trace)

    root = home_folder(home)
    exp = load_experiment(experiment, root)
    if workers is not None:
        exp = exp.model_copy(update={"workers": workers})
    if concurrency is not None:
        exp = exp.model_copy(update={"concurrency": concurrency_of(concurrency)})
    configs = sweep_configs(exp, root)  # every session's models, resolved once for the sweep
    asyncio.run(preflight(configs))  # a dead endpoint: one line, before the bar
    folder = out_dir or runs_folder(home) / "sweeps" / exp.name
    store = (cache_file or runs_folder(home) / "cache.sqlite") if cache else None
    design = cross_play_design(exp, root)
    if design is not None:  # the size of a cross-play sweep, said before it runs
        out.print(str(design["summary"]))
    with SweepBar(exp, root) as progress:
        result = asyncio.run(
            run_sweep(
                exp, folder, root, cache_file=store, progress=progress, check=False, configs=configs
            )
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
    sweep_dir: Annotated[
        Path, typer.Argument(help="A sweep folder; with --forks, a run folder or id.")
    ],
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
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="table, csv, json or md. csv: the per-metric comparison, or for a "
            "cross-play sweep its leaderboard and seat-by-member matrix.",
        ),
    ] = "table",
    forks: Annotated[
        bool,
        typer.Option("--forks", help="Pair a run with each of its forks, from the fork point on."),
    ] = False,
    home: Home = None,
) -> None:
    """Means with 95% intervals, paired tests on shared seeds, and an HTML report; for a
    cross-play sweep, a rating of each member and its results seat by seat; or a run
    against its forks (--forks)."""
    from ..compare import collect, compare as run_compare, write_report
    from ..workshop import write_html

    if forks:
        from .forks import compare_forks

        path = sweep_dir if sweep_dir.exists() else runs_folder(home) / str(sweep_dir)
        compare_forks(path, out_dir)
        return
    if by not in ("variant", "model"):
        raise UserError(f"--by must be variant or model, not {by!r}")
    if fmt not in ("table", "csv", "json", "md"):
        raise UserError(f"--format must be table, csv, json or md, not {fmt!r}")
    c = run_compare(collect(sweep_dir), by=by, metrics=metric, baseline=baseline)  # type: ignore[arg-type]
    if fmt == "table":
        _print_tables(c)
    else:
        typer.echo(_formatted(c, fmt), nl=False)
    paths = write_report(
        c, out_dir or sweep_dir / "compare", view=lambda run: write_html(run, "facilitator")
    )
    (out if fmt == "table" else err).print(f"report: {paths[0]}")


def _formatted(c: Any, fmt: str) -> str:
    """The comparison as csv, json or md text, cross-play results included."""
    from ..compare import cross_play_csv, to_csv, to_json, to_markdown

    if fmt == "json":
        return to_json(c) + "\n"
    if fmt == "md":
        return to_markdown(c)
    return to_csv(c) if c.cross_play is None else cross_play_csv(c.cross_play)


def _print_tables(c: Any) -> None:
    """The comparison as the terminal shows it: a table per metric, the branches, and for
    a cross-play sweep the leaderboard and the seat-by-member matrix."""
    from ..compare import branch_counts

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
    labels, counts = branch_counts(c)
    table = Table("group", *(escape(label) for label in labels.values()), title="outcome branches")
    for g, by in counts.items():
        table.add_row(g, *(str(n) for n in by.values()))
    out.print(table)
    if c.cross_play is not None:
        _print_cross_play(c.cross_play)


def _print_cross_play(cp: Any) -> None:
    table = Table("seat", *(escape(m) for m in cp.members), title="seat x member: mean (n)")
    for p, row in cp.matrix.items():
        table.add_row(escape(p), *(c.shown() for c in row.values()))
    out.print(table)
    table = Table("#", "member", "rating", f"{cp.level:.0%} CI", "comparisons", "wins")
    table.title = "cross-play leaderboard"
    for i, r in enumerate(cp.ratings, 1):
        table.add_row(str(i), escape(r.member), *r.shown(), str(r.comparisons), f"{r.wins:g}")
    out.print(table)
    out.print(f"[dim]{escape(cp.describe())}[/]")
