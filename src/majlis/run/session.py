"""Running and resuming a session: record its start, drive the graph, write the outcome.

Everything that can fail because of the user's input (files, flags, endpoints) is checked
before the run folder is made (`prepare`, then `Players`), so a refused run leaves nothing
behind in runs/. While the graph plays, each new event is appended to events.jsonl and
handed to the sink; a person's move pauses the graph and is asked for; a spent budget ends
the session cleanly; any other failure is recorded in the manifest and the run is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.types import Command

from ..errors import (
    KEPT,
    BudgetExceeded,
    EndpointError,
    EndpointFailed,
    RunError,
)
from ..model import error_line, refusal, retries_of, server_fault
from ..scenario import runs_home
from .checkpoints import open_checkpoints
from .folder import RunDir, load_snapshot
from .graph import build_graph
from .log import Manifest, Outcome
from .outcome import build_outcome
from .players import Players
from .preparation import (
    Prepared,
    RunOptions,
    prepare,
)
from .provenance import answered_in, new_manifest, new_run_id, now, party_config
from .spans import SessionTrace
from .state import Deps, LiveHooks, initial_state

if TYPE_CHECKING:
    from ..model import Activity, EndpointLimits, ResponseCache, Spending

EventSink = Callable[[dict[str, Any]], None]
AskHuman = Callable[
    [dict[str, Any]], dict[str, Any]
]  # an interrupt's payload -> the person's answer


@dataclass
class RunResult:
    run_dir: RunDir
    manifest: Manifest
    outcome: Outcome


async def run_session(
    run: RunOptions | Prepared,
    sink: EventSink | None = None,
    ask_human: AskHuman | None = None,
    live: LiveHooks | None = None,
) -> RunResult:
    """Run one negotiation from the first round to its outcome. Given options, it prepares
    them first; given a `Prepared` run, it loads nothing again. `live`: a facilitator's
    hooks into the nodes (pause, injects pushed now), for a session played live."""
    prepared = run if isinstance(run, Prepared) else prepare(run)
    opts = prepared.opts
    players = Players(
        prepared.loaded,
        opts.variant,
        prepared.configs,
        opts.cache,
        opts.limits,
        opts.spending,
        opts.context,
        opts.activity,
    )
    async with players:
        run_id = opts.run_id or new_run_id(prepared.loaded.scenario.id)
        rd = RunDir.create(opts.runs_root or runs_home(opts.home) / "runs", run_id)
        rd.write_snapshot(prepared.loaded, prepared.home)
        manifest = new_manifest(run_id, prepared, players)
        rd.write_manifest(manifest)
        return await drive(rd, manifest, players, True, sink, ask_human, live)


async def resume_session(
    path: Path,
    sink: EventSink | None = None,
    cache: ResponseCache | None = None,
    limits: EndpointLimits | None = None,
    ask_human: AskHuman | None = None,
    spending: Spending | None = None,
    activity: Activity | None = None,
) -> RunResult:
    """Finish an interrupted run from its last checkpoint."""
    rd = RunDir.open(path)
    manifest = rd.read_manifest()
    if manifest.status == "complete":
        raise RunError(f"run {rd.run_id} is already complete")
    players = Players(
        load_snapshot(rd),
        manifest.variant,
        {p: party_config(m) for p, m in manifest.parties.items()},
        cache,
        limits,
        spending,
        manifest.context_policy,
        activity,
        # `auto` goes on in the dialect the run found, rather than find it again
        dialects={p: m.structured_used for p, m in manifest.parties.items() if m.structured_used},
    )
    changed = [
        n for n, h in players.templates.used.items() if manifest.prompts.get(n) not in (None, h)
    ]
    if changed:
        raise RunError(
            f"prompt template {changed[0]} changed since run {rd.run_id} started; cannot resume it exactly"
        )
    async with players:
        manifest = manifest.model_copy(update={"status": "running", "error": None})
        rd.write_manifest(manifest)
        return await drive(rd, manifest, players, fresh=False, sink=sink, ask_human=ask_human)


async def drive(
    rd: RunDir,
    manifest: Manifest,
    players: Players,
    fresh: bool,
    sink: EventSink | None,
    ask_human: AskHuman | None = None,
    live: LiveHooks | None = None,
) -> RunResult:
    """Play a run whose folder and manifest are written to its end and record the outcome:
    from the first step (`fresh`), or from the latest checkpoint in its checkpoint.sqlite
    (a resume, or a fork whose checkpoints were planted there). `live`: a facilitator's
    hooks into the nodes."""
    deps = players.deps()
    deps.trace = trace = SessionTrace.begin(manifest, fresh)
    deps.live = live
    try:
        final = await _play(rd, manifest.run_id, deps, fresh, _Log(rd, sink), ask_human)
    except BaseException as exc:
        trace.close(exc)
        _record_failure(
            rd, manifest.model_copy(update={"parties": answered_in(manifest, players)}), exc, fresh
        )
        raise
    outcome = build_outcome(players.loaded, final, manifest.failed_call_retries)
    trace.close(outcome=outcome)
    rd.write_outcome(outcome)
    manifest = manifest.model_copy(
        update={"status": "complete", "finished": now(), "parties": answered_in(manifest, players)}
    )
    rd.write_manifest(manifest)
    return RunResult(rd, manifest, outcome)


class _Log:
    """events.jsonl as the graph plays: it holds seq 0..written-1, and gets each new event
    once, which then goes to the sink."""

    def __init__(self, rd: RunDir, sink: EventSink | None) -> None:
        self.rd, self.sink = rd, sink
        self.written = 0

    def reset(self, events: list[dict[str, Any]]) -> None:
        """Make the file hold exactly these events (the checkpoint's)."""
        self.rd.rewrite_events(events)
        self.written = len(events)

    def add(self, events: list[dict[str, Any]] | None) -> None:
        new = [e for e in events or [] if e["seq"] >= self.written]
        if new:
            self.rd.append_events(new)
            self.written = new[-1]["seq"] + 1
            for event in new:
                if self.sink:
                    self.sink(event)


async def _play(
    rd: RunDir, run_id: str, deps: Deps, fresh: bool, log: _Log, ask_human: AskHuman | None
) -> dict[str, Any]:
    """Play the graph to its end, from the start or (not `fresh`) from the checkpoint, and
    return its final state; a person's moves are asked for between stretches."""
    config: Any = {"configurable": {"thread_id": run_id}}
    with open_checkpoints(rd.checkpoint_path) as saver:
        graph = build_graph(saver)
        inp: Any = initial_state()
        final: dict[str, Any] | None = None
        # On resume the checkpoint may already hold the writes of a step cut before its
        # checkpoint, which the stream replays: an event is appended only if the file does
        # not hold it yet.
        if not fresh:
            snap = await _saved_state(graph, config, rd)
            log.reset(snap.values.get("events", []) if snap.values else [])
            inp = None if snap.values else inp
        while True:  # one pass per stretch between a person's moves
            try:
                asked, final = await _stretch(graph, inp, config, deps, log)
            except BudgetExceeded as exc:  # end cleanly: the graph's own end node records it
                log.reset((await graph.aget_state(config)).values.get("events", []))
                stop = {"done": True, "stopped": str(exc)}
                await graph.aupdate_state(config, stop, as_node="adjudicate")
                inp = None
                continue
            if asked is None:
                break
            if ask_human is None:
                raise RunError(f"run {rd.run_id} waits for a person to play {asked['party']}")
            inp = Command(resume=await _ask_aside(ask_human, asked))
        if final is None:  # nothing ran: a resume of a session that had ended
            final = (await graph.aget_state(config)).values
    rd.sync_events()
    return final


async def _ask_aside(ask_human: AskHuman, asked: dict[str, Any]) -> Any:
    """`ask_human(asked)` in a daemon thread of its own. Not the loop's executor: its
    threads are joined at exit, so a Ctrl-C at a terminal prompt (or a live page never
    answered) would leave the process waiting for an answer no one will give."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not answer.done():
            (answer.set_result if ok else answer.set_exception)(value)

    def work() -> None:
        try:
            ok, value = True, ask_human(asked)
        except BaseException as exc:
            ok, value = False, exc
        with contextlib.suppress(RuntimeError):  # the loop closed: no one waits any more
            loop.call_soon_threadsafe(settle, ok, value)

    threading.Thread(target=work, name="majlis-ask", daemon=True).start()
    return await answer


async def _stretch(
    graph: Any, inp: Any, config: Any, deps: Deps, log: _Log
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Stream the graph until it ends or waits for a person: what the person is asked (or
    None) and the final state (None if it did not end), each new event logged on the way."""
    asked = final = None
    # durability="async": a step's checkpoint is written while the next step waits on its
    # model call, not before it starts. A kill can lose the last step's checkpoint; resume
    # then runs that step again. The state's values come along with each update, so the
    # final state need not be read back from the checkpoints (and the log rebuilt).
    async for mode, update in graph.astream(
        inp, config, context=deps, durability="async", stream_mode=["updates", "values"]
    ):
        if mode == "values":
            final = None if "__interrupt__" in update else update
            continue
        if "__interrupt__" in update:
            asked = update["__interrupt__"][0].value
            continue
        for delta in update.values():
            log.add(delta.get("events") if isinstance(delta, dict) else None)
    return asked, final


def _record_failure(rd: RunDir, manifest: Manifest, exc: BaseException, fresh: bool) -> None:
    """Mark the run failed in its manifest, saying why, and note its folder on the error.
    A fresh run turned away at its first call is instead removed: an EndpointError."""
    refused = refusal(exc)
    if fresh and refused and not _any_reply(rd):
        # turned away at the first call (a wrong model name, a base URL without the chat
        # route): the user's error, and nothing in the folder worth keeping
        shutil.rmtree(rd.path, ignore_errors=True)
        raise EndpointError(
            f"the first model call was refused, no run recorded: {refused}"
        ) from None
    if fresh and server_fault(exc) and not _any_reply(rd):
        # the server failed the first call through every retry: its fault, not the user's
        # (exit 1), and a folder holding no reply is not worth a resume (the same command
        # again does as much)
        shutil.rmtree(rd.path, ignore_errors=True)
        raise EndpointFailed(
            f"the first model call failed, no run recorded: {error_line(exc)}"
        ) from exc
    reason = (
        "interrupted"
        if isinstance(exc, KeyboardInterrupt | GeneratorExit | asyncio.CancelledError)
        else error_line(exc)
    )
    exc.add_note(f"{KEPT} {rd.path}")  # for the one line the command line prints
    update = {
        "status": "failed",
        "error": reason[:500],
        "finished": now(),
        # the call that stopped the run has no event: its retries are kept here
        "failed_call_retries": [*manifest.failed_call_retries, *retries_of(exc)],
    }
    rd.write_manifest(manifest.model_copy(update=update))


async def _saved_state(graph: Any, config: Any, rd: RunDir) -> Any:
    """The state a resume starts from; a RunError naming checkpoint.sqlite if a damaged
    page or record keeps it from being read (nothing has run yet: nothing is lost)."""
    try:
        return await graph.aget_state(config)
    except (sqlite3.DatabaseError, ValueError) as exc:
        raise RunError(f"{rd.checkpoint_path}: cannot read the checkpoints: {exc}") from None


def _any_reply(rd: RunDir) -> bool:
    """Whether any model call of the run was answered (its event carries usage). When the
    log cannot be read, the answer is yes: the folder is kept rather than lost."""
    try:
        lines = rd.events_path.read_text(encoding="utf-8").splitlines()
        return any(json.loads(x).get("usage") for x in lines if x.strip())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
