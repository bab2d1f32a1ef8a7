"""Faults at the endpoint: every session ends with a recorded status, and failed ones resume.

The loopback server runs the scripted player behind a `FaultPlan` (majlis.model.faults) that
injects, on chosen request numbers, the ways a real endpoint misbehaves: 429 with
Retry-After, 500, 503, a connection dropped mid-body, a hang past the client's timeout, a
cut or malformed JSON body, a refusal, a reply that breaks the move schema, no choices.
Transport faults must be retried with backoff (and leave the transcript exactly as a clean
run's); output faults re-asked or recorded as a failed turn; faults that do not stop end
the session as `failed` with a one-line error, resumable once the endpoint recovers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from conftest import REPO, events_of, experiment, stable
from starlette.responses import JSONResponse
from typer.testing import CliRunner

from majlis.cli import app
from majlis.compare import run_sweep
from majlis.model import (
    KINDS,
    OUTPUT,
    TRANSPORT,
    BadResponseError,
    Completion,
    FaultPlan,
    LoopbackServer,
    ModelConfig,
    make_client,
    scripted_responder,
)
from majlis.protocol import Vote, strict_schema
from majlis.run import RunDir, RunOptions, resume_session, run_session

ROUNDS = 2
SEED = 5
VOTE_MSGS = [{"role": "system", "content": "vote"}, {"role": "user", "content": "vote now"}]
GOOD_VOTE = json.dumps({"private_reasoning": "fine", "vote": "accept"})
runner = CliRunner()


def assert_whole(events: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in events] == list(range(len(events))), "no gaps, no duplicates"
    assert [e["type"] for e in events].count("outcome") == 1
    assert events[-1]["type"] == "outcome"


def cfg(server: LoopbackServer, kind: str | None = None, **kw: Any) -> ModelConfig:
    """The scripted player over HTTP; a short timeout only where a hang must outlast it."""
    timeout = 0.5 if kind == "hang" else 5.0
    return ModelConfig(
        model="scripted",
        base_url=server.base_url,
        **{"timeout": timeout, "max_retries": 3, **kw},
    )


def options(model: ModelConfig, runs_root: Path, **kw: Any) -> RunOptions:
    """A session of ROUNDS rounds on the repository's data, its run folder under runs_root."""
    return RunOptions(model=model, home=REPO, runs_root=runs_root, rounds=ROUNDS, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """A clean session over HTTP: what every transport-faulted session must reproduce."""
    out = tmp_path_factory.mktemp("reference")

    async def go() -> Path:
        with LoopbackServer(scripted_responder) as srv:
            return (await run_session(options(cfg(srv), out, seed=SEED))).run_dir.path

    return events_of(asyncio.run(go()))


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole-session tests are about outcomes, not waiting: backoff starts at 20 ms there.

    The real schedule (0.5 s doubling, Retry-After honoured) is measured by the tests above.
    """
    monkeypatch.setattr("majlis.model.openai_backend._backoff", lambda n: 0.02 * 2**n)


@pytest.fixture
def faulty(quick_backoff: None) -> Iterator[tuple[LoopbackServer, FaultPlan]]:
    """A scripted server whose plan a test fills in (it starts with no faults)."""
    plan = FaultPlan(retry_after=0.1, hang=2.0)
    with LoopbackServer(scripted_responder, fault=plan) as srv:
        yield srv, plan
        plan.stop()  # a hang in progress ends now, so the server stops at once


def use(plan: FaultPlan, **changes: Any) -> None:
    for k, v in changes.items():
        setattr(plan, k, v)


# ---------------------------------------------------------------------------------------
# One fault, one call: what the client does about each kind


@pytest.mark.parametrize("kind", KINDS)
async def test_each_fault_once_is_survived_by_one_more_request(kind: str) -> None:
    plan = FaultPlan.at([1], kind, retry_after=0.1, hang=2.0)
    with LoopbackServer(lambda body: Completion(GOOD_VOTE), fault=plan) as srv:
        client = make_client(ModelConfig(model="m", base_url=srv.base_url, timeout=0.5))
        try:
            answer = await client.ask(VOTE_MSGS, Vote, strict_schema(Vote))
        finally:
            await client.backend.aclose()
            plan.stop()
        requests = list(srv.requests)
    assert answer.value.vote == "accept"
    assert plan.injected == [(1, kind)] and len(requests) == 2, "every attempt is counted"
    if kind in TRANSPORT:  # retried below the model layer: the same request again
        assert answer.attempts == 1
        assert requests[1]["messages"] == requests[0]["messages"]
    else:  # re-asked, with what was wrong fed back
        assert answer.attempts == 2
        assert "not valid" in requests[1]["messages"][-1]["content"]


async def test_retry_after_is_honoured() -> None:
    plan = FaultPlan.at([1], "429", retry_after=1.0)
    with LoopbackServer(lambda body: Completion(GOOD_VOTE), fault=plan) as srv:
        client = make_client(ModelConfig(model="m", base_url=srv.base_url, max_retries=2))
        start = time.monotonic()
        await client.ask(VOTE_MSGS, Vote, strict_schema(Vote))
        elapsed = time.monotonic() - start
        await client.backend.aclose()
    assert srv.calls == 2
    # the SDK's own first backoff is at most 0.5 s: a wait of a second is the header's
    assert 1.0 <= elapsed < 3.0, elapsed


@pytest.mark.parametrize("kinds", [("503", "drop"), ("cut_json", "bad_json")])
async def test_backoff_grows_between_attempts(kinds: tuple[str, ...]) -> None:
    plan = FaultPlan(schedule=dict(enumerate(kinds, start=1)), hang=2.0)
    arrivals: list[float] = []

    def respond(body: dict[str, Any]) -> Completion:
        return Completion(GOOD_VOTE)

    def fault(body: dict[str, Any], n: int):
        arrivals.append(time.monotonic())
        return plan(body, n)

    with LoopbackServer(respond, fault=fault) as srv:
        client = make_client(
            ModelConfig(model="m", base_url=srv.base_url, timeout=0.5, max_retries=3)
        )
        try:
            answer = await client.ask(VOTE_MSGS, Vote, strict_schema(Vote))
        finally:
            await client.backend.aclose()
            plan.stop()
    assert answer.attempts == 1 and srv.calls == 3
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # waits of 0.5 s then 1 s, less up to 25% jitter: the second is longer than the first
    # can ever be (lower bounds hold under any load; the upper ones are loose)
    assert 0.375 <= gaps[0] < 2.0, gaps
    assert 0.75 <= gaps[1] < 3.0, f"backoff doubles: {gaps}"


@pytest.mark.parametrize(
    "kinds", [(k, k) for k in TRANSPORT] + [("500", "bad_json", "drop"), ("cut_json", "503")]
)
async def test_a_fault_that_outlasts_the_retries_surfaces(kinds: tuple[str, ...]) -> None:
    """max_retries bounds the requests of one call, whatever mix of faults it meets."""
    plan = FaultPlan(schedule=dict(enumerate(kinds, start=1)), retry_after=0.1, hang=2.0)
    with LoopbackServer(lambda body: Completion(GOOD_VOTE), fault=plan) as srv:
        client = make_client(
            ModelConfig(model="m", base_url=srv.base_url, timeout=0.5, max_retries=len(kinds) - 1)
        )
        with pytest.raises((openai.APIError, BadResponseError)) as info:
            await client.ask(VOTE_MSGS, Vote, strict_schema(Vote))
        await client.backend.aclose()
        plan.stop()
    assert srv.calls == len(kinds), "one try and max_retries retries, no more"
    assert "\n" not in str(info.value)
    if kinds[-1] in ("cut_json", "bad_json"):
        assert "not valid JSON" in str(info.value) and "line 1 column" in str(info.value)


# ---------------------------------------------------------------------------------------
# Whole sessions through faults


# what each injected transport fault is recorded as
NOTED = {"drop": "connection", "hang": "timeout", "cut_json": "cut_body", "bad_json": "cut_body"}


@pytest.mark.parametrize("kind", TRANSPORT)
async def test_transient_transport_faults_leave_the_transcript_untouched(
    kind: str, faulty: tuple[LoopbackServer, FaultPlan], tmp_path: Path, reference: list
) -> None:
    server, plan = faulty
    use(plan, schedule=dict.fromkeys((4, 10), kind))
    result = await run_session(options(cfg(server, kind), tmp_path, seed=SEED))
    assert plan.count(kind) == 2
    assert result.manifest.status == "complete"
    events = events_of(result)
    assert_whole(events)
    # each retry is recorded on the first event of the call that met it, and nowhere else
    noted = NOTED.get(kind, kind)
    retried = [e for e in events if "retries" in e]
    assert len(retried) == 2 and all(e["usage"] for e in retried), "on the calls' first events"
    for e in retried:
        (note,) = e["retries"]
        assert note["kind"] == noted and note["status"] == (int(kind) if kind.isdigit() else None)
        assert note["wait_s"] >= (0.1 if kind == "429" else 0.0), "Retry-After: 0.1 s"
    totals = result.outcome.transport_retries
    assert totals.count == 2 and totals.by_kind == {noted: 2}
    assert totals.wait_s == pytest.approx(sum(e["retries"][0]["wait_s"] for e in retried))
    # and otherwise the transcript is a clean run's
    untouched = [{k: v for k, v in e.items() if k != "retries"} for e in events]
    assert stable(untouched) == stable(reference), "retries leave the transcript as it was"
    assert server.calls == len(reference_calls(reference)) + 2
    assert not [e for e in reference if "retries" in e], "a clean run records none"


def reference_calls(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("usage")]


@pytest.mark.parametrize("kind", OUTPUT)
async def test_transient_bad_output_is_repaired_by_re_asking(
    kind: str, faulty: tuple[LoopbackServer, FaultPlan], tmp_path: Path
) -> None:
    server, plan = faulty
    use(plan, schedule=dict.fromkeys((3, 9, 10), kind))
    result = await run_session(options(cfg(server, output_retries=2), tmp_path, seed=SEED))
    events = events_of(result)
    assert_whole(events)
    assert result.manifest.status == "complete"
    assert not [e for e in events if e["type"] == "error"], "every bad reply was repaired"
    extra = sum(e["content"]["attempts"] - 1 for e in events if e.get("usage"))
    assert extra == plan.count(kind) == 3, "each bad reply cost exactly one re-ask"
    assert result.outcome.calls == server.calls


@pytest.mark.parametrize("kind", OUTPUT)
async def test_a_party_whose_output_never_fits_has_failed_turns(
    kind: str, faulty: tuple[LoopbackServer, FaultPlan], tmp_path: Path
) -> None:
    server, plan = faulty
    use(plan, rates={kind: 1.0}, parties=frozenset({"washington"}))
    result = await run_session(options(cfg(server, output_retries=1), tmp_path))
    events = events_of(result)
    assert_whole(events)
    assert result.manifest.status == "complete"
    errors = [e for e in events if e["type"] == "error"]
    assert errors and {e["content"]["party"] for e in errors} == {"washington"}
    assert all(e["audience"] == [] and e["content"]["attempts"] == 2 for e in errors)
    assert all("\n" not in e["content"]["error"] for e in errors)
    assert result.outcome.failed_turns == len(errors)
    assert not any(e["type"] == "message" and e["speaker"] == "washington" for e in events)
    assert plan.count(kind) == 2 * len(errors)


@pytest.mark.parametrize("kind", TRANSPORT)
async def test_a_lasting_fault_fails_the_run_which_resumes_when_it_stops(
    kind: str, faulty: tuple[LoopbackServer, FaultPlan], tmp_path: Path, reference: list
) -> None:
    server, plan = faulty
    use(plan, rates={kind: 1.0}, first=12)  # inside round 1's vote or round 2's turns
    opts = options(cfg(server, kind, max_retries=1), tmp_path, seed=SEED, run_id="cut")
    with pytest.raises((openai.APIError, BadResponseError)):
        await run_session(opts)
    run = tmp_path / "cut"
    manifest = RunDir(run).read_manifest()
    assert manifest.status == "failed"
    assert manifest.error and "\n" not in manifest.error and len(manifest.error) <= 500
    assert not (run / "outcome.json").exists()
    partial = events_of(run)
    assert 0 < len(partial) < len(reference)
    assert stable(partial) == stable(reference[: len(partial)])
    # the call that stopped the run has no event: its one retry is in the manifest
    assert [n.kind for n in manifest.failed_call_retries] == [NOTED.get(kind, kind)]

    plan.stop()  # the endpoint recovers
    result = await resume_session(run)
    assert result.manifest.status == "complete" and result.manifest.error is None
    assert result.outcome.transport_retries.by_kind == {NOTED.get(kind, kind): 1}
    events = events_of(run)
    assert_whole(events)
    assert stable(events) == stable(reference)


async def test_an_error_message_over_several_lines_is_recorded_on_one(
    quick_backoff: None, tmp_path: Path
) -> None:
    def fault(body: dict[str, Any], n: int) -> JSONResponse | None:
        if n < 12:
            return None
        message = "upstream failed:\n  worker 3 crashed\r\n\tretry later"
        return JSONResponse({"error": {"message": message, "type": "server_error"}}, 500)

    with LoopbackServer(scripted_responder, fault=fault) as server:
        opts = options(cfg(server, max_retries=1), tmp_path, run_id="cut")
        with pytest.raises(openai.InternalServerError) as info:
            await run_session(opts)
    assert "\n" not in str(info.value) and "\t" not in str(info.value)
    error = RunDir(tmp_path / "cut").read_manifest().error
    assert (
        error
        == "InternalServerError: Error code: 500 - upstream failed: worker 3 crashed retry later"
    )


async def test_resume_keeps_the_runs_transport_settings(
    faulty: tuple[LoopbackServer, FaultPlan], tmp_path: Path
) -> None:
    server, plan = faulty
    use(plan, rates={"503": 1.0}, first=12)
    opts = options(cfg(server, max_retries=0), tmp_path, run_id="cut")
    with pytest.raises(openai.InternalServerError):
        await run_session(opts)
    use(plan, rates={}, schedule={server.calls + 1: "503"})  # one more 503, then fine
    with pytest.raises(openai.InternalServerError):  # max_retries=0: the run stops again
        await resume_session(tmp_path / "cut")


async def test_a_sweep_records_failed_sessions_and_finishes_them_later(
    faulty: tuple[LoopbackServer, FaultPlan], tmp_path: Path
) -> None:
    server, plan = faulty
    exp = experiment(
        server.base_url,
        name="faulty",
        seeds=2,
        rounds=ROUNDS,
        concurrency=2,
        default=cfg(server, max_retries=1).model_dump(),
    )
    use(plan, rates={"503": 1.0}, first=20)
    first = await run_sweep(exp, tmp_path / "sweep", REPO)
    assert first.failed and set(first.failed) | set(first.done) == {
        "baseline--scripted--s1",
        "baseline--scripted--s2",
    }
    recorded = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert set(recorded["failed"]) == set(first.failed)
    for run_id in first.failed:
        assert recorded["sessions"][run_id] == "resumable"
    plan.stop()
    second = await run_sweep(exp, tmp_path / "sweep", REPO)
    assert not second.failed and set(second.done) == set(first.failed)
    for run in (tmp_path / "sweep" / "runs").iterdir():
        assert_whole(events_of(run))
        assert RunDir(run).read_manifest().status == "complete"


# ---------------------------------------------------------------------------------------
# The command line: one line, no traceback, and `majlis resume` finishes the run


@pytest.mark.parametrize("kind", ["503", "drop", "hang", "cut_json"])
def test_cli_stops_with_one_line_and_resumes(
    kind: str, faulty: tuple[LoopbackServer, FaultPlan], tmp_path: Path
) -> None:
    server, plan = faulty
    use(plan, rates={kind: 1.0}, first=12)
    models = tmp_path / "models.yaml"
    models.write_text(
        yaml.safe_dump(
            {"default": cfg(server, kind, max_retries=1).model_dump(exclude_defaults=True)}
        )
    )
    runs = tmp_path / "runs"
    args = ["--home", str(REPO), "--out", str(runs), "--rounds", str(ROUNDS)]
    res = runner.invoke(app, ["run", "--models", str(models), *args])
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), "handled"
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("majlis: stopped:"), res.stderr
    assert "Traceback" not in res.output
    (run,) = runs.iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "\n" not in manifest["error"]
    assert lines[0].endswith(f"the run is kept, to go on with: majlis resume {run}")
    if kind in ("drop", "hang"):  # a lost connection says where, not "Connection error."
        assert f"no reply from {server.base_url}/chat/completions: " in lines[0], lines[0]

    plan.stop()
    res = runner.invoke(app, ["resume", str(run)])
    assert res.exit_code == 0, res.output
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    assert_whole(events_of(run))
    # the summary counts the retry of the call that stopped the run
    said = " ".join(res.output.split())
    assert f"transport retries 1 ({NOTED.get(kind, kind)}: 1), " in said, said
