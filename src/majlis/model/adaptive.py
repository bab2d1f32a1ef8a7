"""Adaptive concurrency: how many calls an endpoint gets at once, found from its answers.

`Aimd` is the rule, with no clock and no event loop, so a table of events pins it down:
start modestly, add one after each window of clean replies (a window is as many replies as
the limit, so the limit grows by about one per round trip, as TCP's congestion window
does), cut it to three quarters on a refusal (a 429, 503 or 504, any answer with a
Retry-After, or a request timed out: see `openai_backend._overloaded`), never below one
nor above the ceiling. A burst of refusals counts once: requests are numbered as they are
sent, and a refusal of a request sent before the last cut says nothing new about the limit
already cut. The limit grows only when it was in use: a window in which fewer than half of
its slots were ever taken proves nothing about a larger one.

`AdaptiveLimit` is the asyncio side: a semaphore whose size is the rule's limit, which
also holds every new request back while the endpoint's Retry-After runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

START = 4  # calls at once before the endpoint has said anything
# The share of the limit kept after a refusal. TCP Reno halves; against a rate-limited
# endpoint (benchmarks/adaptive.py), halving left it under-used through much of each cycle
# and finished 0.87 of the sessions a minute that the best fixed setting did; keeping three
# quarters, 0.97, for twice the 429s (all retried). CUBIC keeps 0.7, Netflix's AIMD 0.9.
CUT = 0.75


class Aimd:
    """Additive increase, multiplicative decrease of a concurrency limit. `cut`: the share
    kept on a refusal (rounded down, so that every refusal above the floor lowers it)."""

    def __init__(
        self, start: int = START, ceiling: int = 64, floor: int = 1, cut: float = CUT
    ) -> None:
        self.floor, self.ceiling, self.cut = floor, max(floor, ceiling), cut
        self.limit = min(max(start, floor), self.ceiling)
        self.sent = 0  # requests numbered so far: the next one gets this ticket
        self.epoch = 0  # refusals of tickets below this were sent before the last cut
        self.clean = 0  # clean replies in the current window
        self.used = False  # whether at least half the limit was in flight this window

    def send(self, in_flight: int) -> int:
        """A request goes out, with `in_flight` requests (itself included) under way now:
        its ticket, to name it when its answer comes."""
        if 2 * in_flight >= self.limit:
            self.used = True
        self.sent += 1
        return self.sent - 1

    def replied(self) -> bool:
        """A clean reply. True if the limit changed (grew by one)."""
        self.clean += 1
        if self.clean < self.limit:
            return False
        grow = self.used and self.limit < self.ceiling
        self.clean, self.used = 0, False
        if grow:
            self.limit += 1
        return grow

    def refused(self, ticket: int | None) -> bool:
        """The request `ticket` was refused, or the endpoint could not keep up with it (a
        429, 503 or 504, a Retry-After, a timeout). True if the limit changed: cut, once
        for every request that was under way when it was sent."""
        if ticket is not None and ticket < self.epoch:
            return False  # one of the burst the last cut answered already
        self.epoch = self.sent
        self.clean, self.used = 0, False
        cut = max(self.floor, int(self.limit * self.cut))
        changed, self.limit = cut != self.limit, cut
        return changed


class AdaptiveLimit:
    """A semaphore sized by an `Aimd` rule. `async with limit as ticket:` takes a slot; the
    ticket goes back to `replied()` or `refused()` when the request's answer is known.
    `on_change(limit)` is called whenever the limit moves (for the progress line)."""

    def __init__(self, rule: Aimd, on_change: Callable[[int], None] | None = None) -> None:
        self.rule = rule
        self.busy = 0
        self.paused_until = 0.0  # monotonic time: the endpoint's Retry-After
        self.on_change = on_change
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self.rule.limit

    async def __aenter__(self) -> int:
        while True:
            pause = self.paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            if self.busy < self.rule.limit:
                break
            await self._wait()
        self.busy += 1
        return self.rule.send(self.busy)

    async def __aexit__(self, *exc: object) -> None:
        self.busy -= 1
        self._wake()

    async def _wait(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._wake()  # woken, then cancelled: the turn passes to the next waiter
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)

    def _wake(self) -> None:
        free = self.rule.limit - self.busy
        for fut in self._waiters:
            if free <= 0:
                break
            if not fut.done():
                fut.set_result(None)
                free -= 1

    def replied(self) -> None:
        if self.rule.replied():
            self._changed()
            self._wake()

    def refused(self, ticket: int | None, after: float | None) -> None:
        """A refusal: the limit is cut, and if the server named a wait, no new request
        starts before it ends (every one sent sooner would be refused too)."""
        if after is not None:
            self.paused_until = max(self.paused_until, time.monotonic() + after)
        if self.rule.refused(ticket):
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.rule.limit)
