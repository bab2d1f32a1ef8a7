"""Tokens spent by model calls: the one place they are added up."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens: what a token budget counts."""
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def total(cls, parts: Iterable[Usage | Mapping[str, Any]]) -> Usage:
        """The sum of usages, given as models or as the dicts a run log holds."""
        out = cls()
        for part in parts:
            out += part if isinstance(part, Usage) else cls.model_validate(part)
        return out
