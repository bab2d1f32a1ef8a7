"""Sweeps: variants x seeds run concurrently, compared on shared seeds, cached, resumable."""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import FailAfter, add_variant, experiment, stable, sweep_events
from typer.testing import CliRunner

from majlis.cli import app
from majlis.compare import Experiment, collect, compare, run_sweep, write_report
from majlis.model import LoopbackServer, portion, scripted_responder
from majlis.workshop import write_html

runner = CliRunner()


NO_RETRIES = {"max_retries": 0}  # a failing endpoint fails its session at once


async def test_compare_finds_a_real_difference_and_not_a_fake_one(
    home_copy: Path, tmp_path: Path
) -> None:
    add_variant(home_copy, "same", "description: identical to the baseline\n")
    with LoopbackServer(scripted_responder) as srv:
        exp = experiment(
            srv.base_url,
            ["baseline", "soft-washington", "same"],
            seeds=4,
            concurrency=6,
            default=NO_RETRIES,
        )
        result = await run_sweep(
            exp, tmp_path / "sweep", home_copy, cache_file=tmp_path / "cache.sqlite"
        )
    assert not result.failed and len(result.done) == 12
    c = compare(collect(tmp_path / "sweep"), metrics=["score.washington", "deal"])
    washington = c.results[0]
    soft = washington.paired["soft-washington vs baseline"]
    assert soft.n == 4 and soft.mean_diff < 0, "an eager Washington ends with less"
    assert "too few pairs" in soft.note  # four pairs cannot reach p < 0.05 with an exact test
    twin = washington.paired["same vs baseline"]
    assert twin.mean_diff == 0 and twin.p_value == 1.0
    assert washington.groups["baseline"].n == 4
    paths = write_report(
        c, tmp_path / "sweep" / "compare", view=lambda run: write_html(run, "facilitator")
    )
    html = paths[0].read_text()
    assert "view-facilitator.html" in html, "each run links to its transcript page"
    assert "score.washington" in html and "<script" not in html and "Deal rate" in html
    assert "baseline--scripted--s1" in html and any("side-by-side" in p.name for p in paths)
    # a variant identical to the baseline never parts from it; an eager Washington does
    sides = {p.name: p.read_text() for p in paths if p.name.startswith("side-by-side--")}
    assert len(sides) == 8
    for name, page in sides.items():
        identical = "Identical: every move of the two runs is the same." in page
        assert identical == name.startswith("side-by-side--same--"), name
        assert page.count('id="first-difference"') == (0 if identical else 1), name
    # and the report's list of those pages says where each pair parts
    listed = html.split("<h2>Side by side, same seed</h2>")[1].split("</ul>")[0]
    assert listed.count(": identical</li>") == 4 and listed.count(": part at round ") == 4
    # every branch of the scenario has its column, reached or not, in the scenario's words
    assert "<th>Muddle through</th><th>Rupture</th>" in html
    summary = (tmp_path / "sweep" / "compare" / "summary.md").read_text()
    branches = summary.split("| group | Muddle through | Rupture |\n| --- | --- | --- |\n")[1]
    counts = [line.split(" | ")[1:] for line in branches.splitlines()]
    assert [sum(int(n.strip(" |")) for n in c) for c in counts] == [4, 4, 4]
    rows = (tmp_path / "sweep" / "compare" / "runs.csv").read_text().splitlines()
    assert len(rows) == 13 and rows[0].startswith("run_id,variant,model,seed")


async def test_second_run_makes_no_calls_and_writes_identical_events(
    home: Path, tmp_path: Path
) -> None:
    with LoopbackServer(scripted_responder) as srv:
        exp = experiment(
            srv.base_url, ["baseline", "firm-washington"], seeds=2, rounds=3, default=NO_RETRIES
        )
        cache = tmp_path / "cache.sqlite"
        await run_sweep(exp, tmp_path / "first", home, cache_file=cache)
        calls = srv.calls
        assert calls > 0
        second = await run_sweep(exp, tmp_path / "second", home, cache_file=cache)
        assert srv.calls == calls, "zero model calls the second time"
    assert second.cache is not None and second.cache.misses == 0
    a, b = sweep_events(tmp_path / "first"), sweep_events(tmp_path / "second")
    assert a.keys() == b.keys() and len(a) == 4
    for run_id in a:
        assert stable(a[run_id]) == stable(b[run_id])


async def test_interrupted_sweep_resumes_without_rerunning_finished_sessions(
    home: Path, tmp_path: Path
) -> None:
    with LoopbackServer(FailAfter(150)) as srv:  # a 3-round session takes 36 calls: dies in the 5th
        exp = experiment(
            srv.base_url, ["baseline"], seeds=6, rounds=3, concurrency=1, default=NO_RETRIES
        )
        first = await run_sweep(exp, tmp_path / "sweep", home, cache_file=None)
        finished = set(first.done)
        assert 0 < len(finished) < 6 and first.failed
        srv.responder = scripted_responder
        before = srv.calls
        second = await run_sweep(exp, tmp_path / "sweep", home, cache_file=None)
        new_requests = srv.requests[before:]
    assert set(second.skipped) == finished
    assert not second.failed and len(second.done) + len(second.skipped) == 6
    finished_seeds = {int(r.rsplit("--s", 1)[1]) for r in finished}
    assert all(r["seed"] not in finished_seeds for r in new_requests), (
        "no finished session ran again"
    )
    assert len(new_requests) < 36 * (6 - len(finished)), (
        "the interrupted session resumed, not restarted"
    )
    for events in sweep_events(tmp_path / "sweep").values():
        assert [e["seq"] for e in events] == list(range(len(events))) and events[-1][
            "type"
        ] == "outcome"


