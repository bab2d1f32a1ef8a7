"""Judges you can trust (issue 17): each transcript judged under two presentations of the
rubric and by more than one judge model, their agreement measured, and the verdicts that
move with the order flagged. The judges are test doubles behind the loopback server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import krippendorff
import pytest
from typer.testing import CliRunner

from majlis.cli import app
from majlis.evals import judge_agreement, load_set
from majlis.evals.evaluate import eval_row, evaluate_run, judge_setup, read_report
from majlis.model import Completion, LoopbackServer, ModelConfig
from majlis.run import RunOptions, run_session
from majlis.scenario import load_scenario

runner = CliRunner()
PARTIES = ["sudani", "washington", "tehran", "militias", "kurds", "sunnis"]
# Each party's score on every dimension when nothing but the transcript moves the judge
BASE = dict(zip(PARTIES, [2, 9, 4, 10, 6, 3], strict=True))
REPO = Path(__file__).resolve().parents[1]
RUBRIC = REPO / "evals" / "rubrics" / "negotiation.yaml"
FIRST, LAST = "persona_fidelity", "strategic_quality"  # the rubric's first and last dimensions


@pytest.fixture(scope="module")
def judged_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-round scripted run for the judges to read."""
    opts = RunOptions(
        model=ModelConfig(model="scripted"),
        home=REPO,
        runs_root=tmp_path_factory.mktemp("runs"),
        rounds=3,
        command=["t"],
    )
    return asyncio.run(run_session(opts)).run_dir.path


class Judge:
    """A deterministic judge. It reads which party is under review from the prompt and
    gives it BASE (clipped to each dimension's range). With `first_high`, it is order
    sensitive in a known way: the dimension its answer's schema lists first gets the top
    of its scale. With `shift`, the model named there scores that dimension one higher."""

    def __init__(
        self, names: dict[str, str], first_high: bool = False, shift: tuple[str, str] = ("", "")
    ) -> None:
        self.names = names  # card name -> party id
        self.first_high = first_high
        self.shift = shift

    def __call__(self, body: dict[str, Any]) -> Completion:
        prompt = body["messages"][-1]["content"]
        party = self.names[prompt.split("party under review: ")[1].split(" (")[0]]
        answer = {}
        properties = body["response_format"]["json_schema"]["schema"]["properties"]
        for i, (dim, spec) in enumerate(properties.items()):
            low = spec["properties"]["score"]["minimum"]
            high = spec["properties"]["score"]["maximum"]
            score = min(BASE[party], high)
            if self.first_high and i == 0:
                score = high
            if self.shift == (body["model"], dim):
                score = min(score + 1, high)
            answer[dim] = {"score": max(score, low), "justification": "as read", "cites": []}
        return Completion(json.dumps(answer))


def names() -> dict[str, str]:
    cards = load_scenario("cornered-in-iraq", REPO).cards
    return {c.name: pid for pid, c in cards.items()}


def interval_alpha(pairs: list[tuple[int, int]]) -> float:
    """Krippendorff's alpha, interval, for two raters who both scored every unit, written
    from its definition: 1 - (observed disagreement) / (disagreement expected by chance)."""
    values = [v for pair in pairs for v in pair]
    n = len(values)
    observed = sum(2 * (a - b) ** 2 for a, b in pairs) / n  # m_u = 2: 1 / (m_u - 1) = 1
    expected = sum((a - b) ** 2 for a in values for b in values) / (n * (n - 1))
    return 1 - observed / expected


