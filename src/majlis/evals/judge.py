"""The LLM judge: rubrics are data in evals/rubrics/, verdicts are validated pydantic objects.

The judge reviews one party at a time. It sees that party's card (brief, scores, walk-away)
and the transcript as that party lived it plus everything public, and must cite event
numbers for every score. It is configured apart from the players; its calls go through
the same client, so they are cached and retried like any other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from ..errors import ModelBehaviourError
from ..files import parse_file
from ..protocol import Templates, quote, record_entry, strict_schema, visible
from ..scenario import LoadedScenario, Slug

if TYPE_CHECKING:  # the client (and the openai SDK behind it) is needed only to judge
    from ..model import ModelClient

JUDGE_TEMPLATE = "judge.md.j2"
# How the rubric is put to the judge. `original`: as written. `reversed`: its dimensions in
# the opposite order and each scale's anchors listed the other way round, in the prompt and
# in the answer's schema, so the judge also writes its scores in that order. Neither order
# means anything (a rubric's dimensions are independent questions, a scale reads the same
# from either end), so a verdict that moves between the two was moved by position: an
# earlier score anchoring a later one, the first anchor read pulling the score toward it.
# The transcript keeps its order in both: its order is the story, and reversing it would
# ask another question.
PRESENTATIONS = ("original", "reversed")


class Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Slug
    title: str
    question: str
    min: int
    max: int
    anchors: dict[int, str] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self) -> Dimension:
        if self.min >= self.max:
            raise ValueError(f"min {self.min} must be below max {self.max}")
        outside = [k for k in self.anchors if not self.min <= k <= self.max]
        if outside:
            raise ValueError(f"anchor {outside[0]} is outside {self.min}..{self.max}")
        return self


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Slug
    title: str
    dimensions: list[Dimension] = Field(min_length=1)


def load_rubric(path: Path) -> Rubric:
    return parse_file(path, Rubric)


def presented(rubric: Rubric, presentation: str) -> Rubric:
    """The rubric as the judge reads it under one of PRESENTATIONS."""
    if presentation == "original":
        return rubric
    if presentation != "reversed":
        raise ValueError(f"unknown presentation {presentation!r} (known: {PRESENTATIONS})")
    dims = [
        d.model_copy(update={"anchors": dict(reversed(d.anchors.items()))})
        for d in reversed(rubric.dimensions)
    ]
    return rubric.model_copy(update={"dimensions": dims})


def verdict_model(rubric: Rubric, seqs: set[int]) -> type[BaseModel]:
    """The judge's answer for one party: a bounded score, a justification and citations per dimension."""
    cfg = ConfigDict(extra="forbid")

    def cited(cls: type, value: list[int]) -> list[int]:
        unknown = [s for s in value if s not in seqs]
        if unknown:
            raise ValueError(f"cites events {unknown} that are not in the transcript")
        return value

    fields: dict[str, Any] = {}
    for d in rubric.dimensions:
        fields[d.id] = (
            create_model(
                f"Score_{d.id}",
                __config__=cfg,
                __validators__={"cites_known": field_validator("cites")(cited)},
                score=(int, Field(ge=d.min, le=d.max)),
                justification=(str, Field(min_length=1, max_length=1500)),
                cites=(list[int], ...),
            ),
            ...,
        )
    return create_model("Verdict", __config__=cfg, **fields)


class PartyVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party: str
    judge: str | None = None  # the judge model (None in reports before version 5)
    presentation: str = "original"  # how the rubric was put (PRESENTATIONS)
    scores: dict[str, int]
    justifications: dict[str, str]
    cites: dict[str, list[int]]
    call_id: str | None = None
    error: str | None = None


def judge_transcript(party: str, events: list[dict[str, Any]]) -> tuple[str, set[int]]:
    """What the judge reads for one party: everything public, plus that party's own private events."""
    shown = [e for e in events if visible(e, party) and e["type"] != "error"]
    return "".join(quote(record_entry(e)) + "\n" for e in shown), {e["seq"] for e in shown}


async def judge_party(
    loaded: LoadedScenario,
    events: list[dict[str, Any]],
    party: str,
    rubric: Rubric,
    client: ModelClient,
    templates: Templates,
    presentation: str = "original",
) -> PartyVerdict:
    card = loaded.cards[party]
    rubric = presented(rubric, presentation)
    who = {"party": party, "judge": client.config.model, "presentation": presentation}
    transcript, seqs = judge_transcript(party, events)
    prompt = templates.render(
        JUDGE_TEMPLATE,
        party=card,
        scenario=loaded.scenario,
        scores_json=json.dumps(card.scores),
        transcript=transcript,
        rubric=rubric,
    )
    model = verdict_model(rubric, seqs)
    messages = [{"role": "user", "content": prompt}]
    try:
        answer = await client.ask(messages, model, strict_schema(model))
    except ModelBehaviourError as exc:
        return PartyVerdict(**who, scores={}, justifications={}, cites={}, error=str(exc))
    data = answer.value.model_dump()
    return PartyVerdict(
        **who,
        scores={k: v["score"] for k, v in data.items()},
        justifications={k: v["justification"] for k, v in data.items()},
        cites={k: v["cites"] for k, v in data.items()},
        call_id=answer.reply.call_id,
    )
