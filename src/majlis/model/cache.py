"""A response cache in SQLite, so a re-run or a re-evaluation costs no model calls.

A reply is keyed by endpoint, model, messages, schema, sampling parameters and seed, plus
a *sample index*: the n-th identical request within one session gets the n-th stored
reply, so a session that asks the same thing twice replays both answers in order.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .usage import Usage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT NOT NULL, sample INTEGER NOT NULL, text TEXT NOT NULL, usage TEXT NOT NULL,
    call_id TEXT NOT NULL, model TEXT, fingerprint TEXT, created REAL NOT NULL,
    PRIMARY KEY (key, sample)
)
"""
# Why each reply ended (stop, length, ...), for its call's span on a replay: a table of its
# own rather than a new column of `replies`, so that a file an older majlis also writes to
# (a second checkout's sweep) keeps the shape that one inserts into.
_FINISH = """
CREATE TABLE IF NOT EXISTS finish_reasons (
    key TEXT NOT NULL, sample INTEGER NOT NULL, finish_reason TEXT NOT NULL,
    PRIMARY KEY (key, sample)
)
"""


def request_key(parts: dict[str, Any]) -> str:
    """A stable digest of everything that shapes a reply (never the API key)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0

    def __str__(self) -> str:
        total = self.hits + self.misses
        rate = f"{100 * self.hits / total:.0f}%" if total else "n/a"
        return f"cache: {self.hits} hit(s), {self.misses} miss(es), hit rate {rate}"


class ResponseCache:
    """One SQLite file shared by every session of a process (thread-safe, WAL mode)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # Sweep workers open the file at the same moment. Switching a new file to WAL takes
        # an exclusive lock and SQLite answers "database is locked" at once, without its
        # busy timeout, to the others: they wait a moment and ask again.
        for attempt in range(100):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.execute(_FINISH)
        self._lock = threading.Lock()
        self.stats = CacheStats()

    def get(self, key: str, sample: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT r.text, r.usage, r.call_id, r.model, r.fingerprint, f.finish_reason"
                " FROM replies r LEFT JOIN finish_reasons f USING (key, sample)"
                " WHERE r.key=? AND r.sample=?",
                (key, sample),
            ).fetchone()
        if row is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return {
            "text": row[0],
            "usage": Usage.model_validate_json(row[1]),
            "call_id": row[2],
            "model": row[3],
            "fingerprint": row[4],
            "finish_reason": row[5],
        }

    def put(
        self,
        key: str,
        sample: int,
        text: str,
        usage: Usage,
        call_id: str,
        model: str | None,
        fingerprint: str | None,
        finish_reason: str | None = None,
    ) -> None:
        # one transaction: the connection commits it at the block's end, or rolls it back
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")  # the write lock now, by the busy timeout
            self._db.execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    sample,
                    text,
                    usage.model_dump_json(),
                    call_id,
                    model,
                    fingerprint,
                    time.time(),
                ),
            )
            if finish_reason is None:  # a reply replaced: no older reason stays
                self._db.execute(
                    "DELETE FROM finish_reasons WHERE key=? AND sample=?", (key, sample)
                )
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO finish_reasons VALUES (?, ?, ?)",
                    (key, sample, finish_reason),
                )

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass
class SampleCounter:
    """Per-session count of identical requests: the sample index of the next one."""

    seen: Counter[str] = field(default_factory=Counter)

    def next(self, key: str) -> int:
        n = self.seen[key]
        self.seen[key] += 1
        return n
