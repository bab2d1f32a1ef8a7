"""Budgets: a ceiling on model calls, tokens and estimated cost, per session and per sweep.

A meter is charged after every real model call (a cached reply costs nothing) and checked
before the next; going over raises BudgetExceeded, which the session turns into a clean,
recorded end: the outcome says the run stopped at its budget. A meter is charged for
exactly the calls whose usage the transcript records (a failed turn's attempts too, and a
question or vote the budget cut short), so its charge and the events' sum agree.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import BudgetExceeded
from ..files import parse_file
from .usage import Usage


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0, description="USD per million prompt tokens.")
    output: float = Field(ge=0, description="USD per million completion tokens.")


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prices: dict[str, Price] = {}

    def cost(self, model: str, usage: Usage) -> float:
        price = self.prices.get(model)
        if price is None:
            return 0.0
        return (
            usage.prompt_tokens * price.input + usage.completion_tokens * price.output
        ) / 1_000_000


def load_prices(path: Path) -> PriceTable:
    return parse_file(path, PriceTable) if path.exists() else PriceTable()


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_calls: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    max_cost: float | None = Field(None, gt=0, description="USD, from the price table.")

    def is_set(self) -> bool:
        return any(v is not None for v in (self.max_calls, self.max_tokens, self.max_cost))


class Meter:
    """What has been spent against one budget (a session's, or a whole sweep's)."""

    def __init__(
        self, budget: Budget, prices: PriceTable | None = None, name: str = "session"
    ) -> None:
        self.budget, self.prices, self.name = budget, prices or PriceTable(), name
        self.calls = 0
        self.tokens = 0
        self.cost = 0.0

    def check(self) -> None:
        b = self.budget
        if b.max_calls is not None and self.calls >= b.max_calls:
            raise BudgetExceeded(
                f"{self.name} budget: {self.calls} model calls reached the limit of {b.max_calls}"
            )
        if b.max_tokens is not None and self.tokens >= b.max_tokens:
            raise BudgetExceeded(
                f"{self.name} budget: {self.tokens} tokens reached the limit of {b.max_tokens}"
            )
        if b.max_cost is not None and self.cost >= b.max_cost:
            raise BudgetExceeded(
                f"{self.name} budget: ${self.cost:.4f} reached the limit of ${b.max_cost}"
            )

    def charge(self, model: str, usage: Usage) -> None:
        self.calls += 1
        self.tokens += usage.tokens
        self.cost += self.prices.cost(model, usage)


class SharedMeter(Meter):
    """A meter whose totals live in shared memory: a sweep's worker processes charge one
    budget. Made before the workers start, which inherit it."""

    def __init__(
        self, budget: Budget, prices: PriceTable | None = None, name: str = "sweep", mp: Any = None
    ) -> None:
        self._spent = (mp or multiprocessing).Array("d", 3)  # calls, tokens, cost; with a lock
        super().__init__(budget, prices, name)

    calls = property(lambda self: int(self._spent[0]), lambda self, v: self._put(0, v))
    tokens = property(lambda self: int(self._spent[1]), lambda self, v: self._put(1, v))
    cost = property(lambda self: self._spent[2], lambda self, v: self._put(2, v))

    def _put(self, i: int, value: float) -> None:
        self._spent[i] = value

    def charge(self, model: str, usage: Usage) -> None:
        with self._spent.get_lock():  # one charge at a time across processes
            super().charge(model, usage)


class Spending:
    """A session's budget and price table, plus meters shared with other sessions (a sweep's)."""

    def __init__(
        self,
        budget: Budget | None = None,
        prices: PriceTable | None = None,
        shared: list[Meter] | None = None,
    ) -> None:
        self.budget = budget or Budget()
        self.prices = prices or PriceTable()
        self.shared = shared or []

    def meters(self) -> list[Meter]:
        own = [Meter(self.budget, self.prices)] if self.budget.is_set() else []
        return own + self.shared