def test_sweep_and_compare_commands(home: Path, tmp_path: Path) -> None:
    with LoopbackServer(scripted_responder) as srv:
        spec = tmp_path / "exp.yaml"
        experiment(
            srv.base_url,
            ["baseline", "soft-washington"],
            path=spec,
            name="cli",
            seeds=2,
            rounds=2,
            model_name="s",
            prices={"scripted": {"input": 1.0, "output": 2.0}},
        )
        args = [
            "sweep",
            str(spec),
            "--out",
            str(tmp_path / "sw"),
            "--cache-file",
            str(tmp_path / "c.sqlite"),
            "--home",
            str(home),
        ]
        res = runner.invoke(app, [*args, "--workers", "2"])
        assert res.exit_code == 0, res.output
        assert "4 run, 0 already complete" in res.output and "cache:" in res.output
        assert "4/4" in res.output and "tokens" in res.output and "0 tokens" not in res.output
        again = runner.invoke(app, args)
        assert "0 run, 4 already complete" in again.output
    res = runner.invoke(app, ["compare", str(tmp_path / "sw"), "--metric", "score.washington"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sw" / "compare" / "report.html").exists()
    bad = runner.invoke(app, ["compare", str(tmp_path / "sw"), "--metric", "charisma"])
    assert bad.exit_code == 2 and "unknown metric 'charisma'" in bad.output
    spec.write_text("name: x\nvariants: [nope]\n")
    bad = runner.invoke(
        app, ["sweep", str(spec), "--home", str(home), "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "unknown variant 'nope'" in bad.output


def test_the_sweep_command_resolves_its_models_once(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pre-flight, the worker count and the sessions' limits all use one resolution of
    the sweep's models (each variant x model set-up once), not one each."""
    import majlis.run

    resolved: list[str | None] = []
    real = majlis.run.party_configs

    def counted(opts, parties, root):  # type: ignore[no-untyped-def]
        resolved.append(opts.variant)
        return real(opts, parties, root)

    monkeypatch.setattr(majlis.run, "party_configs", counted)
    with LoopbackServer(scripted_responder) as srv:
        spec = tmp_path / "exp.yaml"
        experiment(srv.base_url, ["baseline", "soft-washington"], path=spec, seeds=1, rounds=1)
        args = ["sweep", str(spec), "--out", str(tmp_path / "sw"), "--home", str(home)]
        res = runner.invoke(app, [*args, "--no-cache"])
    assert res.exit_code == 0, res.output
    assert sorted(resolved, key=str) == [None, "soft-washington"]


@pytest.mark.parametrize("method", ["fork", "spawn"])  # Linux forks; macOS would spawn
async def test_workers_run_the_same_sessions_in_separate_processes(
    home: Path, tmp_path: Path, monkeypatch: Any, method: str
) -> None:
    from majlis.compare import workers as workers_module

    monkeypatch.setattr(workers_module, "_mp", lambda: multiprocessing.get_context(method))
    seen: list[tuple[str, dict[str, Any]]] = []
    with LoopbackServer(scripted_responder) as srv:
        alone = experiment(
            srv.base_url, ["baseline", "firm-washington"], seeds=2, rounds=2, default=NO_RETRIES
        )
        spread = alone.model_copy(update={"workers": 2})
        one = await run_sweep(alone, tmp_path / "one", home, cache_file=tmp_path / "a.sqlite")
        two = await run_sweep(
            spread,
            tmp_path / "two",
            home,
            cache_file=tmp_path / "b.sqlite",
            progress=lambda what, info: seen.append((what, info)),
        )
    assert sorted(two.done) == sorted(one.done) and len(two.done) == 4 and not two.failed
    assert {info["worker"] for what, info in seen if what == "started"} == {0, 1}
    calls = sum(1 for ev in sweep_events(tmp_path / "two").values() for e in ev if e["usage"])
    assert sum(what == "usage" for what, _ in seen) == calls, "usage reaches the parent"
    assert two.cache is not None and two.cache.hits + two.cache.misses == calls
    a, b = sweep_events(tmp_path / "one"), sweep_events(tmp_path / "two")
    assert a.keys() == b.keys()
    for run_id in a:
        assert stable(a[run_id]) == stable(b[run_id]), "a worker's session is the same session"
    sweep = json.loads((tmp_path / "two" / "sweep.json").read_text())
    assert set(sweep["sessions"].values()) == {"complete"}
    assert sweep["cache"] == {"hits": two.cache.hits, "misses": two.cache.misses}


async def test_a_worker_that_dies_fails_only_its_own_sessions(
    home: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    from majlis.compare import workers as workers_module

    real = workers_module._Job.run

    async def run(self: Any, todo: Any, result: Any, notify: Any) -> None:
        if self.part == (1, 2):
            raise SystemExit(3)  # as if the worker process were killed
        await real(self, todo, result, notify)

    monkeypatch.setattr(workers_module._Job, "run", run)  # forked workers inherit the patch
    with LoopbackServer(scripted_responder) as srv:
        exp = experiment(
            srv.base_url, ["baseline"], seeds=4, rounds=1, workers=2, default=NO_RETRIES
        )
        result = await run_sweep(exp, tmp_path / "sweep", home, cache_file=None)
    assert sorted(result.done) == ["baseline--scripted--s1", "baseline--scripted--s3"]
    assert sorted(result.failed) == ["baseline--scripted--s2", "baseline--scripted--s4"]
    assert all("worker process exited (code 3)" in e for e in result.failed.values())


def test_workers_are_capped_by_sessions_limits_and_people(home_copy: Path) -> None:
    from majlis.compare import sweep_configs, worker_count

    def count(exp: Experiment, sessions: int) -> int:
        return worker_count(exp, sessions, sweep_configs(exp, home_copy))

    exp = experiment(
        "http://127.0.0.1:9/v1",
        ["baseline"],
        seeds=4,
        workers=4,
        concurrency=8,
        default=NO_RETRIES,
    )
    assert count(exp, 100) == 4
    assert count(exp, 3) == 3, "never more workers than sessions to run"
    assert count(exp.model_copy(update={"rpm": 2}), 100) == 2
    narrow = exp.model_copy(deep=True)
    narrow.models[0].default.concurrency = 3
    assert count(narrow, 100) == 3, "each worker needs a call slot on every endpoint"
    human = exp.model_copy(deep=True)
    human.models[0].parties = {
        "sudani": human.models[0].default.model_copy(update={"model": "human"})
    }
    assert count(human, 100) == 1, "a person answers at this terminal"
    # a variant's model overrides count as much as the experiment's own models
    for name, override in [("one-lane", "{concurrency: 2}"), ("trainee", "{model: human}")]:
        add_variant(home_copy, name, f"models:\n  washington: {override}\n")
    assert count(exp.model_copy(update={"variants": ["baseline", "one-lane"]}), 100) == 2
    assert count(exp.model_copy(update={"variants": ["baseline", "trainee"]}), 100) == 1


@dataclass
class PeakServer(LoopbackServer):
    """Counts the chat requests it is answering at once."""

    in_flight: int = 0
    peak: int = 0

    async def _chat(self, request: Any) -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super()._chat(request)
        finally:
            self.in_flight -= 1


async def test_an_endpoint_limit_set_by_a_variant_holds_for_the_whole_sweep(
    home_copy: Path, tmp_path: Path
) -> None:
    add_variant(home_copy, "one-lane", "models:\n  washington: {concurrency: 1}\n")
    with PeakServer(scripted_responder, latency=0.02) as srv:
        exp = experiment(
            srv.base_url,
            ["baseline", "one-lane"],
            seeds=2,
            rounds=1,
            concurrency=4,
            workers=2,
            default=NO_RETRIES,
        )
        result = await run_sweep(exp, tmp_path / "sweep", home_copy, cache_file=None)
    assert len(result.done) == 4, result.failed
    # the limit is the endpoint's: the baseline's sessions on it are held to it as well
    assert srv.peak == 1


def test_a_variant_that_moves_a_party_to_a_dead_endpoint_is_refused_up_front(
    home_copy: Path, tmp_path: Path
) -> None:
    dead = "http://127.0.0.1:9/v1"
    folder = add_variant(home_copy, "elsewhere", f"models:\n  tehran: {{base_url: '{dead}'}}\n")
    with LoopbackServer(scripted_responder) as srv:
        spec = tmp_path / "exp.yaml"
        experiment(srv.base_url, ["baseline", "elsewhere"], path=spec, seeds=1, default=NO_RETRIES)
        out = tmp_path / "sw"
        res = runner.invoke(app, ["sweep", str(spec), "--home", str(home_copy), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "cannot reach model endpoint" in res.output and "127.0.0.1:9" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()
    (folder / "variant.yaml").write_text("models:\n  pentagon: {concurrency: 1}\n")
    res = runner.invoke(app, ["sweep", str(spec), "--home", str(home_copy), "--out", str(out)])
    assert res.exit_code == 2 and "models.pentagon" in res.output and "unknown party" in res.output
    assert not out.exists()


@pytest.mark.parametrize("total", [1, 2, 7, 8, 600])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_workers_share_a_limit_without_loss_or_excess(total: int, k: int) -> None:
    shares = [portion(total, (i, k)) for i in range(k)]
    assert sum(shares) == total and max(shares) - min(shares) <= 1
    assert portion(None, (0, k)) is None
