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
from ..scenario import eval_dirs
from .checks import KINDS, Finding, run_checks
from .judge import PartyVerdict, Rubric, judge_party, load_rubric
from .metrics import RunMetrics, compute_metrics, summary_row

# 2: `skipped`, the damaged lines of events.jsonl left out
# 3: findings of kind `side_leak` (side talk repeated or used where it should not be)
# 4: metrics.branch_label, the scenario's words for the branch (`branch` keeps its id)
EVAL_SCHEMA_VERSION = 4
EVAL_READABLE_VERSIONS = {1, 2, 3, 4}


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
    judge_model: str | None = None
    rubric: str | None = None
    judge: dict[str, PartyVerdict] | None = None


@dataclass
class JudgeSetup:
    client: ModelClient
    rubric: Rubric
    templates: Templates


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
    config: ModelConfig, rubric_path: Path, home: Path, cache: ResponseCache | None
) -> JudgeSetup:
    return JudgeSetup(
        client=make_client(config, cache=cache, counter=SampleCounter()),
        rubric=load_rubric(rubric_path),
        templates=Templates(eval_dirs(home)),
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
    verdicts = None
    if judge is not None:
        results = await asyncio.gather(
            *(
                judge_party(loaded, events, p, judge.rubric, judge.client, judge.templates)
                for p in loaded.scenario.parties
            )
        )
        verdicts = {v.party: v for v in results}
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
        judge_model=judge.client.config.model if judge else None,
        rubric=judge.rubric.id if judge else None,
        judge=verdicts,
    )
    write_json_atomic(rd.path / "eval.json", report)
    return report


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
    if report.judge:
        dims = sorted({d for v in report.judge.values() for d in v.scores})
        for d in dims:
            vals = [v.scores[d] for v in report.judge.values() if d in v.scores]
            row[f"judge.{d}"] = round(sum(vals) / len(vals), 3) if vals else None
        row["judge.errors"] = sum(v.error is not None for v in report.judge.values())
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
