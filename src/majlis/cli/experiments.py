"""Many runs: `majlis sweep` and `majlis compare`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import UserError
from .core import Home, app, friendly, home_folder, out, runs_folder


class SweepBar:
    """The sweep's progress bar: sessions done, and tokens and their estimated cost so far,
    fed by the sweep's progress callback (this object, called with what happened)."""

    def __init__(self, exp: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        from ..compare import cells

        todo = cells(exp)
        self.models = {c.run_id: c.setup for c in todo}
        self.prices = exp.price_table()
        self.tokens, self.cost = 0, 0.0
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("sessions"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[tokens]} tokens, ~${task.fields[cost]:.4f}"),
            console=out,
        )
        self.task = self.bar.add_task(exp.name, total=len(todo), tokens=0, cost=0.0)

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


@app.command()
@friendly
def sweep(
    experiment: ExperimentFile,
    out_dir: SweepFolder = None,
    cache: UseCache = True,
    cache_file: CacheFile = None,
    workers: Workers = None,
    home: Home = None,
) -> None:
    """Run variants x models x seeds concurrently; run it again to resume."""
    from ..compare import load_experiment, preflight, run_sweep, sweep_configs

    root = home_folder(home)
    exp = load_experiment(experiment, root)
    if workers is not None:
        exp = exp.model_copy(update={"workers": workers})
    configs = sweep_configs(exp, root)  # every session's models, resolved once for the sweep
    asyncio.run(preflight(configs))  # a dead endpoint: one line, before the bar
    folder = out_dir or runs_folder(home) / "sweeps" / exp.name
    store = (cache_file or runs_folder(home) / "cache.sqlite") if cache else None
    with SweepBar(exp) as progress:
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
    forks: Annotated[
        bool,
        typer.Option("--forks", help="Pair a run with each of its forks, from the fork point on."),
    ] = False,
    home: Home = None,
) -> None:
    """Means with 95% intervals, paired tests on shared seeds, and an HTML report; or a
    run against its forks (--forks)."""
    from ..compare import branch_counts, collect, compare as run_compare, write_report
    from ..workshop import write_html

    if forks:
        path = sweep_dir if sweep_dir.exists() else runs_folder(home) / str(sweep_dir)
        _compare_forks(path, out_dir)
        return
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
    labels, counts = branch_counts(c)
    table = Table("group", *(escape(label) for label in labels.values()), title="outcome branches")
    for g, by in counts.items():
        table.add_row(g, *(str(n) for n in by.values()))
    out.print(table)
    paths = write_report(
        c, out_dir or sweep_dir / "compare", view=lambda run: write_html(run, "facilitator")
    )
    out.print(f"report: {paths[0]}")


def _compare_forks(run: Path, out_dir: Path | None) -> None:
    """Print each fork of a run against it (and write forks.md to --out, if given)."""
    from ..compare import describe, fork_pairs, forks_markdown, outcome_line
    from ..files import write_text_atomic

    pairs, unfinished = fork_pairs(run)
    if not pairs:
        out.print("no finished forks beside this run")
    for f in pairs:
        title = (
            f"{escape(f.child)}: forked at seq {f.seq} ({escape(describe(f.changes))})\n"
            f"{outcome_line(f.parent_outcome)} -> {outcome_line(f.child_outcome)}"
        )
        table = Table(title=title)
        for col in ("party", "score", "fork", "diff", "margin", "fork", "diff"):
            table.add_column(col)
        for d in f.parties:
            table.add_row(
                d.party,
                str(d.parent_score),
                str(d.child_score),
                f"{d.score_diff:+d}",
                f"{d.parent_margin:+d}",
                f"{d.child_margin:+d}",
                f"{d.margin_diff:+d}",
            )
        out.print(table)
        counts = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in f.after.items())
        out.print(f"from the fork point on: {counts}")
    if unfinished:
        out.print(f"not finished (left out): {escape(', '.join(unfinished))}")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / "forks.md", forks_markdown(pairs, unfinished))
        out.print(f"report: {out_dir / 'forks.md'}")
