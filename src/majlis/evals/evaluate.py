"""`majlis eval`: objective metrics, rule-based checks and (optionally) the judge, per run.

Writes runs/<id>/eval.json (versioned) and returns rows for a table over a folder of runs.
A transcript whose last line was cut is evaluated up to its last whole event and flagged.
A damaged line elsewhere (not UTF-8, not JSON, not an event) is left out, and the report
lists it: scores of a log with a hole are worth having, as long as the hole is in view.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import RunError, UserError
from ..files import write_json_atomic
from ..model import ModelClient, ModelConfig, ResponseCache, SampleCounter, make_client
from ..protocol import Templates
from ..run import RunDir, first_error, load_snapshot, read_json_object
from ..scenario import LoadedScenario, eval_dirs
from .agreement import TOLERANCE, JudgeAgreement, agreement
from .checks import KINDS, Finding, run_checks
from .judge import PRESENTATIONS, PartyVerdict, Rubric, judge_party, load_rubric
from .metrics import RunMetrics, compute_metrics, summary_row

# 2: `skipped`, the damaged lines of events.jsonl left out
# 3: findings of kind `side_leak` (side talk repeated or used where it should not be)
# 4: metrics.branch_label, the scenario's words for the branch (`branch` keeps its id)
# 5: judge_models, presentations, every verdict (`verdicts`) and their `agreement`
EVAL_SCHEMA_VERSION = 5
EVAL_READABLE_VERSIONS = {1, 2, 3, 4, 5}


class EvalReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = EVAL_SCHEMA_VERSION
    run_id: str
    evaluated: str
    status: str  # the run's manifest status
    truncated: bool  # events.jsonl ended in a cut line, dropped here
    incomplete: bool  # the run never reached its outcome
    events: int
    skipped: list[str] = []  # "<events.jsonl>: line N: why", each damaged line left out
    metrics: RunMetrics
    findings: list[Finding]
    judge_model: str | None = None  # the first judge model
    rubric: str | None = None
    judge: dict[str, PartyVerdict] | None = None  # the first judge's, as the rubric is written
    judge_models: list[str] = []  # every judge model, the first first
    presentations: list[str] = []  # how the rubric was put to them (judge.PRESENTATIONS)
    verdicts: list[PartyVerdict] = []  # every verdict: each judge, presentation and party
    agreement: JudgeAgreement | None = None  # with two presentations or judges or more


@dataclass
class JudgeSetup:
    """The judges of a batch: one client per judge model, the first the main one; each
    transcript is judged under the first `orders` of PRESENTATIONS by every one of them."""

    clients: list[ModelClient]
    rubric: Rubric
    templates: Templates
    orders: int = 1
    tolerance: float = TOLERANCE  # see agreement.order_flags

    @property
    def client(self) -> ModelClient:
        return self.clients[0]

    @property
    def presentations(self) -> list[str]:
        return list(PRESENTATIONS[: self.orders])

    async def check(self) -> None:
        """Each judge's endpoint answers, before any transcript is judged."""
        for c in self.clients:
            await c.backend.check()

    async def aclose(self) -> None:
        for c in self.clients:
            await c.backend.aclose()

    async def verdicts(
        self, loaded: LoadedScenario, events: list[dict[str, Any]]
    ) -> list[PartyVerdict]:
        """Every verdict on one transcript: each judge, presentation and party, at once."""
        return list(
            await asyncio.gather(
                *(
                    judge_party(loaded, events, p, self.rubric, c, self.templates, shown)
                    for c in self.clients
                    for shown in self.presentations
                    for p in loaded.scenario.parties
                )
            )
        )


def find_runs(path: Path) -> list[Path]:
    """A run folder itself, or every run folder below it (a runs folder, a sweep, a folder of sweeps)."""
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if (path / "manifest.json").exists():
        return [path]
    if not path.is_dir():
        raise UserError(f"{path} is not a run folder")
    patterns = ("*/manifest.json", "runs/*/manifest.json", "*/runs/*/manifest.json")
    found = sorted({m.parent for pattern in patterns for m in path.glob(pattern)})
    if not found:
        raise UserError(f"no runs under {path} (a run folder holds manifest.json)")
    return found


