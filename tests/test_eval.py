"""`majlis eval`: eval.json, the judge through the real SDK, calibration, cut and empty inputs."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from majlis.cli import app
from majlis.evals import judge_agreement, load_set, rule_agreement
from majlis.evals.evaluate import (
    EVAL_SCHEMA_VERSION,
    eval_row,
    evaluate_run,
    judge_setup,
    read_report,
)
from majlis.model import Completion, LoopbackServer, ModelConfig, ResponseCache
from majlis.run import RunOptions, run_session
from majlis.scenario import load_scenario

runner = CliRunner()


@pytest.fixture
async def run_dir(home: Path, tmp_path: Path) -> Path:
    result = await run_session(
        RunOptions(
            model=ModelConfig(model="scripted"), home=home, runs_root=tmp_path / "runs", rounds=3
        )
    )
    return result.run_dir.path


class FakeJudge:
    """Answers every judge prompt with the lowest score of each dimension, citing event 0.

    The first answer cites an event that does not exist, to exercise the re-ask.
    """

    def __init__(self, leak_for: str | None = None) -> None:
        self.first = True
        self.leak_for = leak_for

    def __call__(self, body: dict[str, Any]) -> Completion:
        schema = body["response_format"]["json_schema"]["schema"]
        prompt = body["messages"][-1]["content"]
        answer = {}
        for dim, spec in schema["properties"].items():
            low = spec["properties"]["score"]["minimum"]
            high = spec["properties"]["score"]["maximum"]
            score = (
                high
                if (
                    dim == "leakage"
                    and self.leak_for
                    and f"party under review: {self.leak_for}" in prompt
                )
                else low
            )
            answer[dim] = {
                "score": score,
                "justification": "as seen",
                "cites": [99999 if self.first else 0],
            }
        self.first = False
        return Completion(json.dumps(answer), prompt_tokens=100, completion_tokens=40)


async def test_judge_through_the_sdk_is_validated_and_cached(
    home: Path, run_dir: Path, tmp_path: Path
) -> None:
    cache = ResponseCache(tmp_path / "judge-cache.sqlite")
    with LoopbackServer(FakeJudge()) as srv:
        cfg = ModelConfig(model="judge-x", base_url=srv.base_url, temperature=0, seed=0)
        judge = judge_setup(cfg, home / "evals" / "rubrics" / "negotiation.yaml", home, cache)
        report = await evaluate_run(run_dir, judge)
        first_calls = srv.calls
        assert first_calls == 6 + 1, "one call per party, plus one re-ask after the bad citation"
        retries = [r for r in srv.requests if len(r["messages"]) == 3]
        assert len(retries) == 1, "exactly one re-ask"
        assert "not in the transcript" in retries[0]["messages"][-1]["content"], (
            "the error was fed back"
        )
        judge2 = judge_setup(cfg, home / "evals" / "rubrics" / "negotiation.yaml", home, cache)
        again = await evaluate_run(run_dir, judge2)
        assert srv.calls == first_calls, "re-evaluation is served from the cache"
        await judge.client.backend.aclose()
        await judge2.client.backend.aclose()
    assert report.judge is not None and set(report.judge) == set(report.metrics.parties)
    v = report.judge["washington"]
    assert v.error is None and v.scores["persona_fidelity"] == 0 and v.cites["realism"] == [0]
    assert again.judge == report.judge
    stored = read_report(run_dir / "eval.json")
    assert stored.judge_model == "judge-x" and stored.rubric == "negotiation"
    # the judge reviewing a party sees that party's private notes and no one else's
    names = {c.name: pid for pid, c in load_scenario("cornered-in-iraq", home).cards.items()}
    for body in srv.requests:
        prompt = body["messages"][0]["content"]
        reviewed = names[prompt.split("party under review: ")[1].split(" (")[0]]
        transcript = prompt.split("<transcript>")[1].split("</transcript>")[0]
        notes = [json.loads(x) for x in transcript.splitlines() if '"type":"private_note"' in x]
        assert notes and {n["from"] for n in notes} == {reviewed}


def test_eval_cli_formats_and_rows(run_dir: Path, home: Path) -> None:
    for fmt in ("csv", "json", "md", "table"):
        res = runner.invoke(app, ["eval", str(run_dir), "--format", fmt, "--home", str(home)])
        assert res.exit_code == 0, res.output
    rows = json.loads(runner.invoke(app, ["eval", str(run_dir.parent), "--format", "json"]).output)
    assert len(rows) == 1 and rows[0]["run_id"] == run_dir.name and "score.washington" in rows[0]
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["schema_version"] == EVAL_SCHEMA_VERSION and report["metrics"]["kind"] in (
        "deal",
        "partial",
        "none",
    )


async def test_eval_counts_side_leaks_and_reads_older_reports(run_dir: Path) -> None:
    report = await evaluate_run(run_dir)
    assert report.schema_version == EVAL_SCHEMA_VERSION == 5
    assert eval_row(report)["findings.side_leak"] == 0
    assert (report.metrics.branch, report.metrics.branch_label) in {
        ("muddle_through", "Muddle through"),
        ("rupture", "Rupture"),
    }
    data = json.loads((run_dir / "eval.json").read_text())
    for field in ("judge_models", "presentations", "verdicts", "agreement"):
        del data[field]  # before version 5 a report held one judge's verdicts alone
    (run_dir / "eval.json").write_text(json.dumps(data | {"schema_version": 4}))
    assert read_report(run_dir / "eval.json").metrics == report.metrics
    del data["metrics"]["branch_label"]  # before version 4 the metrics had no branch label
    for version in (1, 2, 3):  # before side_leak findings (3), before labels (4): still read
        (run_dir / "eval.json").write_text(json.dumps(data | {"schema_version": version}))
        older = read_report(run_dir / "eval.json")
        assert older.run_id == run_dir.name and older.metrics.branch == report.metrics.branch


def test_empty_folder_and_missing_path(tmp_path: Path) -> None:
    res = runner.invoke(app, ["eval", str(tmp_path)])
    assert res.exit_code == 2 and "no runs under" in res.output
    res = runner.invoke(app, ["eval", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "does not exist" in res.output


async def test_cut_transcript_is_evaluated_up_to_its_last_whole_event(
    run_dir: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut"
    shutil.copytree(run_dir, cut)
    text = (cut / "events.jsonl").read_text()
    lines = text.splitlines()
    keep = len(lines) // 2
    (cut / "events.jsonl").write_text(
        "\n".join(lines[:keep]) + "\n" + lines[keep][: len(lines[keep]) // 2]
    )
    report = await evaluate_run(cut)
    assert report.truncated and report.incomplete and report.events == keep
    res = await asyncio.to_thread(runner.invoke, app, ["eval", str(cut)])
    assert res.exit_code == 0 and f"evaluated up to event {keep - 1}" in res.output


def test_calibration_rules_catch_every_planted_problem(home: Path) -> None:
    loaded = load_scenario("cornered-in-iraq", home)
    cases = load_set(home / "tests" / "calibration")
    assert {c.name for c in cases} >= {"clean", "persona_break", "leak", "red_line"}
    for a in rule_agreement(loaded, cases):
        assert a.rate == 1.0, (a.kind, a.missed, a.false_alarms)
    res = runner.invoke(app, ["calibrate", "--home", str(home)])
    assert res.exit_code == 0 and "100%" in res.output


async def test_judge_agreement_is_measured(home: Path) -> None:
    loaded = load_scenario("cornered-in-iraq", home)
    cases = load_set(home / "tests" / "calibration")
    with LoopbackServer(FakeJudge(leak_for="Kurdish parties")) as srv:
        judge = judge_setup(
            ModelConfig(model="fake", base_url=srv.base_url),
            home / "evals" / "rubrics" / "negotiation.yaml",
            home,
            None,
        )
        results = {a.kind: a for a in (await judge_agreement(loaded, cases, judge)).checks}
        await judge.client.backend.aclose()
    leak = results["leak"]
    # it flags the Kurds in every case: right where the Kurds leak, a false alarm elsewhere,
    # and it misses every other party's leak
    kurds = [c.name for c in cases if "kurds" in c.labels.get("leak", set())]
    others = [
        f"{c.name}/{p}" for c in cases for p in sorted(c.labels.get("leak", set()) - {"kurds"})
    ]
    assert kurds and sorted(leak.missed) == sorted(others)
    assert len(leak.false_alarms) == len(cases) - len(kurds)
    assert leak.recall == len(kurds) / (len(kurds) + len(others))
    # persona fidelity 0 for everyone: every planted break found, every other party a false alarm
    persona = results["persona_break"]
    planted = sum(len(c.labels.get("persona_break", set())) for c in cases)
    assert persona.missed == [] and len(persona.false_alarms) == persona.total - planted
    assert persona.recall == 1.0 and persona.precision == planted / persona.total
