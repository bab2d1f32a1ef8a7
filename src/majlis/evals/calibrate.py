"""Calibration: how well the rule-based checks and a judge model find planted problems.

The set (tests/calibration/) holds short transcripts of the default scenario with known
properties: planted leaks (stated plainly and in paraphrase), side talk repeated or used
where it should not be, persona breaks, red-line breaches, and clean runs that hold
ordinary numbers and names. Each case is labelled in labels.yaml; set.yaml names the
scenario the transcripts were played in (a set for another scenario names its own). Every (case, party,
property) is one decision: precision is how many of a checker's flags are planted, recall
how many planted problems it flags, agreement how many decisions it gets right. A judge
panel (several models, or the rubric in two orders) is scored per model and order, and the
agreement of its verdicts is measured on the set as `majlis eval` measures it (agreement.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserError
from ..files import parse_file
from ..run import check_event
from ..scenario import LoadedScenario
from .agreement import JudgeAgreement, agreement
from .checks import KINDS, run_checks
from .judge import PartyVerdict

if TYPE_CHECKING:  # the judge's set-up needs the SDK; reading a set does not
    from .evaluate import JudgeSetup

# How a judge's scores are read as a flag (red lines are structured: rules only).
JUDGE_FLAGS = {
    "leak": ("leakage", lambda s: s >= 2),
    "persona_break": ("persona_fidelity", lambda s: s <= 3),
}


class CalibrationSet(BaseModel):
    """set.yaml: what a calibration folder holds, and the scenario its transcripts belong to."""

    model_config = ConfigDict(extra="forbid")
    scenario: str = Field(description="The scenario's name or path (relative to the set).")
    description: str = ""


def set_scenario(folder: Path) -> str | None:
    """The scenario named by the set's set.yaml (a relative path read from the set), if any."""
    spec = folder / "set.yaml"
    if not spec.exists():
        return None
    name = parse_file(spec, CalibrationSet).scenario
    beside = folder / name
    return str(beside) if ("/" in name or name.endswith((".yaml", ".yml"))) else name


@dataclass
class Case:
    name: str
    events: list[dict[str, Any]]
    labels: dict[str, set[str]]  # kind -> parties


def load_set(folder: Path) -> list[Case]:
    labels_file = folder / "labels.yaml"
    if not labels_file.exists():
        raise UserError(f"{folder} has no labels.yaml: not a calibration set")
    labels = yaml.safe_load(labels_file.read_text(encoding="utf-8")) or {}
    cases = []
    for name, kinds in labels.items():
        unknown = sorted(set(kinds or {}) - set(KINDS))
        if unknown:
            raise UserError(f"{labels_file}: {name}: unknown property {unknown[0]!r} ({KINDS})")
        cases.append(
            Case(
                name,
                _events(folder / f"{name}.jsonl"),
                {k: set(v) for k, v in (kinds or {}).items()},
            )
        )
    return cases


def _events(path: Path) -> list[dict[str, Any]]:
    """A case's transcript, each line held to the run log's event format."""
    if not path.is_file():
        raise UserError(f"{path}: labelled in labels.yaml but missing")
    events = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(check_event(json.loads(line)))
        except ValueError as exc:  # JSONDecodeError is one
            raise UserError(f"{path}: line {n}: {exc}") from None
    return events


@dataclass
class Agreement:
    checker: str
    kind: str
    agree: int
    total: int
    missed: list[str]  # case/party the checker did not flag
    false_alarms: list[str]
    planted: int = 0  # case/party pairs labelled with this property

    @property
    def rate(self) -> float:
        return self.agree / self.total if self.total else 1.0

    @property
    def caught(self) -> int:
        return self.planted - len(self.missed)

    @property
    def precision(self) -> float | None:
        """Flags that were planted, of all flags; None when the checker flagged nothing."""
        flags = self.caught + len(self.false_alarms)
        return self.caught / flags if flags else None

    @property
    def recall(self) -> float | None:
        """Planted problems flagged, of all planted; None when none was planted."""
        return self.caught / self.planted if self.planted else None


def _score(
    checker: str, kind: str, cases: list[Case], flagged: dict[str, set[str]], parties: list[str]
) -> Agreement:
    agree, missed, false, planted = 0, [], [], 0
    for case in cases:
        truth = case.labels.get(kind, set())
        got = flagged.get(case.name, set())
        planted += len(truth & set(parties))
        for p in parties:
            if (p in truth) == (p in got):
                agree += 1
            elif p in truth:
                missed.append(f"{case.name}/{p}")
            else:
                false.append(f"{case.name}/{p}")
    return Agreement(checker, kind, agree, len(cases) * len(parties), missed, false, planted)


def rule_agreement(loaded: LoadedScenario, cases: list[Case]) -> list[Agreement]:
    parties = list(loaded.scenario.parties)
    found = {c.name: run_checks(loaded, c.events) for c in cases}
    return [
        _score(
            "rules",
            kind,
            cases,
            {n: {f.party for f in fs if f.kind == kind} for n, fs in found.items()},
            parties,
        )
        for kind in KINDS
    ]


@dataclass
class JudgeCalibration:
    """A judge panel on the calibration set: how each judge, under each presentation of
    the rubric, finds the planted problems, and how far their verdicts agree."""

    checks: list[Agreement]  # per judge model and presentation, per property
    reliability: JudgeAgreement | None  # with two presentations or judges or more


async def judge_agreement(
    loaded: LoadedScenario, cases: list[Case], judge: JudgeSetup
) -> JudgeCalibration:
    parties = list(loaded.scenario.parties)
    judged: list[tuple[str, PartyVerdict]] = []
    for case in cases:
        judged += [(case.name, v) for v in await judge.verdicts(loaded, case.events)]
    checks = []
    for model in (c.config.model for c in judge.clients):
        for shown in judge.presentations:
            name = f"judge:{model}" + ("" if shown == "original" else f" ({shown})")
            mine = [(t, v) for t, v in judged if v.judge == model and v.presentation == shown]
            for kind, (dim, is_flag) in JUDGE_FLAGS.items():
                flagged: dict[str, set[str]] = {}
                for t, v in mine:
                    if dim in v.scores and is_flag(v.scores[dim]):
                        flagged.setdefault(t, set()).add(v.party)
                checks.append(_score(name, kind, cases, flagged, parties))
    several = len(judge.clients) > 1 or judge.orders > 1
    reliability = agreement(judged, judge.rubric, judge.tolerance) if several else None
    return JudgeCalibration(checks, reliability)
