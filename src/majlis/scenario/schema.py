"""The scenario files as data: agenda, deal rule, injects, stakeholder cards.

Pydantic models that refuse unknown keys, one per kind of YAML file (a scenario, an agent
card) and their parts, and `LoadedScenario`, a scenario with its cards as a session uses
it. Checks that need more than one file (a card's scores against the scenario's agenda)
are made when loading, in `load.py`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
Branch = Literal["muddle_through", "rupture"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    """One way an agenda issue can be settled."""

    id: Slug
    label: str = Field(min_length=1)
    description: str = ""
    lean: int = Field(
        0, ge=-3, le=3, description="Pull toward muddling through (+) or rupture (-)."
    )


class Issue(_Strict):
    id: Slug
    title: str = Field(min_length=1)
    description: str = ""
    options: list[Option] = Field(min_length=2, max_length=6)

    @model_validator(mode="after")
    def _unique_options(self) -> Issue:
        no_duplicates([o.id for o in self.options], "options")
        return self

    def option_ids(self) -> list[str]:
        return [o.id for o in self.options]


class DealRule(_Strict):
    """Who must accept a package for it to pass."""

    veto: list[Slug] = Field(min_length=1, description="Parties whose acceptance is required.")
    min_accept: int = Field(ge=1, description="Acceptances needed, veto parties included.")
    max_rounds: int = Field(ge=1, le=100)


class Inject(_Strict):
    """A scenario event the facilitator announces to every party at the start of a round."""

    round: int = Field(ge=1)
    id: Slug
    title: str = Field(min_length=1)
    text: str = Field(min_length=1)


class BranchRule(_Strict):
    """Classifies an outcome into one of the seed's two branches.

    A deal or partial deal whose agreed options have a lean sum at or above
    `muddle_through_at` is `muddle_through`; anything else, and no deal, takes `otherwise`.
    """

    muddle_through_at: int = 0
    no_deal: Branch = "rupture"
    otherwise: Branch = "rupture"


class Scenario(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=60)
    title: str = Field(min_length=1)
    brief: str = Field(min_length=1, description="The public situation every party reads.")
    short_brief: str | None = Field(
        None, description="The situation in two or three sentences, for the compact prompt."
    )
    convener: Slug
    parties: list[Slug] = Field(min_length=2)
    turn_order: Literal["convener_first", "rotate"] = "convener_first"
    agenda: list[Issue] = Field(min_length=1)
    deal_rule: DealRule
    injects: list[Inject] = []
    branches: BranchRule = BranchRule()

    def issue(self, issue_id: str) -> Issue:
        for issue in self.agenda:
            if issue.id == issue_id:
                return issue
        raise KeyError(issue_id)


class RedLine(_Strict):
    issue: Slug
    option: Slug
    why: str = ""


class AgentCard(_Strict):
    """One stakeholder: public face, private brief and hidden scores."""

    id: Slug
    name: str = Field(min_length=1)
    role: str = Field(min_length=1)
    color: str = Field("#555555", pattern=r"^#[0-9a-fA-F]{6}$")
    persona: str = Field(min_length=1, description="Persona template, relative to prompts/.")
    public_stance: str = Field(min_length=1)
    private_brief: str = Field(min_length=1)
    short_brief: str | None = Field(
        None,
        description="The private brief in a sentence or two, for the compact prompt "
        "(small local models); the full brief is used when it is missing.",
    )
    private_interests: list[str] = []
    red_lines: list[RedLine] = []
    scores: dict[Slug, dict[Slug, int]]
    threshold: int = Field(
        ge=0, description="Walk-away point: a package below it is worse than no deal."
    )
    veto: bool = False


class LoadedScenario(BaseModel):
    """A validated scenario with its cards, as a session uses it."""

    model_config = ConfigDict(frozen=True)

    scenario: Scenario
    cards: dict[str, AgentCard]
    root: Path
    files: list[Path]

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256()
        h.update(_canonical(self.scenario.model_dump()))
        for pid in self.scenario.parties:
            h.update(_canonical(self.cards[pid].model_dump()))
        return h.hexdigest()

    def max_score(self, party: str) -> int:
        return sum(max(opts.values()) for opts in self.cards[party].scores.values())


def package_count(s: Scenario) -> int:
    count = 1
    for issue in s.agenda:
        count *= len(issue.options)
    return count


def no_duplicates(items: Iterable[str], field: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise ValueError(f"duplicate {field[:-1] if field.endswith('s') else field} {item!r}")
        seen.add(item)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
