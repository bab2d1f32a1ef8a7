"""The transport against servers as they really are (issue 20): a structured-output dialect
refused with a 500, a /models that answers only when the server is free, one completion at
a time, and every retried transport fault kept in the record.

The loopback server stands in for llama-cpp-python's own (`majlis.model.llama_cpp_python`):
`json_schema` refused with a 500 quoting the validation error, `json_object` with a schema
spoken, completions computed one at a time with /models waiting behind the running one.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import REPO, events_of
from starlette.responses import JSONResponse, Response
from typer.testing import CliRunner

from majlis.cli import app
from majlis.model import (
    Completion,
    FaultPlan,
    LoopbackServer,
    ModelConfig,
    RetryNote,
    llama_cpp_python,
    make_client,
    party_of,
    scripted_responder,
)
from majlis.protocol import Vote, strict_schema
from majlis.run import RunDir, RunOptions, resume_session, run_session

runner = CliRunner()
VOTE_MSGS = [{"role": "system", "content": "vote"}, {"role": "user", "content": "vote now"}]
GOOD_VOTE = json.dumps({"private_reasoning": "fine", "vote": "accept"})


def dialect_of(request: dict[str, Any]) -> str:
    return (request.get("response_format") or {}).get("type", "none")


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff of 50 ms: these tests are about what is waited for, not the schedule."""
    monkeypatch.setattr("majlis.model.openai_backend._backoff", lambda n: 0.05)


# ---------------------------------------------------------------------------------------
# The dialect: `auto` finds what the server speaks, says so, and keeps it


