"""What the model is doing right now, for the live view: reading a prompt or writing a reply.

The embedded model runs in this process, so its generation loop can report each token as
it comes. The live view reads a snapshot whenever it redraws; nothing waits on anyone.
A model behind a remote endpoint reports nothing here, and the view shows only the time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Snapshot:
    busy: bool
    prompt_tokens: int  # tokens of the prompt being read (0 when unknown)
    tokens: int  # reply tokens written so far
    elapsed_s: float  # since the call started
    tokens_per_s: float  # writing speed, from the first reply token on


class Activity:
    """A thread-safe meter of the current generation: begin, a token at a time, end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._prompt = 0
        self._tokens = 0
        self._start = 0.0
        self._first = 0.0  # when the first reply token came
        self._last = 0.0

    def begin(self, prompt_tokens: int = 0) -> None:
        with self._lock:
            self._busy, self._prompt, self._tokens = True, prompt_tokens, 0
            self._start = time.monotonic()
            self._first = self._last = 0.0

    def token(self) -> None:
        now = time.monotonic()
        with self._lock:
            if not self._tokens:
                self._first = now
            self._tokens += 1
            self._last = now

    def end(self) -> None:
        with self._lock:
            self._busy = False

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = time.monotonic()
            writing = self._last - self._first
            rate = (self._tokens - 1) / writing if self._tokens > 1 and writing > 0 else 0.0
            return Snapshot(
                busy=self._busy,
                prompt_tokens=self._prompt,
                tokens=self._tokens,
                elapsed_s=(now - self._start) if self._busy else 0.0,
                tokens_per_s=rate,
            )
