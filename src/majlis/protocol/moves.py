"""What a model must answer: a move on its turn, a vote on the standing proposal.

The models are built per scenario and party, so option ids and side-talk recipients are
enums: a constrained decoder can only produce valid ids, and pydantic rejects the rest.

Two shapes, one per prompt profile. The full move is what a capable model is asked for.
The compact move is what a small local model can produce: short keys, text fields that a
pattern holds to plain sentences of bounded length (a grammar-constrained decoder cannot
emit a brace, a tag or a quote in them), a proposal that is a yes or no on the positions
just given, and a vote that is a choice with a one-line reason. `canonical_move` and
`canonical_vote` turn either shape into the one the graph records.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..scenario import Scenario

Text = Annotated[str, Field(min_length=1, max_length=1200)]

Thought = Annotated[str, Field(max_length=1200)]

# What a reader can take for a sentence: five words or more, and none of the characters
# that betray JSON, markup or code (the rule the first-session figures are measured by).
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_NOT_PROSE = re.compile(r"[{}<>\[\]\\|`]|\"\s*:")


def readable(text: str) -> bool:
    """Whether a public message reads as a sentence: at least five words, and no `{`, `<`,
    brackets or JSON fragments such as `"key":`."""
    return len(_WORD.findall(text)) >= 5 and not _NOT_PROSE.search(text)


class Vote(BaseModel):
    """A secret vote on the standing proposal."""

    model_config = ConfigDict(extra="forbid")
    private_reasoning: Thought
    vote: Literal["accept", "reject"]


_MOVE_MODELS: dict[tuple[str, str], type[BaseModel]] = {}


def move_model(scenario: Scenario, party: str) -> type[BaseModel]:
    """The Move model for one party of one scenario (built once, then cached)."""
    key = (scenario.model_dump_json(include={"parties", "agenda"}), party)
    if key not in _MOVE_MODELS:
        _MOVE_MODELS[key] = _build_move_model(scenario, party)
    return _MOVE_MODELS[key]


def _package_and_side(
    scenario: Scenario,
    party: str,
    names: tuple[str, str],
    text: Any,
    scores: dict[str, dict[str, int]] | None = None,
) -> tuple[type[BaseModel], type[BaseModel]]:
    """A Move's package (one enum per issue) and side-message models, named `names`. Given a
    party's `scores`, each issue's options are listed best first for it, without the issue's
    title; otherwise in the scenario's order, each issue described by its title."""
    issues: dict[str, Any] = {}
    for issue in scenario.agenda:
        if scores is None:
            issues[issue.id] = (Literal[tuple(issue.option_ids())], Field(description=issue.title))
            continue
        table = scores.get(issue.id, {})
        ids = sorted(issue.option_ids(), key=lambda o, t=table: -t.get(o, 0))
        issues[issue.id] = (Literal[tuple(ids)], ...)
    package = create_model(names[0], __config__=_FORBID, **issues)
    others = tuple(p for p in scenario.parties if p != party)
    side = create_model(names[1], __config__=_FORBID, to=(Literal[others], ...), text=(text, ...))
    return package, side


_FORBID = ConfigDict(extra="forbid")


def _build_move_model(scenario: Scenario, party: str) -> type[BaseModel]:
    package, side = _package_and_side(scenario, party, ("Package", "SideMessage"), Text)
    return create_model(
        "Move",
        __config__=_FORBID,
        __doc__="One party's turn: private thinking, public words and positions, options.",
        private_reasoning=(Thought, ...),
        private_positions=(package, ...),
        public_message=(Text, ...),
        positions=(package, ...),
        proposal=(package | None, ...),
        side_message=(side | None, ...),
    )


# Length bounds stay in pydantic: as grammar rules they blow up (one nested rule per char).
_DROPPED = {"title", "default", "maxLength", "minLength"}


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A JSON schema every dialect accepts: refs inlined, all keys required, no extras."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(copy.deepcopy(defs[node["$ref"].split("/")[-1]]))
            out = {k: walk(v) for k, v in node.items() if k not in _DROPPED}
            if out.get("type") == "object":
                out["additionalProperties"] = False
                out["required"] = list(out.get("properties", {}))
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