def test_auto_completes_a_session_on_a_server_that_refuses_json_schema_with_a_500(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    with llama_cpp_python() as srv:
        args = ["--model", "scripted", "--base-url", srv.base_url, "--structured", "auto"]
        res = runner.invoke(
            app, ["run", *args, "--rounds", "2", "--home", str(REPO), "--out", str(runs), "--quiet"]
        )
        requests = list(srv.requests)
    assert res.exit_code == 0, res.output
    run = Path(res.output.strip())
    manifest = RunDir(run).read_manifest()
    assert manifest.status == "complete"
    for party in manifest.parties.values():
        assert party.structured == "auto" and party.structured_used == "json_object"
    # found once, by the first call, for every party of the endpoint: one refused request
    assert [dialect_of(r) for r in requests].count("json_schema") == 1
    assert dialect_of(requests[0]) == "json_schema"
    assert all(
        dialect_of(r) == "json_object" and r["response_format"]["schema"] for r in requests[1:]
    )
    outcome = RunDir(run).read_outcome()
    assert outcome is not None and outcome.calls == len(requests) - 1
    assert outcome.transport_retries.count == 0, "a refused dialect is no transport fault"


@pytest.mark.parametrize("status", [400, 422, 500])
async def test_a_refused_dialect_steps_down_at_once_without_spending_a_retry(status: int) -> None:
    server = LoopbackServer(
        lambda body: Completion(GOOD_VOTE),
        dialects=frozenset({"json_object", "none"}),
        refuse_with=status,
    )
    with server as srv:
        client = make_client(ModelConfig(model="m", base_url=srv.base_url, max_retries=0))
        answer = await client.ask(VOTE_MSGS, Vote, strict_schema(Vote))
        await client.backend.aclose()
    assert [dialect_of(r) for r in srv.requests] == ["json_schema", "json_object"]
    assert answer.value.vote == "accept" and answer.reply.retries == []
    assert client.backend.structured_used == "json_object"


async def test_a_500_that_names_no_dialect_is_a_transport_fault(quick_backoff: None) -> None:
    plan = FaultPlan.at([1], "500")
    with LoopbackServer(lambda body: Completion(GOOD_VOTE), fault=plan) as srv:
        client = make_client(ModelConfig(model="m", base_url=srv.base_url, max_retries=1))
        answer = await client.ask(VOTE_MSGS, Vote, strict_schema(Vote))
        await client.backend.aclose()
    assert [dialect_of(r) for r in srv.requests] == ["json_schema", "json_schema"], "sent as it was"
    assert [(n.kind, n.status) for n in answer.reply.retries] == [("500", 500)]
    assert client.backend.structured_used == "json_schema"


async def test_a_dialect_that_was_asked_for_and_refused_is_not_retried() -> None:
    with llama_cpp_python(lambda body: Completion(GOOD_VOTE)) as srv:
        cfg = ModelConfig(model="m", base_url=srv.base_url, structured="json_schema")
        client = make_client(cfg)
        with pytest.raises(openai.InternalServerError) as info:
            await client.ask(VOTE_MSGS, Vote, strict_schema(Vote))
        await client.backend.aclose()
    assert srv.calls == 1, "no retry can make the server speak it"
    assert "response_format" in str(info.value) and info.value.retries == []  # type: ignore[attr-defined]


async def test_a_resumed_auto_run_starts_in_the_dialect_it_found(
    quick_backoff: None, tmp_path: Path
) -> None:
    plan = FaultPlan(rates={"503": 1.0}, first=10)
    with llama_cpp_python(fault=plan) as srv:
        cfg = ModelConfig(model="scripted", base_url=srv.base_url, max_retries=0, timeout=5)
        opts = RunOptions(model=cfg, home=REPO, runs_root=tmp_path, rounds=2, run_id="cut")
        with pytest.raises(openai.InternalServerError):
            await run_session(opts)
        stopped = RunDir(tmp_path / "cut").read_manifest()
        assert stopped.status == "failed"
        assert {p.structured_used for p in stopped.parties.values()} == {"json_object"}
        plan.stop()
        before = srv.calls
        result = await resume_session(tmp_path / "cut")
        resumed = srv.requests[before:]
    assert result.manifest.status == "complete" and resumed
    assert {dialect_of(r) for r in resumed} == {"json_object"}, "no step-down paid again"
    assert {p.structured_used for p in result.manifest.parties.values()} == {"json_object"}


# ---------------------------------------------------------------------------------------
# The pre-flight waits as long as a call may


@pytest.mark.parametrize(
    ("late", "timeout", "passes"),
    [(1.5, "3", True), (1.5, "1", False), (10.5, "12", True)],  # the last: past the old 10 s
)
def test_the_pre_flight_check_waits_as_long_as_the_runs_timeout(
    late: float, timeout: str, passes: bool, tmp_path: Path
) -> None:
    """A server busy with another client's completion answers /models late: the check
    gives it the run's --timeout (it used to give it ten seconds at most)."""
    runs = tmp_path / "runs"
    with LoopbackServer(scripted_responder, models_latency=late) as srv:
        args = ["--model", "scripted", "--base-url", srv.base_url, "--timeout", timeout]
        start = time.monotonic()
        res = runner.invoke(
            app, ["run", *args, "--rounds", "1", "--home", str(REPO), "--out", str(runs), "--quiet"]
        )
        took = time.monotonic() - start
    if passes:
        assert res.exit_code == 0, res.output
        assert took >= late and len(list(runs.iterdir())) == 1
    else:
        assert res.exit_code == 2, res.output
        line = " ".join(res.output.split())
        assert f"cannot reach model endpoint {srv.base_url}: timed out" in line, line
        assert len(res.output.strip().splitlines()) == 1
        assert not runs.exists() or not any(runs.iterdir())


# ---------------------------------------------------------------------------------------
# A timeout against a server that computes one completion at a time


async def ask_once_on_a_busy_slot() -> tuple[LoopbackServer, Any, BaseException | None]:
    """One call with a 0.8 s timeout to a single-slot server that takes 1.2 s a completion;
    the server and the answer (or the error) afterwards."""
    srv = llama_cpp_python(lambda body: Completion(GOOD_VOTE), latency=1.2).start()
    cfg = ModelConfig(
        model="m", base_url=srv.base_url, timeout=0.8, max_retries=2, structured="json_object"
    )
    client = make_client(cfg)
    try:
        return srv, await client.ask(VOTE_MSGS, Vote, strict_schema(Vote)), None
    except openai.APIError as exc:
        return srv, None, exc
    finally:
        await client.backend.aclose()
        await asyncio.sleep(1.5)  # let a copy still computing finish before the counts are read
        srv.stop()


async def test_a_timed_out_request_is_not_computed_twice_at_once(quick_backoff: None) -> None:
    srv, answer, error = await ask_once_on_a_busy_slot()
    assert error is None and answer.value.vote == "accept"
    assert srv.calls == 2 and srv.computed == 2, "the abandoned copy was still computed"
    assert srv.peak_held == 1, "the copy sent again waited until the first was done"
    (note,) = answer.reply.retries
    assert note.kind == "timeout" and note.status is None
    assert note.wait_s >= 0.3, "waited for the server to finish the first copy (at 1.2 s)"


async def test_without_the_wait_the_server_would_hold_two_copies(
    quick_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The measure above can fail: re-sent at once, the copy queues behind the first."""

    async def at_once(self: Any, timeout: float) -> None:
        return None

    monkeypatch.setattr("majlis.model.openai_backend.OpenAIBackend._until_free", at_once)
    srv, _, _ = await ask_once_on_a_busy_slot()
    assert srv.peak_held == 2


# ---------------------------------------------------------------------------------------
# The SDK's retry rules, now applied by the backend


def status_once(status: int, headers: dict[str, str] | None = None):
    """A fault hook: the first request gets `status`, the rest are answered."""

    def fault(body: dict[str, Any], n: int) -> Response | None:
        if n > 1:
            return None
        error = {"error": {"message": "no", "type": "x", "code": status}}
        return JSONResponse(error, status_code=status, headers=headers)

    return fault


@pytest.mark.parametrize(
    ("status", "headers", "retried"),
    [
        (408, None, True),
        (409, None, True),
        (429, {"retry-after-ms": "150"}, True),
        (502, None, True),
        (404, None, False),
        (503, {"x-should-retry": "false"}, False),
        (403, {"x-should-retry": "true"}, True),
        (429, {"retry-after": "600"}, False),  # past two minutes: not waited for
    ],
)
async def test_which_statuses_are_retried(
    status: int, headers: dict[str, str] | None, retried: bool, quick_backoff: None
) -> None:
    fault = status_once(status, headers)
    with LoopbackServer(lambda body: Completion(GOOD_VOTE), fault=fault) as srv:
        client = make_client(ModelConfig(model="m", base_url=srv.base_url, max_retries=2))
        try:
            answer = await client.ask(VOTE_MSGS, Vote, strict_schema(Vote))
        except openai.APIStatusError as exc:
            answer, error = None, exc
        await client.backend.aclose()
    if retried:
        assert answer is not None and srv.calls == 2
        (note,) = answer.reply.retries
        assert note == RetryNote(kind=str(status), status=status, wait_s=note.wait_s)
        if headers and "retry-after-ms" in headers:
            assert note.wait_s >= 0.15, "the server's wait, not the backoff"
    else:
        assert answer is None and srv.calls == 1 and error.status_code == status


# ---------------------------------------------------------------------------------------
# Retried faults in the record


class GarbledWashington:
    """Washington's moves are not JSON; everyone else plays the scripted game."""

    def __call__(self, body: dict[str, Any]) -> Completion:
        user = "".join(m["content"] for m in body["messages"] if m["role"] == "user")
        if party_of(body) == "washington" and '"task":"move"' in user:
            return Completion("I will not answer in JSON.")
        return scripted_responder(body)


async def test_a_failed_turn_keeps_the_retries_of_its_call(
    quick_backoff: None, tmp_path: Path
) -> None:
    """A call that met a 503 and then never validated: the error event that records it
    carries the retry, and the outcome counts it."""
    faulted: list[int] = []

    def fault(body: dict[str, Any], n: int) -> Response | None:
        if party_of(body) == "washington" and not faulted:
            faulted.append(n)
            return JSONResponse({"error": {"message": "busy"}}, status_code=503)
        return None

    with LoopbackServer(GarbledWashington(), fault=fault) as srv:
        cfg = ModelConfig(model="scripted", base_url=srv.base_url, output_retries=1)
        result = await run_session(RunOptions(model=cfg, home=REPO, runs_root=tmp_path, rounds=1))
    events = events_of(result)
    retried = [e for e in events if e.get("retries")]
    assert len(retried) == 1 and faulted
    (event,) = retried
    assert event["type"] == "error" and event["content"]["party"] == "washington"
    assert [(r["kind"], r["status"]) for r in event["retries"]] == [("503", 503)]
    assert list(event)[-2:] == ["retries", "ts"], "in the Event model's field order"
    assert result.outcome.transport_retries.by_kind == {"503": 1}


async def test_the_retries_of_the_call_that_stopped_a_run_are_kept_over_resume(
    quick_backoff: None, tmp_path: Path
) -> None:
    plan = FaultPlan(rates={"503": 1.0}, first=12)
    with LoopbackServer(scripted_responder, fault=plan) as srv:
        cfg = ModelConfig(model="scripted", base_url=srv.base_url, max_retries=2, timeout=5)
        opts = RunOptions(model=cfg, home=REPO, runs_root=tmp_path, rounds=2, run_id="cut")
        with pytest.raises(openai.InternalServerError) as info:
            await run_session(opts)
        assert [n.kind for n in info.value.retries] == ["503", "503"]  # type: ignore[attr-defined]
        stopped = RunDir(tmp_path / "cut").read_manifest()
        assert [(n.kind, n.status) for n in stopped.failed_call_retries] == [("503", 503)] * 2
        assert not [e for e in events_of(tmp_path / "cut") if e.get("retries")]
        plan.stop()
        result = await resume_session(tmp_path / "cut")
    assert result.manifest.failed_call_retries == stopped.failed_call_retries, "kept"
    totals = result.outcome.transport_retries
    assert totals.count == 2 and totals.by_kind == {"503": 2}
    assert totals.wait_s == pytest.approx(sum(n.wait_s for n in stopped.failed_call_retries))
