"""`majlis serve --live`: a session played in the browser, with the facilitator's console.

Each trainee opens `/play/PARTY?key=...`, the key a secret of that party alone (printed at
start): the page shows their brief, their scores, their record as it grows and the form for
the question waiting for them, and polls `/play/PARTY/state` about once a second. The
facilitator opens `/console?key=...`: pause and resume, push an inject now, tag events as
they happen, and every party's view.

The protections are those of `majlis serve` (127.0.0.1 only, Host checked, writes in JSON
from this server's own origin) and each page's key: a page can read and write only with
its own key, sent in the URL for reads and in the token header for writes. Only the live
routes are served: the runs index and its full views would show a trainee everything.
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from ..errors import UserError
from ..run import LiveSession, Risky
from .live_views import briefing_html, console_state, scores_html, trainee_state
from .serve import HOSTS, RunsServer, SecurityHeaders
from .tags import Annotation, add_annotation, read_annotations
from .viewer import csp_hash, embed_json


@dataclass
class LiveServer(RunsServer):
    """The live session's pages over the runs server's thread, checks and token (the
    token is the facilitator's key)."""

    live: LiveSession | None = None
    keys: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.live is None:
            raise ValueError("a live server needs its session")
        self.keys = {p: secrets.token_urlsafe(24) for p in self.live.trainees}

    def links(self) -> dict[str, str]:
        """The console's address, then each trainee's, with their keys."""
        base = self.url.rstrip("/")
        out = {"console": f"{base}/console?key={self.token}"}
        out |= {p: f"{base}/play/{p}?key={k}" for p, k in self.keys.items()}
        return out

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/play/{party}", self._play_page, methods=["GET"]),
                Route("/play/{party}/state", self._play_state, methods=["GET"]),
                Route("/play/{party}/answer", self._answer, methods=["POST"]),
                Route("/console", self._console_page, methods=["GET"]),
                Route("/console/state", self._console_state, methods=["GET"]),
                Route("/console/{action}", self._console_write, methods=["POST"]),
            ],
            middleware=[
                Middleware(SecurityHeaders),
                Middleware(TrustedHostMiddleware, allowed_hosts=HOSTS),
            ],
        )

    def stop(self) -> None:
        """Stop the session, then the server: the session's threads end with it."""
        self.session.close()
        self.session.wait(30)
        super().stop()

    @property
    def session(self) -> LiveSession:
        assert self.live is not None
        return self.live

    # ------------------------------------------------------------------ keys

    def _party(self, request: Request, given: str) -> str:
        """The party a page names, if `given` is its key; 403 otherwise (an unknown party
        too: a guess learns nothing)."""
        party = request.path_params["party"]
        key = self.keys.get(party, "")
        if not key or not secrets.compare_digest(given.encode(), key.encode()):
            raise HTTPException(403, "wrong or missing key for this page")
        return party

    def _console_key(self, given: str) -> None:
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            raise HTTPException(403, "wrong or missing key for the console")

    # ------------------------------------------------------------------ the trainee

    async def _play_page(self, request: Request) -> HTMLResponse:
        key = request.query_params.get("key", "")
        party = self._party(request, key)
        b = self.session.briefs[party]
        body = (
            f'<section id="briefing">{briefing_html(b)}</section>\n'
            f'<section id="score-table"><h3>Your scores <small>(hidden from everyone; a '
            f"package scores the sum of its options)</small></h3>{scores_html(b)}</section>"
        )
        data = {"party": party, "key": key, "name": b.name}
        return HTMLResponse(page("play", f"majlis · {b.name}", body, data))

    async def _play_state(self, request: Request) -> JSONResponse:
        party = self._party(request, request.query_params.get("key", ""))
        return JSONResponse(await run_in_threadpool(trainee_state, self.session, party))

    async def _answer(self, request: Request) -> JSONResponse:
        key = request.headers.get("x-majlis-token", "")
        party = self._party(request, key)
        body = await self._checked_body(request, token=key)
        ask, answer = body.get("ask"), body.get("answer")
        if not isinstance(ask, int) or not isinstance(answer, dict):
            raise HTTPException(400, 'expected {"ask": <question id>, "answer": {...}}')
        try:
            self.session.answer(party, ask, answer, bool(body.get("confirmed")))
        except Risky as exc:  # not an error: a question back to the trainee
            return JSONResponse({"answered": None, "warnings": exc.warnings})
        except UserError as exc:
            raise HTTPException(400, " ".join(str(exc).split())) from None
        return JSONResponse({"answered": ask, "warnings": []})

    # ------------------------------------------------------------------ the facilitator

    async def _console_page(self, request: Request) -> HTMLResponse:
        key = request.query_params.get("key", "")
        self._console_key(key)
        injects = [{"title": i.title, "text": i.text} for i in self.session.loaded.scenario.injects]
        data = {"key": key, "injects": injects}
        title = f"majlis console · {self.session.loaded.scenario.title}"
        return HTMLResponse(page("console", title, "", data))

    async def _console_state(self, request: Request) -> JSONResponse:
        self._console_key(request.query_params.get("key", ""))

        def state() -> dict[str, Any]:
            path = self.session.run_path
            tags = read_annotations(path) if path.is_dir() else []
            return console_state(self.session, tags)

        return JSONResponse(await run_in_threadpool(state))

    async def _console_write(self, request: Request) -> JSONResponse:
        body = await self._checked_body(request)  # the server's token: the console's key
        action = request.path_params["action"]
        live = self.session
        try:
            if action == "pause":
                live.pause()
            elif action == "resume":
                live.resume()
            elif action == "inject":
                title, text = body.get("title"), body.get("text")
                if not isinstance(title, str) or not isinstance(text, str):
                    raise UserError("an inject needs a title and a text")
                return JSONResponse(live.push(title, text), status_code=201)
            elif action == "tag":
                return await self._tag(body)
            else:
                raise HTTPException(404, "no such action")
        except UserError as exc:
            raise HTTPException(400, " ".join(str(exc).split())) from None
        return JSONResponse({"paused": live.paused})

    async def _tag(self, body: dict[str, Any]) -> JSONResponse:
        tag = body.get("tag")
        if isinstance(tag, str):
            tag = tag.strip().lower().replace(" ", "_")
        fields = {"seq": body.get("seq"), "tag": tag, "note": body.get("note", "")}
        try:
            ann = Annotation.model_validate(fields, strict=True)
        except ValueError as exc:
            raise UserError(f"tag: {exc}") from None
        path = self.session.run_path
        saved = await run_in_threadpool(
            self._locked, add_annotation, path, ann.seq, ann.tag, ann.note
        )
        return JSONResponse(saved.model_dump(), status_code=201)


