"""Transport retries as a run records them: `RetryNote` (one request sent again: why, and
how long before), their totals, the rules for how long to wait that need no SDK (backoff,
Retry-After), and `noting_retries`, which gathers every note of one question however many
requests it takes.

Its own module, free of the openai SDK, because the run log's models hold these notes and
the commands that only read runs (view, tags, validate) must start without the SDK.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# the openai SDK's schedule: 0.5 s doubling to at most 8 s, less up to 25% jitter; a
# server's own Retry-After is honoured up to two minutes, and a longer one is not waited for
FIRST_WAIT, LAST_WAIT = 0.5, 8.0
MAX_RETRY_AFTER = 120.0


class RetryNote(BaseModel):
    """One request of a call sent again after a transport fault."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str = Field(
        description="Why: the HTTP status ('429', '500', '503', ...), 'timeout', "
        "'connection' (refused, or dropped mid-reply), 'cut_body' (a 200 whose body is not "
        "valid JSON) or 'bad_body' (valid JSON but no chat completion)."
    )
    status: int | None = Field(None, description="The HTTP status, when the server answered.")
    wait_s: float = Field(
        description="Seconds between the fault and the request sent again: the backoff or "
        "the server's Retry-After, and after a timeout the wait for the server to be free."
    )


class RetryTotals(BaseModel):
    """A run's transport retries, added up: how many, of which kinds, and the time waited."""

    model_config = ConfigDict(extra="forbid")
    count: int = 0
    by_kind: dict[str, int] = Field(default_factory=dict)
    wait_s: float = 0.0

    @classmethod
    def of(cls, notes: Iterable[RetryNote | Mapping[str, Any]]) -> RetryTotals:
        """The totals of notes, given as models or as the dicts a run log holds."""
        by_kind: dict[str, int] = {}
        wait = 0.0
        for n in notes:
            note = n if isinstance(n, RetryNote) else RetryNote.model_validate(n)
            by_kind[note.kind] = by_kind.get(note.kind, 0) + 1
            wait += note.wait_s
        return cls(
            count=sum(by_kind.values()),
            by_kind=dict(sorted(by_kind.items())),
            wait_s=round(wait, 3),
        )

    def line(self) -> str:
        """In words, for the terminal: `3 (429: 1, timeout: 2), 4.2 s waited`."""
        kinds = ", ".join(f"{k}: {n}" for k, n in self.by_kind.items())
        return f"{self.count} ({kinds}), {self.wait_s:.1f} s waited"


def backoff(retries_so_far: int) -> float:
    """The wait before retry n+1 when the server names none."""
    return min(FIRST_WAIT * 2.0**retries_so_far, LAST_WAIT) * (1 - 0.25 * random.random())


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The server's own wait, in seconds, read as the SDK reads it: `retry-after-ms`, then
    `retry-after` as seconds or as an HTTP date; None if it names none."""
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) / divisor
        except ValueError:
            continue
    try:
        when = email.utils.parsedate_tz(headers.get("retry-after") or "")
        return None if when is None else float(email.utils.mktime_tz(when) - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


_NOTES: ContextVar[list[RetryNote] | None] = ContextVar("majlis_retry_notes", default=None)


@contextlib.contextmanager
def noting_retries() -> Iterator[list[RetryNote]]:
    """The transport retries of every request made inside, in order: one question's, over
    all its attempts (a reply that does not validate is asked again, and each request may
    meet faults of its own). An error that leaves the block carries them all as `retries`,
    so a run stopped by it can still record what the call went through."""
    notes: list[RetryNote] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    except Exception as exc:
        exc.retries = list(notes)  # type: ignore[attr-defined]
        raise
    finally:
        _NOTES.reset(token)


def note_retry(note: RetryNote) -> None:
    """Hand a note to the `noting_retries` block this request runs in, if any."""
    notes = _NOTES.get()
    if notes is not None:
        notes.append(note)


def retries_of(exc: BaseException) -> list[RetryNote]:
    """The transport retries a failed call carried up with its error (none if it has none)."""
    return list(getattr(exc, "retries", None) or [])
