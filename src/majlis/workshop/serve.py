"""`majlis serve RUNS_DIR`: a local workshop server where facilitators review and tag runs.

It lists the runs, shows each one with the offline viewer's own HTML, and lets the
facilitator view tag events (runs/<id>/annotations.jsonl). It binds 127.0.0.1 only.

Why the checks: any page open in the facilitator's browser may try to post to a server on
localhost, or reach it through a DNS name rebound to 127.0.0.1. So every request must name
127.0.0.1 or localhost in its Host header; every write must be JSON (a cross-site form
cannot send that without a CORS preflight, which this server never grants), come from this
server's own origin when the browser names one (Origin, and Sec-Fetch-Site where sent),
carry this server's random token (only the pages it served hold it), and pass the
Annotation model.
A run id is looked up among the folder's direct children that hold a manifest.json; it is
never joined onto a path.
"""

from __future__ import annotations

import html
import json
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import UserError
from ..model import Completion, LoopbackServer
from ..run import RunDir, load_snapshot
from ..scenario import in_words
from .debrief import render_debrief
from .tags import Annotation, add_annotation, read_annotations, remove_annotation, to_csv
from .viewer import render_html, static_page

T = TypeVar("T")
TOKEN_HEADER = "x-majlis-token"
MAX_BODY = 64 * 1024
HOSTS = ["127.0.0.1", "localhost"]
HEADERS = [  # on every response: no caching of pages holding a token, no framing, no sniffing
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
]


def serve_runs(runs_dir: Path, port: int = 0) -> RunsServer:
    """A server over RUNS_DIR, not yet started: `.start()`, then `.url`, then `.stop()`."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"{runs_dir} is not a folder of runs")
    return RunsServer(runs_dir=runs_dir.resolve(), port=port)


def runs_in(runs_dir: Path) -> dict[str, Path]:
    """The runs a request may name: direct child folders that hold a manifest.json."""
    try:
        children = list(runs_dir.iterdir())
    except OSError:
        return {}
    return {p.name: p for p in children if p.is_dir() and (p / "manifest.json").is_file()}


def _no_model(body: dict[str, Any]) -> Completion:
    raise RuntimeError("the runs server answers no model calls")


@dataclass
class RunsServer(LoopbackServer):
    """The loopback server's thread, start() and stop(), serving the runs app instead."""

    responder: Any = _no_model
    runs_dir: Path = Path("runs")
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    _write: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.host != "127.0.0.1":
            raise ValueError("majlis serve binds 127.0.0.1 only")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def origins(self) -> set[str]:
        """The origins this server's own pages write from (a browser sends one with every
        POST; a page elsewhere, a file:// page or a sandboxed frame sends its own, or null)."""
        return {f"http://{host}:{self.port}" for host in HOSTS}

    def start(self) -> RunsServer:
        """Start, or say in one line that the port is taken (uvicorn would exit its thread)."""
        if self.port:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
                try:
                    probe.bind((self.host, self.port))
                except OSError as exc:
                    raise UserError(
                        f"cannot serve on {self.host}:{self.port}: {exc.strerror}"
                    ) from None
        super().start()
        return self

    def app(self) -> Starlette:
        run = "/runs/{run_id}"
        return Starlette(
            routes=[
                Route("/", self._index, methods=["GET"]),
                Route(run + "/facilitator", self._facilitator, methods=["GET"]),
                Route(run + "/participant", self._participant, methods=["GET"]),
                Route(run + "/tags.csv", self._csv, methods=["GET"]),
                Route(run + "/debrief", self._debrief, methods=["GET"]),
                Route(run + "/tags", self._add, methods=["POST"]),
                Route(run + "/tags/remove", self._remove, methods=["POST"]),
            ],
            middleware=[
                Middleware(SecurityHeaders),
                Middleware(TrustedHostMiddleware, allowed_hosts=HOSTS),
            ],
            exception_handlers={UserError: _user_error},
        )

    # ------------------------------------------------------------------- reading

    def _run(self, request: Request) -> Path:
        path = runs_in(self.runs_dir).get(request.path_params["run_id"])
        if path is None:
            raise HTTPException(404, "no such run")
        return path

    async def _index(self, request: Request) -> HTMLResponse:
        return HTMLResponse(await run_in_threadpool(index_page, self.runs_dir))

    async def _facilitator(self, request: Request) -> HTMLResponse:
        """The facilitator view with the tag controls and this server's write token."""
        path = self._run(request)

        def render() -> str:
            notes = read_annotations(path)
            return render_html(path, "facilitator", notes, editable=True, token=self.token)

        return HTMLResponse(await run_in_threadpool(render))

    async def _participant(self, request: Request) -> HTMLResponse:
        return HTMLResponse(await run_in_threadpool(render_html, self._run(request), "participant"))

    async def _csv(self, request: Request) -> Response:
        path = self._run(request)
        name = quote(f"{path.name}-tags.csv", safe="")
        return Response(
            await run_in_threadpool(to_csv, path),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f"attachment; filename*=UTF-8''{name}"},
        )

    async def _debrief(self, request: Request) -> HTMLResponse:
        _, text = await run_in_threadpool(render_debrief, self._run(request))
        return HTMLResponse(text)

    # ------------------------------------------------------------------- writing

    async def _checked_body(self, request: Request, token: str | None = None) -> dict[str, Any]:
        """The JSON object of a write that passed the cross-site checks, or an HTTP error;
        `token`: the write token this page holds, when it is not the server's own."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise HTTPException(415, "writes must be application/json")
        site = request.headers.get("sec-fetch-site")
        if site not in (None, "same-origin", "none"):
            raise HTTPException(403, f"cross-site write refused ({site})")
        origin = request.headers.get("origin")
        if origin is not None and origin not in self.origins():
            raise HTTPException(403, f"write from another origin refused ({origin[:100]})")
        given = request.headers.get(TOKEN_HEADER, "").encode()
        if not secrets.compare_digest(given, (token or self.token).encode()):
            raise HTTPException(403, "missing or wrong write token: reload the page")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                raise HTTPException(413, f"body over {MAX_BODY} bytes")
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise HTTPException(400, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(400, "body must be a JSON object")
        return body

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        """One write at a time (in a worker thread), so a removal reads what was added."""
        with self._write:
            return fn(*args)

    async def _add(self, request: Request) -> JSONResponse:
        body = await self._checked_body(request)
        path = self._run(request)
        unknown = sorted(set(body) - {"seq", "tag", "note"})
        if unknown:
            raise HTTPException(400, f"unknown field {unknown[0]!r}")
        tag = body.get("tag")
        if isinstance(tag, str):  # the same normalising add_annotation does, before validating
            tag = tag.strip().lower().replace(" ", "_")
        fields = {"seq": body.get("seq"), "tag": tag, "note": body.get("note", "")}
        try:
            ann = Annotation.model_validate(fields, strict=True)
        except ValidationError as exc:
            raise HTTPException(400, _first_error(exc)) from None
        saved = await run_in_threadpool(
            self._locked, add_annotation, path, ann.seq, ann.tag, ann.note
        )
        return JSONResponse(saved.model_dump(), status_code=201)

    async def _remove(self, request: Request) -> JSONResponse:
        body = await self._checked_body(request)
        path = self._run(request)
        ann_id = body.get("id")
        if set(body) != {"id"} or not isinstance(ann_id, str) or not 0 < len(ann_id) <= 64:
            raise HTTPException(400, 'expected {"id": "<tag id>"}')
        await run_in_threadpool(self._locked, remove_annotation, path, ann_id)
        return JSONResponse({"removed": ann_id})


class SecurityHeaders:
    """Adds HEADERS to every response, error pages included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return _one_line(f"{where}: {err['msg']}")