def page(kind: str, title: str, body: str, data: dict[str, Any]) -> str:
    """A live page: the frame shared by the pages around its own markup, with its data
    (JSON that cannot close the script element), the stylesheet, and the shared script
    before its own, all from live_assets. Its Content-Security-Policy allows that script
    and stylesheet alone (by hash) and requests to this server only, so text a model
    wrote can never run or load anything, whatever a page does with it."""
    assets = resources.files("majlis.workshop") / "live_assets"

    def asset(name: str) -> str:
        return (assets / name).read_text(encoding="utf-8")

    title, css = html.escape(title), asset("live.css")
    script = asset("common.js") + asset(f"{kind}.js")
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {csp_hash(script)}",
            f"style-src {csp_hash(css)}",
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    # one pass over each template: nothing put in is read again for a placeholder
    markup = _fill(asset(f"{kind}.html"), {"title": title, "body": body})
    parts = {"title": title, "css": css, "page": markup, "data": embed_json(data)}
    return _fill(asset("frame.html"), {**parts, "script": script, "csp": html.escape(csp)})


def _fill(template: str, parts: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], template)


def serve_live(live: LiveSession, port: int = 0) -> LiveServer:
    """A server over a live session, not yet started: `.start()`, `.links()`, `.stop()`."""
    return LiveServer(runs_dir=live.run_path.parent, port=port, live=live)
