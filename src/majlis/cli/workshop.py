"""For the workshop: `majlis view`, `serve`, `debrief`, `tags`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import UserError
from .core import Home, app, friendly, out, runs_folder


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
    live: Annotated[
        str | None,
        typer.Option(
            help="Play this scenario live in the browser (name or folder): trainees play "
            "the --trainee parties, the model the others; the run goes into RUNS_DIR."
        ),
    ] = None,
    trainee: Annotated[
        list[str] | None, typer.Option(help="With --live: a party a trainee plays; repeat.")
    ] = None,
    model: Annotated[
        str, typer.Option(help="With --live: embedded, scripted, or a model at --base-url.")
    ] = "embedded",
    base_url: Annotated[str | None, typer.Option(help="With --live: the model's endpoint.")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="With --live: variable holding the API key.")
    ] = None,
    rounds: Annotated[int | None, typer.Option(help="With --live: maximum rounds.")] = None,
    home: Home = None,
) -> None:
    """Serve a local index of runs; facilitators tag events in the browser (saved to each
    run). With --live, host a session played in the browser, with the facilitator's console."""
    import time

    if live is not None:
        root = None if runs_dir == Path("runs") else runs_dir  # the default: the home's runs/
        server = _live_server(
            live, trainee or [], model, base_url, api_key_env, rounds, home, root, port
        )
        server.start()  # a taken port is said before anything plays
        server.session.start()
        out.print(
            f"live session {server.session.run_id} (Ctrl-C to stop); give each page its link:"
        )
        for who, link in server.links().items():
            out.print(f"  {who}: {link}", soft_wrap=True, highlight=False)
    else:
        from ..workshop import serve_runs

        if not runs_dir.is_dir():
            raise UserError(f"{runs_dir} is not a folder of runs")
        server = serve_runs(runs_dir, port).start()
        out.print(f"serving {runs_dir} at {server.url} (Ctrl-C to stop)")
    if open_it:
        import webbrowser

        webbrowser.open(server.links()["console"] if live else server.url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    if live is not None:
        session = server.session
        status = session.status
        ended = "was stopped before its end"
        if status == "complete":
            ended = "ended"
        elif status.startswith("failed: "):
            ended = f"stopped on an error ({status.removeprefix('failed: ')})"
        out.print(f"the live session {ended}; its record: {session.run_path}", soft_wrap=True)


def _live_server(
    scenario: str,
    trainees: list[str],
    model: str,
    base_url: str | None,
    api_key_env: str | None,
    rounds: int | None,
    home: Path | None,
    runs_dir: Path | None = None,
    port: int = 8765,
) -> Any:
    """The server over the session, neither started; every input is checked here, before
    anything plays."""
    from ..model import ModelConfig
    from ..run import LiveSession, RunOptions, prepare
    from ..workshop import serve_live

    if not trainees:
        raise UserError("--live needs at least one --trainee PARTY")
    config = ModelConfig(model=model, base_url=base_url, api_key_env=api_key_env)
    opts = RunOptions(
        scenario=scenario,
        rounds=rounds,
        model=config,
        runs_root=runs_dir or runs_folder(home),
        home=home,
        humans=trainees,
    )
    session = LiveSession(prepare(opts).with_embedded_defaults())
    return serve_live(session, port)


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
