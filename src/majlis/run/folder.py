"""The run folder: atomic JSON files, an append-only event log, and checked readers.

Run folders get copied, edited by hand and cut short, so every reader takes them through
here and a damaged one gets one line naming the file (and line), never a traceback:

- manifest.json and outcome.json pass their models, scenario.json `Snapshot` (read with
  `load_snapshot`, here, so that readers need not import what drives a session),
  annotations.jsonl `annotations.Annotation`; anything else is a RunError.
- Each line of events.jsonl must be an event (`log.check_event`). A cut last line is
  dropped and flagged: the writer died mid-line. Any other bad line is a RunError naming
  file and line for the readers that show, tag or compare a run (`read_events`: view,
  debrief, tags --add, compare, serve); `eval` leaves it out and lists it in its report
  (`read_log(skip=True)`), as scores of a log with a visible hole are still worth having.
- resume reads no events.jsonl: it rewrites it from checkpoint.sqlite, and refuses a
  checkpoint it cannot read (checkpoints.open_checkpoints, session._saved_state).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import RunError
from ..files import write_json_atomic, write_text_atomic
from ..scenario import AgentCard, LoadedScenario, Scenario
from .log import READABLE_VERSIONS, Manifest, Outcome, check_event, first_error


@dataclass
class JsonLines:
    """What a reader took from a JSON-lines file, and what it left out."""

    items: list[dict[str, Any]]
    cut: bool = False  # the last line was cut (the writer died mid-line) and dropped
    skipped: list[str] = field(default_factory=list)  # "<file>: line N: why", one a line


def read_jsonl(
    path: Path, check: Callable[[object], dict[str, Any]] | None = None, skip: bool = False
) -> JsonLines:
    """Every whole line of a JSON-lines file that is valid UTF-8, valid JSON and passes
    `check` (a JSON object, if none is given; it raises ValueError saying why not).

    A cut last line is dropped and flagged: the writer died mid-line, the lines before it
    stand. Any other bad line is damage: a RunError naming the file and line, or, with
    `skip`, left out and listed in `skipped` for the caller to report.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return JsonLines([])
    except OSError as exc:
        raise RunError(f"{path}: cannot read: {exc.strerror}") from None
    out = JsonLines([])
    lines = raw.split(b"\n")
    last = len(lines) - 1  # the part after the final newline: empty unless the line was cut
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            value = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, nested too deep
            if i == last:
                out.cut = True  # the writer died mid-line (or mid-character): keep the rest
                break
            why = _unparsed(exc)
        else:
            try:
                out.items.append((check or _object)(value))
                continue
            except ValueError as exc:
                why = str(exc)
        if not skip:
            raise RunError(f"{path}: line {i + 1}: {why}")
        out.skipped.append(f"{path}: line {i + 1}: {why}")
    return out


