"""`majlis fork`: a new run from the state of another just before one of its events."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import UserError
from .core import Home, app, friendly, open_cache, out, runs_folder
from .sessions import summary

RunArg = Annotated[Path, typer.Argument(help="The run folder, or its id under runs/.")]
At = Annotated[
    int | None,
    typer.Option(
        help="The event to fork at (its seq): a round's opening or inject, a turn's "
        "message, or a vote. The child plays that turn or vote again."
    ),
]
ForkModel = Annotated[str | None, typer.Option(help="Model name for every party.")]
PartyModel = Annotated[
    list[str] | None,
    typer.Option(help="PARTY=MODEL: another model for one party (repeatable)."),
]
ForkModels = Annotated[
    Path | None, typer.Option(help="Models file (as `majlis run --models` takes).")
]
ForkVariant = Annotated[
    str | None, typer.Option(help="Prompt variant for the child ('baseline': none).")
]
ForkSeed = Annotated[int | None, typer.Option(help="Another seed for every party.")]
Edit = Annotated[
    str | None,
    typer.Option(help="SEQ=TEXT: the message at SEQ says TEXT instead; the fork starts there."),
]
EditFile = Annotated[
    Path | None, typer.Option(help="The new words of the message at --at, from a file.")
]
Inject = Annotated[
    str | None, typer.Option(help='"TITLE: TEXT": a scenario event announced at the fork point.')
]
ForkOut = Annotated[
    Path | None, typer.Option("--out", help="Runs folder for the child (default: the parent's).")
]
ForkCache = Annotated[
    bool | None,
    typer.Option("--cache/--no-cache", help="Replay cached replies (default: on with a seed)."),
]


@app.command()
@friendly
def fork(
    run_dir: RunArg,
    at: At = None,
    model: ForkModel = None,
    party_model: PartyModel = None,
    models: ForkModels = None,
    variant: ForkVariant = None,
    seed: ForkSeed = None,
    edit: Edit = None,
    edit_file: EditFile = None,
    inject: Inject = None,
    out_dir: ForkOut = None,
    cache: ForkCache = None,
    quiet: Annotated[bool, typer.Option(help="No live view; print only the run folder.")] = False,
    show_private: Annotated[bool, typer.Option(help="Show private reasoning.")] = False,
    home: Home = None,
) -> None:
    """Start a new run from the state just before an event of RUN, with changes."""
    from ..files import parse_file
    from ..model import Activity, ModelsFile
    from ..run import ForkOptions, RunDir, Terminal, fork_session, load_snapshot, parse_inject
    from .live import LiveView

    path = run_dir if run_dir.exists() else runs_folder(home) / str(run_dir)
    parent = RunDir.open(path)
    at, words = _edit(at, edit, edit_file)
    if seed is not None and not 0 <= seed < 2**63:
        raise UserError(f"--seed must be between 0 and {2**63 - 1}, not {seed}")
    manifest = parent.read_manifest()
    child_seed = manifest.seed if seed is None else seed
    use_cache = child_seed is not None if cache is None else cache
    runs_root = out_dir or parent.path.parent
    opts = ForkOptions(
        parent=parent.path,
        at=at,
        edit=words,
        inject=parse_inject(inject) if inject is not None else None,
        model=model,
        party_models=dict(_pair(p) for p in party_model or []),
        models=parse_file(models, ModelsFile) if models else None,
        variant=variant,
        seed=seed,
        runs_root=runs_root,
        command=sys.argv,
        cache=open_cache(runs_root / "cache.sqlite") if use_cache else None,
    )
    people = [p for p, m in manifest.parties.items() if m.played_by == "human"]
    ask = Terminal() if people or "human" in opts.party_models.values() else None
    if quiet:
        result = asyncio.run(fork_session(opts, ask_human=ask))
        typer.echo(str(result.run_dir.path))
        return
    opts.activity = Activity()
    loaded = load_snapshot(parent)
    with LiveView(loaded, out, show_private, progress=ask is None, activity=opts.activity) as view:
        result = asyncio.run(fork_session(opts, sink=view, ask_human=ask))
    summary(result)
    forked = result.manifest.parent
    if forked is not None:
        out.print(f"forked from {forked.run_id} at seq {forked.seq}", soft_wrap=True)


def _pair(spec: str) -> tuple[str, str]:
    party, eq, name = spec.partition("=")
    if not eq or not party.strip() or not name.strip():
        raise UserError(f"--party-model must read PARTY=MODEL, got {spec[:60]!r}")
    return party.strip(), name.strip()


def _edit(
    at: int | None, edit: str | None, edit_file: Path | None
) -> tuple[int | None, str | None]:
    """The seq to fork at and the new words of the message there, if one is edited."""
    if edit is not None and edit_file is not None:
        raise UserError("--edit and --edit-file: give one of them")
    if edit_file is not None:
        if at is None:
            raise UserError("--edit-file: say with --at which message it replaces")
        try:
            return at, edit_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--edit-file: cannot read {edit_file}: {exc}") from None
    if edit is None:
        return at, None
    seq, eq, words = edit.partition("=")
    if not eq or not seq.strip().isdigit():
        raise UserError(f"--edit must read SEQ=TEXT, got {edit[:60]!r}")
    if at is not None and at != int(seq):
        raise UserError(f"--edit names seq {seq} and --at {at}: an edit forks at its message")
    return int(seq), words


def compare_forks(run: Path, out_dir: Path | None) -> None:
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
