"""Narrated play: the scripted negotiator decides, a language model puts it into words.

A deterministic offer generator paired with an LLM narrator (the design of OG-Narrator,
arXiv 2402.15813) gives a coherent game even on a tiny model, and a controlled opponent
for workshops. The scripted player reads the party's own prompt, exactly as an LLM would,
and decides the structured move (positions, proposal, side-talk target) and the vote; the
model is then asked only for the public message and the side note, given the decision.
Votes make no model call. The manifest marks such a party as `narrated`.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ..errors import ModelBehaviourError
from ..model import Answer, ModelClient, Reply, Usage, scripted
from ..protocol import (
    canonical_move,
    canonical_vote,
    compact_move,
    narration_model,
    strict_schema,
)

# (the move's messages, the decided move) -> the messages that ask for its words
Narration = Callable[[list[dict[str, str]], dict[str, Any]], list[dict[str, str]]]


@functools.cache
def _schema(with_side: bool, plain: bool) -> dict[str, Any]:
    return strict_schema(narration_model(with_side, plain))


class NarratedClient:
    """Stands where a model client stands; decides with the scripted player, speaks with
    `narrator`."""

    narrated = True

    def __init__(self, narrator: ModelClient, narration: Narration, style: str = "scripted"):
        self.narrator = narrator
        self.narration = narration
        self.style = style
        self.config = narrator.config
        self.backend = narrator.backend

    def decide(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """The scripted player's answer to these very messages, in the prompt's shape."""
        return json.loads(scripted.respond(messages, self.style, self.config.seed))

    async def ask(
        self, messages: list[dict[str, str]], output: type[BaseModel], schema: dict[str, Any]
    ) -> Answer[Any]:
        start = time.perf_counter()
        decided = self.decide(messages)
        if "vote" in decided:  # a vote is the player's alone: no model call
            value = output.model_validate(decided)
            reply = Reply(
                json.dumps(canonical_vote(decided)),
                Usage(),
                f"scripted-{uuid.uuid4().hex[:12]}",
                (time.perf_counter() - start) * 1000,
                "scripted",
            )
            return Answer(value=value, reply=reply, attempts=0, usage=Usage())  # no call made
        move = canonical_move(decided)
        side = move["side_message"]
        compact = "public_message" not in decided
        # plain sentences for the compact profile, as its moves are; any text for the full
        words_model = narration_model(side is not None, plain=compact)
        try:
            words = await self.narrator.ask(
                self.narration(messages, move), words_model, _schema(side is not None, compact)
            )
        except ModelBehaviourError as exc:
            # the decision stands; the scripted player's own words say it, and its note says so
            note = " (own words: the narration failed)"
            move["private_reasoning"] = move["private_reasoning"][: 119 - len(note)] + note
            shaped = compact_move(move) if compact else move
            # the narrator's failed attempts were real calls: the move's event counts them
            spent = exc.usage if exc.usage is not None else Usage()
            call_id = exc.call_id or f"scripted-{uuid.uuid4().hex[:12]}"
            reply = Reply(exc.raw or "", spent, call_id, exc.latency_ms or 0.0)
            return Answer(output.model_validate(shaped), reply, exc.attempts, spent)
        move["public_message"] = words.value.message  # type: ignore[attr-defined]
        if side is not None:
            move["side_message"] = {"to": side["to"], "text": words.value.side}  # type: ignore[attr-defined]
        shaped = compact_move(move) if compact else move
        return Answer(
            value=output.model_validate(shaped),
            reply=words.reply,
            attempts=words.attempts,
            usage=words.usage,
        )
