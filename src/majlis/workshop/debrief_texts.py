"""The debrief's words as data (evals/debrief.yaml): section texts, line and question templates.

Facilitators rewrite the questions for their own workshop without touching Python, so the
file is validated like a scenario: unknown keys are refused, and every `$placeholder` must
be one the debrief fills in where that template is used (string.Template: no expressions).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from string import Template
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ScenarioError
from ..files import parse_file
from ..scenario import Slug, data_root

FILE = Path("evals") / "debrief.yaml"
CHECKOUT = Path(__file__).resolve().parents[3]

RUN_KEYS = frozenset(
    {
        "scenario", "run_id", "created", "kind", "branch", "branch_description", "deal_round",
        "rounds",
    }
)  # fmt: skip
PARTY_KEYS = frozenset(
    {
        "name", "role", "stance", "interest", "score", "threshold", "margin", "margin_abs",
        "vote", "first_offer", "last_offer", "conceded", "offers", "position_consistency",
        "inconsistent_votes", "wrong_deals", "backed", "messages", "talk_share",
        "failed_turns", "outcome", "branch",
    }
)  # fmt: skip
ITEM_KEYS = {  # what a per-item question adds to PARTY_KEYS
    "red_line": frozenset({"issue", "option", "why"}),
    "red_line_breached": frozenset({"issue", "option", "seq", "act"}),
}
LINE_KEYS = {
    "deal": {"round", "proposal_seq", "speaker", "tally_seq"},
    "crossing": {"seq", "round", "speaker", "party", "score", "threshold", "before"},
    "inject": {"seq", "round", "title", "moved"},
    "failed_turn": {"seq", "round", "party", "task", "attempts"},
    "breach": {"seq", "round", "party", "issue", "option", "act"},
    "tag": {"seq", "round", "speaker", "tag", "note"},
    "quote": {"seq", "round", "speaker", "reason"},
}

Condition = Literal[
    "always",
    "veto",
    "margin_comfortable",
    "margin_thin",
    "margin_below",
    "no_package",
    "conceded",
    "held_firm",
    "no_offers",
    "low_position_consistency",
    "inconsistent_votes",
    "wrong_deals",
    "red_line",
    "red_line_breached",
    "failed_turns",
    "voted_against_deal",
]


def placeholders(text: str) -> set[str]:
    t = Template(text)
    if not t.is_valid():
        raise ValueError(f"bad $placeholder in {text[:60]!r} (write $$ for a dollar sign)")
    return set(t.get_identifiers())


def _check(text: str, allowed: set[str] | frozenset[str], where: str) -> None:
    unknown = sorted(placeholders(text) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown placeholder ${unknown[0]} (known: {sorted(allowed)})")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Section(_Strict):
    title: str = Field(min_length=1)
    intro: str = ""


class Sections(_Strict):
    agreed: Section
    results: Section
    charts: Section = Section(
        title="Over the rounds",
        intro="Each party's score of the standing proposal at the end of each round, and "
        "what happened when: # numbers refer to the transcript.",
    )
    turning_points: Section
    quotes: Section
    questions: Section


class Limits(_Strict):
    thin_margin: int = Field(5, ge=0, description="A margin from 0 to this just clears.")
    low_consistency: float = Field(0.75, ge=0, le=1)
    max_quotes: int = Field(12, ge=1, le=100)
    quote_chars: int = Field(400, ge=40)


class Labels(_Strict):
    """Short words for tables and lists."""

    kinds: dict[Literal["deal", "partial", "none"], str]
    issue: str
    option: str
    party: str
    veto: str
    score: str
    threshold: str
    margin: str
    vote: str
    yes: str
    no_agreement: str
    no_vote: str
    no_reason: str
    not_applicable: str
    proposal: str
    accept: str
    round: str = "Round"
    priority_tags: list[str] = ["turning_point", "concession", "threat"]


class Lines(_Strict):
    """One template per kind of turning point, and the words around quotes."""

    deal: str
    crossing: str
    inject: str
    failed_turn: str
    breach: str
    tag: str
    quote: str
    nothing: str
    quote_reasons: dict[Literal["tag", "deal", "inject", "closing"], str]


class Question(_Strict):
    id: Slug
    when: Condition
    text: str = Field(min_length=1)


class DebriefTexts(_Strict):
    title: str
    outcome: dict[Literal["deal", "partial", "none"], str]
    scored: dict[Literal["deal", "last_proposal", "none"], str]
    sections: Sections
    labels: Labels
    lines: Lines
    limits: Limits = Limits()
    questions: list[Question] = Field(min_length=1)

    @model_validator(mode="after")
    def _placeholders(self) -> DebriefTexts:
        _check(self.title, RUN_KEYS, "title")
        for k, v in [*self.outcome.items(), *self.scored.items()]:
            _check(v, RUN_KEYS, k)
        for name, s in self.sections:
            _check(s.title + s.intro, RUN_KEYS, f"sections.{name}")
        for name, keys in LINE_KEYS.items():
            _check(getattr(self.lines, name), keys, f"lines.{name}")
        for k, v in self.lines.quote_reasons.items():
            _check(v, {"tag", "title"}, f"lines.quote_reasons.{k}")
        for q in self.questions:
            _check(q.text, PARTY_KEYS | ITEM_KEYS.get(q.when, frozenset()), f"question {q.id}")
        return self


def fill(template: str, values: dict[str, object]) -> str:
    """Fill a validated template; a value the debrief lacks reads as itself, never fails."""
    return Template(template).safe_substitute({k: str(v) for k, v in values.items()}).strip()


def load_texts(path: Path | None = None) -> DebriefTexts:
    """The given file, else evals/debrief.yaml in the data folder, else in the checkout."""
    if path is None:
        candidates = [CHECKOUT / FILE]
        with contextlib.suppress(ScenarioError):  # no data folder: the checkout's copy will do
            candidates.insert(0, data_root() / FILE)
        path = next((c for c in candidates if c.exists()), candidates[-1])
    return parse_file(path, DebriefTexts)