async def test_a_judge_that_favours_the_first_dimension_is_caught(judged_run: Path) -> None:
    with LoopbackServer(Judge(names(), first_high=True)) as srv:
        judge = judge_setup(
            ModelConfig(model="judge-a", base_url=srv.base_url), RUBRIC, REPO, None, orders=2
        )
        report = await evaluate_run(judged_run, judge)
        await judge.aclose()
        prompts = [r["messages"][0]["content"] for r in srv.requests]
    assert srv.calls == 2 * len(PARTIES), "each party judged once under each presentation"
    # the second presentation lists the dimensions, and each scale's anchors, the other way round
    reversed_prompts = [p for p in prompts if p.index(f"## {LAST}") < p.index(f"## {FIRST}")]
    assert len(reversed_prompts) == len(PARTIES)
    assert all(p.index("- 10: Consistently") < p.index("- 0: Out of") for p in reversed_prompts)
    assert report.presentations == ["original", "reversed"] and len(report.verdicts) == 12
    a = report.agreement
    assert a is not None and a.judges == []  # one judge: no agreement across judges
    by_dim = {f.dimension: f for f in a.presentations}
    # original: persona_fidelity at 10 and strategic_quality at BASE; reversed: the other way
    pairs = [(10, BASE[p]) for p in PARTIES]
    assert by_dim[FIRST].alpha == pytest.approx(interval_alpha(pairs))
    # by hand: 12 values (seven 10s: six as written, militias reversed; and 2 9 4 6 3), sum 94,
    # squares 846. Observed: sum over units of 2 (10 - b)^2 = 332, over 12 values. Expected:
    # ordered pairs' squared differences 2 (12 * 846 - 94^2) = 2632, over 12 * 11.
    # alpha = 1 - (332 / 12) / (2632 / 132) = 1 - 913 / 658 = -255 / 658
    assert by_dim[FIRST].alpha == pytest.approx(-255 / 658)
    assert by_dim[LAST].alpha == pytest.approx(-255 / 658)
    assert by_dim[FIRST].units == 6 and by_dim[FIRST].same == pytest.approx(1 / 6)
    for dim in ("realism", "leakage", "escalation"):  # untouched by the order: full agreement
        assert by_dim[dim].alpha == pytest.approx(1.0) and by_dim[dim].same == 1.0
    # a move of more than 10% of the range (1 point of 10) is flagged: 10 - BASE > 1
    moved = {(f.party, f.dimension) for f in a.flags}
    expected = {(p, d) for p in PARTIES for d in (FIRST, LAST) if 10 - BASE[p] > 1}
    assert moved == expected and len(expected) == 8
    flag = next(f for f in a.flags if f.party == "sudani" and f.dimension == FIRST)
    assert flag.scores == {"original": 10, "reversed": 2} and flag.change == 8
    assert flag.transcript == judged_run.name and flag.judge == "judge-a"
    row = eval_row(report)
    assert row["judge.order_flags"] == 8 and row["judge.order_alpha_min"] == round(-255 / 658, 3)
    assert row[f"judge.{FIRST}"] == round((60 + sum(BASE.values())) / 12, 3)  # both orders
    stored = read_report(judged_run / "eval.json")
    assert stored.agreement == a and stored.judge is not None
    assert {v.presentation for v in stored.judge.values()} == {"original"}


async def test_a_judge_that_ignores_order_agrees_with_itself(judged_run: Path) -> None:
    with LoopbackServer(Judge(names())) as srv:
        judge = judge_setup(
            ModelConfig(model="judge-a", base_url=srv.base_url), RUBRIC, REPO, None, orders=2
        )
        report = await evaluate_run(judged_run, judge)
        await judge.aclose()
    a = report.agreement
    assert a is not None and a.flags == [] and len(a.presentations) == 5
    assert all(f.alpha == pytest.approx(1.0) and f.same == 1.0 for f in a.presentations)