def _unparsed(exc: BaseException) -> str:
    """Why bytes did not parse, in words; never the bytes themselves."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not valid UTF-8 (byte {exc.start + 1})"
    if isinstance(exc, json.JSONDecodeError):
        at = f"line {exc.lineno} column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
        return f"not valid JSON ({exc.msg}: {at})"
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply to read"
    return f"not readable JSON ({exc})"  # e.g. an integer of more digits than Python reads


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


class RunDir:
    """runs/<run-id>/: manifest.json, scenario.json, events.jsonl, outcome.json, checkpoint.sqlite."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest_path = path / "manifest.json"
        self.scenario_path = path / "scenario.json"
        self.events_path = path / "events.jsonl"
        self.outcome_path = path / "outcome.json"
        self.checkpoint_path = path / "checkpoint.sqlite"

    @property
    def run_id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, runs_root: Path, run_id: str) -> RunDir:
        try:
            runs_root.mkdir(parents=True, exist_ok=True)
            path = runs_root / run_id
            path.mkdir()
        except FileExistsError:
            if not runs_root.is_dir():
                raise RunError(f"the runs folder {runs_root} is not a folder") from None
            raise RunError(f"{runs_root / run_id} already exists") from None
        except OSError as exc:
            raise RunError(f"cannot write the runs folder {runs_root}: {exc.strerror}") from None
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> RunDir:
        rd = cls(path)
        if not rd.manifest_path.exists():
            raise RunError(f"{path} is not a majlis run (no manifest.json)")
        return rd

    def write_manifest(self, manifest: Manifest) -> None:
        write_json_atomic(self.manifest_path, manifest)

    def read_manifest(self) -> Manifest:
        return _read_model(self.manifest_path, Manifest)

    def write_snapshot(self, loaded: LoadedScenario, home: Path) -> None:
        """scenario.json: the scenario and cards as this run plays them (`load_snapshot`)."""
        snapshot = Snapshot(
            home=str(home),
            source=str(loaded.files[0]),
            scenario=loaded.scenario,
            cards=loaded.cards,
        )
        write_json_atomic(self.scenario_path, snapshot.model_dump())

    def write_outcome(self, outcome: Outcome) -> None:
        write_json_atomic(self.outcome_path, outcome)

    def read_outcome(self) -> Outcome | None:
        return _read_model(self.outcome_path, Outcome) if self.outcome_path.exists() else None

    def append_events(self, events: list[dict[str, Any]]) -> None:
        """Append whole lines in one unbuffered write: a crash cuts at most the last line.

        No fsync per step: a resume trusts the checkpoint, not this file, and rewrites the
        file from it, so a kill loses nothing here, and lines written ahead of a checkpoint
        the kill lost are replaced. The file is synced once, when the run ends
        (`sync_events`).
        """
        if not events:
            return
        data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events).encode()
        fd = os.open(self.events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:  # unbuffered: each write goes straight to the file
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def sync_events(self) -> None:
        """fsync the event log: called once, when a run ends."""
        try:
            fd = os.open(self.events_path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rewrite_events(self, events: list[dict[str, Any]]) -> None:
        """Make events.jsonl equal to the checkpointed events (used on resume)."""
        lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events)
        write_text_atomic(self.events_path, lines)

    def read_events(self) -> tuple[list[dict[str, Any]], bool]:
        """The events and whether a cut last line was dropped; any other bad line is a
        RunError naming it: for readers that must not show or score a log with a hole."""
        log = self.read_log()
        return log.items, log.cut

    def read_log(self, skip: bool = False) -> JsonLines:
        """events.jsonl, every line checked against the Event model (log.check_event).
        With `skip`, a bad line is left out and listed instead of refused (eval)."""
        return read_jsonl(self.events_path, check_event, skip)


T = TypeVar("T", bound=BaseModel)


def read_json_object(path: Path) -> dict[str, Any]:
    """A run folder's JSON file, which must hold one object; else a RunError saying why."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))  # never guessed as UTF-16
    except FileNotFoundError:
        raise RunError(f"{path}: file not found") from None
    except OSError as exc:
        raise RunError(f"{path}: cannot read: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise RunError(f"{path}: cannot read: {_unparsed(exc)}") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: not a JSON object")
    return data


def _read_model(path: Path, model: type[T]) -> T:
    data = read_json_object(path)
    version = data.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise RunError(
            f"{path}: schema_version {version!r} is not one this majlis reads ({sorted(READABLE_VERSIONS)})"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RunError(f"{path}: {first_error(exc)}") from None


class Snapshot(BaseModel):
    """scenario.json: the scenario and cards exactly as the run used them."""

    home: str
    source: str
    scenario: Scenario
    cards: dict[str, AgentCard]


def load_snapshot(rd: RunDir) -> LoadedScenario:
    """The scenario exactly as the run used it, from the run folder; a RunError naming the
    file and field if it is not one (every reader scores the run against it)."""
    try:
        snap = Snapshot.model_validate(read_json_object(rd.scenario_path))
    except ValidationError as exc:
        raise RunError(f"{rd.scenario_path}: {first_error(exc)}") from None
    missing = [p for p in snap.scenario.parties if p not in snap.cards]
    if missing:
        raise RunError(f"{rd.scenario_path}: cards: no card for party {missing[0]!r}")
    return LoadedScenario(
        scenario=snap.scenario, cards=snap.cards, root=Path(snap.home), files=[Path(snap.source)]
    )
