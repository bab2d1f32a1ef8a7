"""One error hierarchy: the CLI turns a `UserError` into one line and exit code 2."""

from __future__ import annotations

from typing import Any


class MajlisError(Exception):
    """Base of every error majlis raises on purpose."""


class UserError(MajlisError):
    """Something the user can fix: a file, a flag, an endpoint. Exit code 2."""

    exit_code = 2


class ScenarioError(UserError):
    """A scenario, agent card or prompt template is invalid; names the file and field."""

    def __init__(self, path: object, field: str | None, message: str) -> None:
        self.path = str(path)
        self.field = field
        self.message = message
        where = f"{self.path}: {field}" if field else self.path
        super().__init__(f"{where}: {message}")


class EndpointError(UserError):
    """A model endpoint cannot be reached or refuses us (dead URL, wrong key)."""


class EndpointFailed(MajlisError):
    """A run's first model call failed on the server's side (5xx, no reply, a timeout) after
    every retry: not the user's error (exit 1), and nothing recorded is worth keeping."""


class RunError(UserError):
    """A run folder is missing, unreadable or not resumable."""


class ModelBehaviourError(MajlisError):
    """The model kept answering with output that does not fit the move schema.

    It carries what the failed attempts cost, so that the failed turn's event records it:
    `usage` is a `majlis.model.Usage` (typed loosely, since this module sits below the
    model layer) summed over every attempt, and `call_id` and `latency_ms` are the last
    attempt's, as for an answer that validated. `stopped` is the budget's message when the
    budget ran out before a re-ask: the session stops there too."""

    def __init__(
        self,
        message: str,
        raw: str | None = None,
        attempts: int = 0,
        *,
        usage: Any = None,
        call_id: str | None = None,
        latency_ms: float | None = None,
        stopped: str | None = None,
    ) -> None:
        super().__init__(message)
        self.raw = raw
        self.attempts = attempts
        self.usage = usage
        self.call_id = call_id
        self.latency_ms = latency_ms
        self.stopped = stopped


class BudgetExceeded(MajlisError):
    """A call, token or cost budget ran out; the session stops with a recorded status."""


KEPT = "the run is kept, to go on with: majlis resume"


def kept(exc: BaseException) -> str:
    """The note a failed run's error carries, naming its folder; empty if it has none.
    Looked for along the chain too: Ctrl-C reaches a session as its task's cancellation,
    which carries the note, and asyncio.run then raises a fresh KeyboardInterrupt from it."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        note = next((n for n in getattr(link, "__notes__", []) if n.startswith(KEPT)), "")
        if note:
            return note
        link = link.__cause__ or link.__context__
    return ""
