"""Facilitator tags on events: runs/<id>/annotations.jsonl, append-only, exported as CSV.

A later line about the same event does not overwrite an earlier one; removing a tag is a
line of its own (`"removed": true` naming the tag's id), so the file is a full history.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import RunError, UserError
from ..run import RunDir, first_error, read_jsonl

TAGS = ("anchor", "concession", "threat", "red_line", "walk_away_revealed", "turning_point")
FILE = "annotations.jsonl"


class Annotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    seq: int = Field(ge=0)
    tag: str = Field(pattern=r"^[a-z][a-z0-9_ -]{0,39}$")
    note: str = Field("", max_length=4000)
    author: str = Field("facilitator", max_length=80)
    ts: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    removed: bool = False


def add_annotation(
    run_dir: Path, seq: int, tag: str, note: str = "", author: str = "facilitator"
) -> Annotation:
    """Append one tag; the event must exist (in a log that reads whole: a RunError names
    a damaged line, rather than a tag pointing into a hole)."""
    events, _ = RunDir(run_dir).read_events()
    if not any(e["seq"] == seq for e in events):
        raise UserError(f"{run_dir.name} has no event {seq}")
    tag = tag.strip().lower().replace(" ", "_")
    try:
        ann = Annotation(seq=seq, tag=tag, note=note, author=author)
    except ValueError as exc:
        raise UserError(f"bad tag {tag!r}: {exc}") from None
    _append(run_dir, ann)
    return ann


def remove_annotation(run_dir: Path, ann_id: str) -> None:
    current = {a["id"]: a for a in read_annotations(run_dir)}
    if ann_id not in current:
        raise UserError(f"no tag {ann_id!r} in {run_dir.name}")
    a = current[ann_id]
    _append(run_dir, Annotation(id=ann_id, seq=a["seq"], tag=a["tag"], removed=True))


def _append(run_dir: Path, ann: Annotation) -> None:
    path = run_dir / FILE
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(ann.model_dump_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc.strerror}") from None


def read_annotations(run_dir: Path) -> list[dict[str, Any]]:
    """The tags in force: every line in order, minus those later removed. A line that is not
    a tag is a RunError naming it (a cut last line is dropped, as in events.jsonl)."""
    lines = read_jsonl(run_dir / FILE, _check).items
    removed = {a["id"] for a in lines if a["removed"]}
    return [a for a in lines if not a.get("removed") and a["id"] not in removed]


class _Saved(Annotation):
    """A line of the file: its id and time were given when it was written, never made up."""

    id: str
    ts: str


def _check(data: object) -> dict[str, Any]:
    try:
        return _Saved.model_validate(data, strict=True).model_dump()
    except ValidationError as exc:
        raise ValueError(first_error(exc)) from None


def to_csv(run_dir: Path) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["run_id", "id", "seq", "tag", "note", "author", "ts"])
    for a in read_annotations(run_dir):
        w.writerow(
            [
                run_dir.name,
                a["id"],
                a["seq"],
                a["tag"],
                _cell(a["note"]),
                _cell(a["author"]),
                a["ts"],
            ]
        )
    return buf.getvalue()


def _cell(text: str) -> str:
    """Free text for a spreadsheet: a leading = + - @ would be read as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def tag_counts(annotations: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in annotations:
        counts[a["tag"]] = counts.get(a["tag"], 0) + 1
    return dict(sorted(counts.items()))


def dumps(annotations: list[dict[str, Any]]) -> str:
    return json.dumps(annotations, indent=2)
