"""For the workshop: `majlis view`, `serve`, `debrief`, `tags`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import UserError
from .core import app, friendly, out


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
    from ..run import RunDir
    from ..workshop import read_annotations, write_html

    RunDir.open(run_dir)
    notes = read_annotations(run_dir) if audience == "facilitator" else None
    path = write_html(run_dir, audience, out_path, annotations=notes)  # type: ignore[arg-type]
    out.print(f"wrote {path}")
    if open_it:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


@app.command()
@friendly
def serve(
    runs_dir: Annotated[Path, typer.Argument(help="Folder of runs.")] = Path("runs"),
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8765,
    open_it: Annotated[bool, typer.Option("--open", help="Open the index in the browser.")] = False,
) -> None:
    """Serve a local index of runs; facilitators tag events in the browser (saved to each run)."""
    import time

    from ..workshop import serve_runs

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
    pdf: Annotated[
        bool, typer.Option("--pdf", help="Also print it to debrief.pdf (needs Chromium).")
    ] = False,
    png: Annotated[
        bool, typer.Option("--png", help="Also save each chart as debrief-<chart>.png (Chromium).")
    ] = False,
) -> None:
    """Write the after-action debrief (Markdown and HTML) for each stakeholder's team."""
    from ..run import RunDir
    from ..workshop import export_debrief, find_chromium, write_debrief

    RunDir.open(run_dir)
    if pdf or png:
        find_chromium()  # before writing anything: a missing browser is said at once
    md, page = write_debrief(run_dir, texts)
    out.print(f"wrote {md}\nwrote {page}")
    for path in export_debrief(page, pdf=pdf, png=png):
        out.print(f"wrote {path}")


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
    from ..run import RunDir
    from ..workshop import add_annotation, dumps, read_annotations, remove_annotation, to_csv

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