async def _user_error(request: Request, exc: Exception) -> PlainTextResponse:
    return PlainTextResponse(_one_line(exc), status_code=400)


# ---------------------------------------------------------------------------------------
# The index


def run_summary(path: Path) -> dict[str, Any]:
    """One index row; an unreadable run is listed as such rather than hidden."""
    rd = RunDir(path)
    row: dict[str, Any] = {"id": path.name, "scenario": "", "created": "", "status": "unreadable"}
    row |= {"outcome": "", "tags": 0}
    try:
        m = rd.read_manifest()
        row |= {"scenario": m.scenario.get("id", ""), "created": m.created, "status": m.status}
        outcome = rd.read_outcome()
        if outcome:
            row["outcome"] = f"{outcome.kind} / {_branch_words(rd, outcome.branch)}"
        row["tags"] = len(read_annotations(path))
    except (UserError, ValueError, KeyError) as exc:
        row["outcome"] = _one_line(exc)
    return row


def _branch_words(rd: RunDir, branch: str) -> str:
    """The branch as the run's scenario names it; its id in words if scenario.json is
    unreadable (the index still lists the run: its pages say what is wrong)."""
    try:
        return load_snapshot(rd).scenario.branch_label(branch)
    except UserError:
        return in_words(branch)


def _when(created: str) -> datetime:
    try:
        return datetime.fromisoformat(created)
    except ValueError:
        return datetime.fromisoformat("0001-01-01T00:00:00+00:00")


def index_page(runs_dir: Path) -> str:
    rows = sorted(
        (run_summary(p) for p in runs_in(runs_dir).values()),
        key=lambda r: (_when(r["created"]), r["id"]),
        reverse=True,
    )
    e = html.escape
    cells = []
    for r in rows:
        base = f"/runs/{quote(r['id'], safe='')}"
        links = (
            f'<a href="{e(base)}/facilitator">facilitator view</a>'
            f'<a href="{e(base)}/participant">participant view</a>'
            f'<a href="{e(base)}/debrief">debrief</a>'
            f'<a href="{e(base)}/tags.csv">tags (CSV)</a>'
        )
        created = r["created"].replace("T", " ").replace("+00:00", " UTC")
        cells.append(
            f'<tr data-run="{e(r["id"])}"><td><a href="{e(base)}/facilitator">{e(r["id"])}</a></td>'
            f"<td>{e(r['scenario'])}</td><td>{e(created)}</td><td>{e(r['status'])}</td>"
            f'<td>{e(r["outcome"])}</td><td class="num">{r["tags"]}</td>'
            f'<td class="links">{links}</td></tr>'
        )
    table = (
        '<table class="runs"><thead><tr><th>Run</th><th>Scenario</th><th>Created</th>'
        "<th>Status</th><th>Outcome</th><th>Tags</th><th>Open</th></tr></thead>"
        f"<tbody>{''.join(cells)}</tbody></table>"
        if rows
        else '<p class="muted">No runs here yet: <code>majlis run --out RUNS_DIR</code>.</p>'
    )
    body = (
        f'<header class="top"><h1>Runs</h1><p class="meta">{e(str(runs_dir))} · '
        f"{len(rows)} run{'' if len(rows) == 1 else 's'}, newest first</p></header>\n"
        f'<section class="panel" id="runs">{table}</section>\n'
    )
    return static_page(f"majlis runs · {runs_dir.name}", body)