async def test_two_judges_are_compared_with_each_other(judged_run: Path) -> None:
    with LoopbackServer(Judge(names(), shift=("judge-b", "realism"))) as srv:
        configs = [ModelConfig(model=m, base_url=srv.base_url) for m in ("judge-a", "judge-b")]
        judge = judge_setup(configs, RUBRIC, REPO, None)
        report = await evaluate_run(judged_run, judge)
        await judge.aclose()
    assert report.judge_models == ["judge-a", "judge-b"] and srv.calls == 12
    a = report.agreement
    assert a is not None and a.presentations == [] and a.flags == []
    by_dim = {f.dimension: f for f in a.judges}
    scores_a = [BASE[p] for p in sorted(PARTIES)]  # units in the order of their keys
    scores_b = [min(s + 1, 10) for s in scores_a]
    library = krippendorff.alpha(
        reliability_data=[scores_a, scores_b], level_of_measurement="interval"
    )
    assert by_dim["realism"].alpha == pytest.approx(library)
    assert by_dim["realism"].alpha == pytest.approx(
        interval_alpha(list(zip(scores_a, scores_b, strict=True)))
    )
    assert by_dim["realism"].same == pytest.approx(1 / 6)  # militias: 10 either way
    assert by_dim["escalation"].alpha == pytest.approx(1.0)
    assert report.judge is not None and all(v.judge == "judge-a" for v in report.judge.values())


def test_eval_command_shows_agreement_and_flags(judged_run: Path, tmp_path: Path) -> None:
    with LoopbackServer(Judge(names(), first_high=True)) as srv:
        args = ["eval", str(judged_run), "--judge-model", "judge-a", "--judge-model", "judge-b"]
        args += ["--judge-base-url", srv.base_url, "--judge-orders", "2", "--no-cache"]
        res = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        assert srv.calls == 2 * 2 * len(PARTIES)
    out = res.output
    assert "Judge agreement over 1 run(s)" in out
    row = next(line for line in out.splitlines() if line.strip("│ ").startswith(FIRST))
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    twice = [(10, BASE[p]) for p in PARTIES] * 2  # each judge's pair of verdicts on each party
    assert cells == [FIRST, f"{interval_alpha(twice):.2f}", "17% of 12", "1.00", "100% of 12", "8"]
    assert "16 verdict(s) moved with the order by more than 10% of its range" in out
    assert "and 6 more: agreement.flags in each eval.json" in out
    assert f"{judged_run.name} sudani {FIRST}, judge-a: 10 (original) -> 2 (reversed)" in out
    res = runner.invoke(app, [*args[:2], "--judge-model", "j", "--judge-model", "j"])
    assert res.exit_code == 2 and "named twice" in res.output
    res = runner.invoke(app, [*args[:4], "--judge-orders", "3"])
    assert res.exit_code == 2 and "orders must be 1 to 2" in res.output


async def test_calibration_measures_the_same_agreement(home: Path) -> None:
    loaded = load_scenario("cornered-in-iraq", home)
    cases = load_set(home / "tests" / "calibration")
    with LoopbackServer(Judge(names(), first_high=True)) as srv:
        cfg = ModelConfig(model="fake", base_url=srv.base_url)
        judge = judge_setup(cfg, RUBRIC, home, None, orders=2)
        result = await judge_agreement(loaded, cases, judge)
        await judge.aclose()
    checkers = {a.checker for a in result.checks}
    assert checkers == {"judge:fake", "judge:fake (reversed)"}
    # persona fidelity is 10 for everyone as written (no break found), BASE when reversed
    found = {a.checker: a for a in result.checks if a.kind == "persona_break"}
    assert found["judge:fake"].caught == 0
    assert found["judge:fake (reversed)"].false_alarms  # BASE <= 3 reads as a break
    r = result.reliability
    assert r is not None
    by_dim = {f.dimension: f for f in r.presentations}
    pairs = [(10, BASE[p]) for _ in cases for p in PARTIES]
    assert by_dim[FIRST].units == len(cases) * 6
    assert by_dim[FIRST].alpha == pytest.approx(interval_alpha(pairs))
    assert len(r.flags) == 8 * len(cases)
    assert {f.transcript for f in r.flags} == {c.name for c in cases}