# Plain sentences: a capital, then 5 to 30 words of letters, digits, ' _ or -, separated by
# single spaces (a comma, semicolon, colon or full stop may end a word), closed by . ! or ?.
# Words are at most 40 characters, so the pattern itself bounds the length.
SENTENCE = r"^[A-Z][A-Za-z0-9'_-]{0,39}([,;:.]? [A-Za-z0-9'_-]{1,40}){4,29}[.!?]$"
# One line of private reasoning or a vote's reason: plain characters, no braces or tags.
LINE = r"^[A-Z][A-Za-z0-9 ',;:.()%/_-]{4,119}$"
Sentence = Annotated[str, Field(max_length=1300, pattern=SENTENCE)]
Line = Annotated[str, Field(max_length=120, pattern=LINE)]


class CompactVote(BaseModel):
    """A secret vote, compact: the choice first, then one line of why."""

    model_config = ConfigDict(extra="forbid")
    vote: Literal["accept", "reject"]
    reason: Line


_COMPACT_MODELS: dict[tuple[str, str, str], type[BaseModel]] = {}


def compact_move_model(
    scenario: Scenario, party: str, scores: dict[str, dict[str, int]]
) -> type[BaseModel]:
    """The compact Move for one party. Each issue's options are listed best first by the
    party's own scores: a small model leans toward the first option of an enum, and this
    way it leans toward its own interest. The order is only in this party's schema."""
    key = (
        scenario.model_dump_json(include={"parties", "agenda"}),
        party,
        repr(sorted((i, sorted(t.items())) for i, t in scores.items())),
    )
    if key not in _COMPACT_MODELS:
        names = ("Positions", "Side")
        package, side = _package_and_side(scenario, party, names, Sentence, scores)
        _COMPACT_MODELS[key] = create_model(
            "Move",
            __config__=_FORBID,
            __doc__="One party's turn, compact: why, words, positions, whether to propose them.",
            thought=(Line, ...),
            message=(Sentence, ...),
            positions=(package, ...),
            propose=(bool, ...),
            side=(side | None, ...),
        )
    return _COMPACT_MODELS[key]


def canonical_move(value: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """A move of either shape as the graph records it (a compact move names no private
    positions: it has none)."""
    d = value if isinstance(value, dict) else value.model_dump()
    if "public_message" in d:
        return d
    return {
        "private_reasoning": d["thought"],
        "private_positions": None,
        "public_message": d["message"],
        "positions": d["positions"],
        "proposal": dict(d["positions"]) if d["propose"] else None,
        "side_message": d["side"],
    }


def canonical_vote(value: BaseModel | dict[str, Any]) -> dict[str, Any]:
    d = value if isinstance(value, dict) else value.model_dump()
    if "private_reasoning" in d:
        return d
    return {"private_reasoning": d["reason"], "vote": d["vote"]}


def compact_move(move: dict[str, Any]) -> dict[str, Any]:
    """A canonical move in the compact shape (for players that decide in the canonical
    one). Its proposal must be its positions or nothing, as in every compact move."""
    proposal = move.get("proposal")
    if proposal is not None and proposal != move["positions"]:
        raise ValueError("a compact move can only propose its own positions")
    return {
        "thought": move["private_reasoning"],
        "message": move["public_message"],
        "positions": move["positions"],
        "propose": proposal is not None,
        "side": move.get("side_message"),
    }


def compact_vote(vote: dict[str, Any]) -> dict[str, Any]:
    return {"vote": vote["vote"], "reason": vote["private_reasoning"]}


class Narration(BaseModel):
    """The words of a decided move: what the party says to the room, in plain sentences."""

    model_config = ConfigDict(extra="forbid")
    message: Sentence


class NarrationWithSide(Narration):
    """The words of a decided move that also sends a side note."""

    side: Sentence


class Words(BaseModel):
    """The words of a decided move, for a capable model (the full profile): any text."""

    model_config = ConfigDict(extra="forbid")
    message: Text


class WordsWithSide(Words):
    side: Text


def narration_model(with_side: bool, plain: bool = True) -> type[BaseModel]:
    if plain:
        return NarrationWithSide if with_side else Narration
    return WordsWithSide if with_side else Words