def judge_setup(
    configs: ModelConfig | list[ModelConfig],
    rubric_path: Path,
    home: Path,
    cache: ResponseCache | None,
    orders: int = 1,
    tolerance: float = TOLERANCE,
) -> JudgeSetup:
    """Judges for a batch: one model or several (the first the main one), each judging
    under `orders` presentations of the rubric (1 or 2)."""
    configs = configs if isinstance(configs, list) else [configs]
    names = [c.model for c in configs]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise UserError(f"judge model {twice!r} is named twice: each judge once")
    if not 1 <= orders <= len(PRESENTATIONS):
        raise UserError(f"orders must be 1 to {len(PRESENTATIONS)} ({PRESENTATIONS}), not {orders}")
    if not 0 <= tolerance < 1:
        raise UserError(
            f"the order tolerance is a share of a score's range, 0 to 1, not {tolerance}"
        )
    return JudgeSetup(
        clients=[make_client(c, cache=cache, counter=SampleCounter()) for c in configs],
        rubric=load_rubric(rubric_path),
        templates=Templates(eval_dirs(home)),
        orders=orders,
        tolerance=tolerance,
    )


async def evaluate_run(run_dir: Path, judge: JudgeSetup | None = None) -> EvalReport:
    rd = RunDir.open(run_dir)
    manifest = rd.read_manifest()
    loaded = load_snapshot(rd)
    log = rd.read_log(skip=True)
    events = log.items
    if not events:
        first = log.skipped[0].removeprefix(f"{rd.events_path}: ") if log.skipped else ""
        why = f" ({len(log.skipped)} damaged line(s), the first: {first})" if first else ""
        raise RunError(f"{rd.events_path}: no events to evaluate{why}")
    metrics = compute_metrics(loaded, events)
    every = await judge.verdicts(loaded, events) if judge else []
    report = EvalReport(
        run_id=rd.run_id,
        evaluated=datetime.now(UTC).isoformat(timespec="seconds"),
        status=manifest.status,
        truncated=log.cut,
        incomplete=metrics.incomplete,
        events=len(events),
        skipped=log.skipped,
        metrics=metrics,
        findings=run_checks(loaded, events),
        **(_judged(rd.run_id, every, judge) if judge else {}),
    )
    write_json_atomic(rd.path / "eval.json", report)
    return report


def _judged(run_id: str, every: list[PartyVerdict], judge: JudgeSetup) -> dict[str, Any]:
    """The report's judge fields: the main verdicts, every verdict, and their agreement."""
    main = judge.client.config.model
    models = [c.config.model for c in judge.clients]
    several = len(models) > 1 or judge.orders > 1
    return {
        "judge_model": main,
        "rubric": judge.rubric.id,
        "judge": {v.party: v for v in every if v.judge == main and v.presentation == "original"},
        "judge_models": models,
        "presentations": judge.presentations,
        "verdicts": every,
        "agreement": (
            agreement([(run_id, v) for v in every], judge.rubric, judge.tolerance)
            if several
            else None
        ),
    }


def eval_row(report: EvalReport) -> dict[str, Any]:
    """One flat row per run: the metrics summary, findings by kind, mean judge scores."""
    row: dict[str, Any] = {
        "run_id": report.run_id,
        "status": report.status,
        "truncated": int(report.truncated),
        "skipped": len(report.skipped),
    }
    row |= summary_row(report.metrics)
    for kind in KINDS:
        row[f"findings.{kind}"] = sum(f.kind == kind for f in report.findings)
    verdicts = report.verdicts or list((report.judge or {}).values())  # before version 5
    if verdicts:
        dims = sorted({d for v in verdicts for d in v.scores})
        for d in dims:  # the mean over every judge and presentation: order bias averages out
            vals = [v.scores[d] for v in verdicts if d in v.scores]
            row[f"judge.{d}"] = round(sum(vals) / len(vals), 3) if vals else None
        row["judge.errors"] = sum(v.error is not None for v in verdicts)
    if report.agreement:
        row |= _agreement_row(report.agreement)
    return row


def _agreement_row(a: JudgeAgreement) -> dict[str, Any]:
    """Flat columns: alpha per dimension across presentations and across judges, the lowest
    of each, and how many verdicts the order moved."""
    row: dict[str, Any] = {}
    for name, figures in (("order", a.presentations), ("judges", a.judges)):
        if not figures:
            continue
        alphas = [f.alpha for f in figures if f.alpha is not None]
        row[f"judge.{name}_alpha_min"] = round(min(alphas), 3) if alphas else None
        for f in figures:
            row[f"judge.{name}_alpha.{f.dimension}"] = (
                None if f.alpha is None else round(f.alpha, 3)
            )
    if a.presentations:
        row["judge.order_flags"] = len(a.flags)
    return row


def read_report(path: Path) -> EvalReport:
    data = read_json_object(path)
    version = data.get("schema_version")
    if version not in EVAL_READABLE_VERSIONS:
        raise RunError(
            f"{path}: eval schema_version {version!r} is not one this majlis reads "
            f"({sorted(EVAL_READABLE_VERSIONS)})"
        )
    try:
        return EvalReport.model_validate(data)
    except ValidationError as exc:
        raise RunError(f"{path}: {first_error(exc)}") from None