def test_calibrate_command_reports_judge_agreement(tmp_path: Path) -> None:
    small = tmp_path / "set"
    small.mkdir()
    for name in ("clean", "leak"):
        shutil.copy(REPO / "tests" / "calibration" / f"{name}.jsonl", small)
    (small / "labels.yaml").write_text("clean: {}\nleak: {leak: [kurds]}\n")
    (small / "set.yaml").write_text("scenario: cornered-in-iraq\n")
    with LoopbackServer(Judge(names(), first_high=True)) as srv:
        args = ["calibrate", "--set", str(small), "--home", str(REPO), "--judge-model", "fake"]
        args += ["--judge-base-url", srv.base_url, "--judge-orders", "2"]
        res = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert srv.calls == 2 * 2 * len(PARTIES)
    assert "Judge agreement over 2 labelled transcripts" in res.output
    row = next(line for line in res.output.splitlines() if line.strip("│ ").startswith(FIRST))
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    pairs = [(10, BASE[p]) for p in PARTIES] * 2  # one pair of verdicts per case and party
    assert cells == [FIRST, f"{interval_alpha(pairs):.2f}", "17% of 12", "8"]  # one judge
    assert "16 verdict(s) moved with the order" in res.output
    assert "judge:fake (reversed)" in res.output


def test_a_judges_file_seats_each_judge_at_its_own_endpoint(
    judged_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / judged_run.name
    shutil.copytree(judged_run, run)
    with (
        LoopbackServer(Judge(names())) as here,
        LoopbackServer(Judge(names(), shift=("judge-b", "realism"))) as there,
    ):
        panel = tmp_path / "judges.yaml"
        panel.write_text(
            f"judges:\n  - model: judge-a\n    base_url: {here.base_url}\n"
            f"  - model: judge-b\n    base_url: {there.base_url}\n    max_tokens: 900\n"
        )
        args = ["eval", str(run), "--judges", str(panel), "--no-cache"]
        res = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
        asked_a, asked_b = list(here.requests), list(there.requests)
    assert len(asked_a) == len(asked_b) == len(PARTIES), "each judge asked at its own endpoint"
    assert {b["model"] for b in asked_a} == {"judge-a"} and {b["model"] for b in asked_b} == {
        "judge-b"
    }
    assert all(b["temperature"] == 0 and b["max_tokens"] == 1500 for b in asked_a)
    assert all(b["max_tokens"] == 900 for b in asked_b), "what an entry sets holds"
    report = json.loads((run / "eval.json").read_text())
    assert report["judge_models"] == ["judge-a", "judge-b"]
    assert "Judge agreement over 1 run(s)" in res.output

    # a file and --judge-model together make one panel, and a name still comes once
    res = runner.invoke(app, [*args, "--judge-model", "judge-a"])
    assert res.exit_code == 2 and "'judge-a' is named twice" in res.output
    for text, said in [
        ("judges: []\n", "judges"),
        ("judges:\n  - model: j\n    base_uri: http://x\n", "base_uri"),
        ("judge:\n  - model: j\n", "judge"),
    ]:
        panel.write_text(text)
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        line = res.output.strip()
        assert "judges.yaml" in line and said in line and "Traceback" not in line, line


@pytest.mark.parametrize("command", ["eval", "calibrate"])
def test_a_dead_judge_endpoint_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    """Said before any judging, and the judge's connections closed behind it (aiohttp
    complained of an unclosed session after eval's line)."""
    args = [sys.executable, "-m", "majlis", command, "--home", str(REPO)]
    if command == "eval":
        run = tmp_path / "sample"
        shutil.copytree(REPO / "runs" / "sample", run)
        args += [str(run), "--no-cache"]
    args += ["--judge-model", "j", "--judge-base-url", "http://127.0.0.1:9/v1"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "majlis: error: cannot reach model endpoint http://127.0.0.1:9/v1: connection refused"
        " (is the server running, on that port?)"
    ]
