"""A live session: trainees play parties from elsewhere (a browser), a facilitator steers.

It is the same engine as `majlis run --human`: `run_session` drives the graph in a thread
of its own, and a trainee's party pauses the graph through `HumanClient`'s interrupt. Here
the interrupt's question is published for that party (`pending`) and the driver's worker
thread waits on the party's queue until an answer comes (`answer`). The question stays
published until it is answered, so a page that reloads, or lost its connection, asks for
it again and loses nothing.

The facilitator can pause the session (the graph's nodes wait at their start: `gate`),
and push an inject now: it waits in `news` until a node writes it into the record, so it
reaches every party's next prompt, and is dropped once the record holds it. A node that
runs again after a trainee's interrupt writes it again from `news`, so the prompt the
trainee answered and the record agree.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import queue
import threading
from pathlib import Path
from typing import Any

from ..errors import MajlisError, UserError
from ..protocol import Briefing, briefing, record_entry, record_line, visible
from ..scenario import runs_home
from .human import turn_block
from .preparation import Prepared
from .provenance import new_run_id
from .session import RunResult, run_session

LIVE = "live-"  # the id prefix of an inject the facilitator pushed during the session


class LiveSession:
    """One session played live: `start()`, then trainees `answer`, the facilitator
    `pause`/`resume`/`push`; `events` is the record so far, `status` where it stands."""

    def __init__(self, prepared: Prepared) -> None:
        """`prepared` with the trainees' parties as its humans (`RunOptions.humans`)."""
        opts = prepared.opts
        if not opts.humans:
            raise UserError("a live session needs at least one trainee party")
        self.run_id = opts.run_id or new_run_id(prepared.loaded.scenario.id)
        opts = dataclasses.replace(opts, run_id=self.run_id)
        self.prepared = dataclasses.replace(prepared, opts=opts)
        self.loaded = prepared.loaded
        self.trainees = list(opts.humans)
        root = opts.runs_root or runs_home(opts.home) / "runs"
        self.run_path = Path(root) / self.run_id
        self.briefs: dict[str, Briefing] = {p: briefing(self.loaded, p) for p in self.parties}
        self.events: list[dict[str, Any]] = []
        self.status = "starting"
        self.result: RunResult | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}
        self._answers: dict[str, queue.Queue[dict[str, Any]]] = {
            p: queue.Queue() for p in self.trainees
        }
        self._ids = itertools.count(1)
        self._pushes = itertools.count(1)
        self._injects: list[dict[str, str]] = []
        self._running = threading.Event()
        self._running.set()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def parties(self) -> list[str]:
        return list(self.loaded.scenario.parties)

    # ------------------------------------------------------------------ the driver

    def start(self) -> LiveSession:
        self._thread = threading.Thread(target=self._drive, name="majlis-live", daemon=True)
        self._thread.start()
        return self

    def _drive(self) -> None:
        self.status = "running"
        try:
            self.result = asyncio.run(
                run_session(self.prepared, sink=self._sink, ask_human=self._ask, live=self)
            )
        except BaseException as exc:  # the page says so; the run folder says why
            said = " ".join(str(exc).split())[:300]
            self.status = "stopped" if isinstance(exc, Stopped) else f"failed: {said}"
            return
        self.status = "complete"

    def close(self) -> None:
        """Stop the session where it stands: a question waiting for a trainee is withdrawn
        and the graph ends with a `Stopped` error (its run folder says so), which lets the
        driver's threads end; a process would otherwise wait for them at exit."""
        self._closed.set()
        with self._lock:
            self._pending.clear()
        for answers in self._answers.values():
            answers.put({"id": None})
        self._running.set()  # a paused node goes on, to find the session closed

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the session has ended (within `timeout` seconds)."""
        if self._thread is None:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _sink(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)
            if event["type"] == "inject":
                done = event["content"].get("id")
                self._injects = [i for i in self._injects if i["id"] != done]

    def _ask(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The graph's question to a trainee: published, then the worker thread waits for
        the answer to this very question (a stale one, from a page that sent twice, is
        dropped)."""
        party = payload["party"]
        ask_id = next(self._ids)
        with self._lock:
            if self._closed.is_set():
                raise Stopped()
            self._pending[party] = {"id": ask_id, **payload}
        while True:
            got = self._answers[party].get()
            if self._closed.is_set():
                raise Stopped()
            if got.get("id") == ask_id:
                break
        self._running.wait()  # a paused session takes the answer but goes on at resume
        if self._closed.is_set():
            raise Stopped()
        return got["answer"]

    # ------------------------------------------------------------------ trainees

    def pending(self, party: str) -> dict[str, Any] | None:
        """The question waiting for `party`'s answer, if any."""
        with self._lock:
            return self._pending.get(party)

    def answer(self, party: str, ask_id: int, answer: dict[str, Any], confirmed: bool) -> None:
        """Hand the trainee's answer to the waiting graph. A UserError if no such question
        waits; a `Risky` error listing the warnings when the answer accepts or proposes a
        package below the walk-away point or across a red line and is not `confirmed`."""
        with self._lock:
            if self._closed.is_set():
                raise UserError("the session has stopped")
            asked = self._pending.get(party)
            if asked is None or asked["id"] != ask_id:
                raise UserError("that question is no longer waiting (the page will refresh)")
            check_answer(asked, answer)
            package = risky_package(asked, answer)
            warnings = self.briefs[party].warnings(package) if package else []
            if warnings and not confirmed:
                raise Risky(warnings)
            del self._pending[party]
        self._answers[party].put({"id": ask_id, "answer": answer})

    def record(self, party: str) -> list[str]:
        """`party`'s record in plain words: only the events its privacy gate lets through."""
        with self._lock:
            events = list(self.events)
        brief = self.briefs[party]
        return [record_line(brief, record_entry(e)) for e in events if visible(e, party)]

    # ------------------------------------------------------------------ the facilitator

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def push(self, title: str, text: str) -> dict[str, str]:
        """An inject for every party's next prompt."""
        title, text = title.strip(), text.strip()
        if not title or not text:
            raise UserError("an inject needs a title and a text")
        with self._lock:
            inject = {"id": f"{LIVE}{next(self._pushes)}", "title": title[:200]}
            inject["text"] = text[:2000]
            self._injects.append(inject)
        return inject

    # ------------------------------------------------------------------ the graph's hooks

    async def gate(self) -> None:
        """Where a node waits while the facilitator has paused the session."""
        while not self._running.is_set():
            await asyncio.sleep(0.1)
        if self._closed.is_set():
            raise Stopped()

    def news(self) -> list[dict[str, str]]:
        """The injects pushed and not yet in the record."""
        with self._lock:
            return [dict(i) for i in self._injects]


