"""The scenario files as data: agenda, deal rule, injects, outcome branches, stakeholder cards.

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

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
OutcomeKind = Literal["deal", "partial", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    """One way an agenda issue can be settled."""

    id: Slug
    label: str = Field(min_length=1)
    description: str = ""
    lean: int = Field(
        0,
        ge=-3,
        le=3,
        description="Added up over the agreed options; the scenario's branch rules "
        "(lean_at_least, lean_below) say what a sum means.",
    )


class Issue(_Strict):
    id: Slug
    title: str = Field(min_length=1)
    description: str = ""
    options: list[Option] = Field(min_length=2, max_length=6)
    ordered: bool = Field(
        False,
        description="The options run along one scale in the order listed, from one end to "
        "the other, so a player may treat neighbouring options as close. Unordered options "
        "are only the same or different, and their order means nothing.",
    )

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


class MarginBelow(_Strict):
    party: Slug
    value: int = Field(description="Fires when the party's margin is below this.")


class InjectWhen(_Strict):
    """What must have happened for a conditional inject to fire: every condition given must
    hold at the start of a round (from round 2 on); it fires once, the first time they do."""

    no_proposal_by: int | None = Field(
        None, ge=1, description="No package has been proposed by the end of this round."
    )
    margin_below: MarginBelow | None = Field(
        None,
        description="The standing proposal leaves this party below this margin over its "
        "walk-away point.",
    )
    red_line_crossed: Slug | None = Field(
        None,
        description="The standing proposal crosses a red line of this party, or of any "
        "party with `any`.",
    )
    votes_failed: int | None = Field(
        None, ge=1, description="At least this many votes have failed so far."
    )

    @model_validator(mode="after")
    def _some_condition(self) -> InjectWhen:
        if all(getattr(self, k) is None for k in type(self).model_fields):
            raise ValueError("names no condition")
        return self


class Inject(_Strict):
    """A scenario event the facilitator announces to every party at the start of a round:
    a fixed round, or the first round at whose start its `when` holds."""

    round: int | None = Field(None, ge=1, description="The round it is announced at.")
    when: InjectWhen | None = Field(None, description="Or: the condition that fires it.")
    id: Slug
    title: str = Field(min_length=1)
    text: str = Field(min_length=1)

    @model_validator(mode="after")
    def _round_or_when(self) -> Inject:
        if (self.round is None) == (self.when is None):
            raise ValueError("give either `round` or `when`, not both or neither")
        return self


class BranchWhen(_Strict):
    """When a branch applies: every condition given must hold (at least one is given)."""

    outcome: list[OutcomeKind] | None = Field(
        None,
        min_length=1,
        description="The outcome kinds it applies to: deal (a package passed), partial "
        "(no package, some issues agreed in public), none.",
    )
    lean_at_least: int | None = Field(
        None, description="The lean sum of the agreed options is at least this."
    )
    lean_below: int | None = Field(
        None, description="The lean sum of the agreed options is below this."
    )
    agreed: dict[Slug, list[Slug]] | None = Field(
        None,
        description="Per issue, the options of which the agreed one must be one; an issue "
        "left unagreed fails the condition.",
    )

    @model_validator(mode="after")
    def _conditions_that_can_hold(self) -> BranchWhen:
        if all(getattr(self, k) is None for k in type(self).model_fields):
            raise ValueError("names no condition: leave `when` out for the catch-all branch")
        low, high = self.lean_at_least, self.lean_below
        if low is not None and high is not None and low >= high:
            raise ValueError(f"lean_at_least {low} is not below lean_below {high}: nothing fits")
        if any(not options for options in (self.agreed or {}).values()):
            raise ValueError("an issue under `agreed` lists no option")
        return self


class Branch(_Strict):
    """One future an outcome can be filed under. A scenario lists its branches in order and
    an outcome takes the first whose `when` holds; the last has no `when`: it takes the rest."""

    id: Slug
    label: str = Field(min_length=1, description="The branch in words, as people read it.")
    description: str = ""
    when: BranchWhen | None = None


DEFAULT_BRANCHES = (
    Branch(
        id="agreement",
        label="Agreement",
        description="The parties passed a package.",
        when=BranchWhen(outcome=["deal"]),
    ),
    Branch(
        id="no_agreement",
        label="No agreement",
        description="No package passed; at most some issues were agreed in public.",
    ),
)


def in_words(branch_id: str) -> str:
    """A branch id read as words: what is shown when no label is known for it."""
    return branch_id.replace("_", " ")


class BranchRule(_Strict):
    """The older form of `branches`, still read: a mapping with two fixed futures.

    A deal or partial deal whose agreed options have a lean sum at or above
    `muddle_through_at` is `muddle_through`; a lower sum takes `otherwise`, no deal
    `no_deal`. `branches()` says the same as a list of branches.
    """

    muddle_through_at: int = 0
    no_deal: Literal["muddle_through", "rupture"] = "rupture"
    otherwise: Literal["muddle_through", "rupture"] = "rupture"

    def branches(self) -> list[Branch]:
        """The same rule in the list form, for each way its two fields can be set."""
        agreed: list[OutcomeKind] = ["deal", "partial"]
        at = self.muddle_through_at
        muddle, rupture = "muddle_through", "rupture"
        if (self.no_deal, self.otherwise) == (rupture, rupture):
            return [_old(muddle, BranchWhen(outcome=agreed, lean_at_least=at)), _old(rupture)]
        if (self.no_deal, self.otherwise) == (rupture, muddle):
            return [_old(muddle, BranchWhen(outcome=agreed)), _old(rupture)]
        if (self.no_deal, self.otherwise) == (muddle, rupture):
            return [_old(rupture, BranchWhen(outcome=agreed, lean_below=at)), _old(muddle)]
        return [_old(muddle)]  # both fields muddle_through: nothing is a rupture


def _old(branch_id: str, when: BranchWhen | None = None) -> Branch:
    return Branch(id=branch_id, label=in_words(branch_id).capitalize(), when=when)


def _branch_list(value: Any) -> Any:
    """The older form (a mapping, or a BranchRule made in code) read as the list it means;
    no branches at all, the default pair."""
    if value is None:
        return list(DEFAULT_BRANCHES)
    if isinstance(value, dict):
        value = BranchRule.model_validate(value)
    return value.branches() if isinstance(value, BranchRule) else value


Branches = Annotated[
    list[Branch],
    BeforeValidator(_branch_list, json_schema_input_type=list[Branch] | BranchRule),
    Field(min_length=1),
]


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
    branches: Branches = Field(
        default_factory=lambda: list(DEFAULT_BRANCHES),
        description="The futures an outcome is filed under, in order: the first whose `when` "
        "holds; the last, with no `when`, takes the rest. Without it: agreement (a deal) "
        "and no_agreement. The older mapping form (muddle_through_at, no_deal, otherwise) "
        "is still read.",
    )

    def issue(self, issue_id: str) -> Issue:
        for issue in self.agenda:
            if issue.id == issue_id:
                return issue
        raise KeyError(issue_id)

    def branch(self, branch_id: str) -> Branch | None:
        return next((b for b in self.branches if b.id == branch_id), None)

    def branch_label(self, branch_id: str) -> str:
        """The words for one of this scenario's branches; an id it does not define (a run
        recorded under other rules) is shown as its words."""
        branch = self.branch(branch_id)
        return branch.label if branch else in_words(branch_id)


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
    persona: str = Field(
        min_length=1, max_length=200, description="Persona template, relative to prompts/."
    )
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

    @field_validator("persona")
    @classmethod
    def _inside_prompts(cls, value: str) -> str:
        """A path inside prompts/: no absolute path, no `..`, no backslash (the template
        loader refuses them too; `majlis new --from` copies the file by this path)."""
        parts = value.split("/")
        if value.startswith("/") or "\\" in value or ".." in parts:
            raise ValueError("must be a path inside prompts/ (no leading /, no .., no \\)")
        return value


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
