"""What a model must answer: a move on its turn, a vote on the standing proposal.

The models are built per scenario and party, so option ids and side-talk recipients are
enums: a constrained decoder can only produce valid ids, and pydantic rejects the rest.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from .scenario import Scenario

Text = Annotated[str, Field(min_length=1, max_length=1200)]
Thought = Annotated[str, Field(max_length=1200)]


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


def _build_move_model(scenario: Scenario, party: str) -> type[BaseModel]:
    cfg = ConfigDict(extra="forbid")
    issues: dict[str, Any] = {
        i.id: (Literal[tuple(i.option_ids())], Field(description=i.title)) for i in scenario.agenda
    }
    package = create_model("Package", __config__=cfg, **issues)
    others = tuple(p for p in scenario.parties if p != party)
    side = create_model("SideMessage", __config__=cfg, to=(Literal[others], ...), text=(Text, ...))
    return create_model(
        "Move",
        __config__=cfg,
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