class Stopped(MajlisError):
    """The live session was stopped before its end (the server shut down)."""

    def __init__(self) -> None:
        super().__init__("the live session was stopped before its end")


class Risky(UserError):
    """An answer that needs the trainee's confirmation first."""

    def __init__(self, warnings: list[str]) -> None:
        super().__init__("; and ".join(warnings))
        self.warnings = warnings


def risky_package(asked: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any] | None:
    """The package an answer commits the trainee to: the proposal of a move, or the
    standing proposal a vote accepts."""
    if asked["task"] == "vote":
        if answer.get("vote") != "accept":
            return None
        return turn_block(asked["messages"][-1]["content"]).get("standing_proposal")
    return answer.get("proposal")


def check_answer(asked: dict[str, Any], answer: dict[str, Any]) -> None:
    """A UserError naming the first field of `answer` that the question's schema refuses,
    so a bad form is sent back to the page rather than recorded as a failed turn."""
    if not isinstance(answer, dict):
        raise UserError("answer: expected an object")
    props = asked["schema"].get("properties", {})
    if asked["task"] == "vote":
        _only(answer, {"private_reasoning", "vote"})
        if answer.get("vote") not in ("accept", "reject"):
            raise UserError("vote: accept or reject")
        _text(answer, "private_reasoning", empty=True)
        return
    _only(answer, set(props))
    issues = props["positions"]["properties"]
    for name in ("positions", "private_positions"):
        _package(answer.get(name), issues, name)
    if answer.get("proposal") is not None:
        _package(answer["proposal"], issues, "proposal")
    _text(answer, "public_message")
    _text(answer, "private_reasoning", empty=True)
    side = answer.get("side_message")
    if side is not None:
        to = props["side_message"]["anyOf"][0]["properties"]["to"]["enum"]
        if not isinstance(side, dict) or set(side) != {"to", "text"} or side["to"] not in to:
            raise UserError(f"side_message: to one of {', '.join(to)}, with a text")
        _text(side, "text")


def _only(answer: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(answer) - allowed)
    if extra:
        raise UserError(f"{extra[0]}: not a field of this answer")


def _text(obj: dict[str, Any], name: str, empty: bool = False) -> None:
    value = obj.get(name, "" if empty else None)
    if not isinstance(value, str) or len(value) > 4000 or (not empty and not value.strip()):
        raise UserError(f"{name}: a text is needed" + (" (at most 4000 characters)"))


def _package(value: Any, issues: dict[str, Any], name: str) -> None:
    if not isinstance(value, dict) or set(value) != set(issues):
        raise UserError(f"{name}: one option for each issue ({', '.join(issues)})")
    for issue, option in value.items():
        if option not in issues[issue]["enum"]:
            raise UserError(f"{name}.{issue}: not an option ({json.dumps(option)[:40]})")
