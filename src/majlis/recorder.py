"""The run folder: atomic JSON files, an append-only event log, and tolerant readers."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from .errors import RunError
from .log import READABLE_VERSIONS, Manifest, Outcome


def write_json_atomic(path: Path, data: Any) -> None:
    """Write through a temporary file in the same folder and rename it into place."""
    text = (
        data.model_dump_json(indent=2)
        if isinstance(data, BaseModel)
        # orjson: the json module indents in pure Python, a millisecond or more per file
        else orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; run files are meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """Every whole line of a JSON-lines file, and whether a cut last line was dropped."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], False
    lines = raw.split("\n")
    out: list[dict[str, Any]] = []
    cut = False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i >= len(lines) - 2 and not raw.endswith("\n"):
                cut = True  # the writer died mid-line: keep what came before
                break
            raise RunError(f"{path}: line {i + 1} is not valid JSON") from None
    return out, cut


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
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".events.", suffix=".tmp")
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.events_path)

    def read_events(self) -> tuple[list[dict[str, Any]], bool]:
        return read_jsonl(self.events_path)


T = TypeVar("T", bound=BaseModel)


def _read_model(path: Path, model: type[T]) -> T:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: file not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: cannot read: {exc}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_VERSIONS:
        raise RunError(
            f"{path}: schema_version {version!r} is not one this majlis reads ({sorted(READABLE_VERSIONS)})"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RunError(f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
