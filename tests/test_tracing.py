"""OpenTelemetry traces (issue 19): the span tree of a session and a sweep, the GenAI
semantic-convention attributes of each model call, and no private material in any span."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, events_of, experiment, majlis_process
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from majlis import tracing
from majlis.compare import run_sweep
from majlis.errors import EndpointFailed, UserError
from majlis.model import LoopbackServer, ModelConfig, scripted_responder
from majlis.run import RunOptions, load_snapshot, run_session


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Every span majlis makes in this test, kept in memory."""
    monkeypatch.delenv("MAJLIS_TRACE_CONTENT", raising=False)
    yield _trace_into()
    tracing.use(None)


def _trace_into() -> InMemorySpanExporter:
    """Trace into a new in-memory exporter from now on (the content variable is read now)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    return exporter


async def _session(srv: LoopbackServer, tmp_path: Path, rounds: int = 2) -> Any:
    opts = RunOptions(
        model=ModelConfig(model="scripted", base_url=srv.base_url, seed=7),
        home=REPO,
        runs_root=tmp_path,
        rounds=rounds,
        seed=7,
    )
    return await run_session(opts)


def _by_id(found: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in found}


def _parent(s: ReadableSpan, ids: dict[int, ReadableSpan]) -> ReadableSpan | None:
    return ids[s.parent.span_id] if s.parent else None


def _texts(found: list[ReadableSpan]) -> str:
    """Every string a span holds: its name, attribute values and its events' attributes."""
    out = []
    for s in found:
        out.append(s.name)
        attrs = [dict(s.attributes or {})] + [dict(e.attributes or {}) for e in s.events]
        for group in attrs:
            for key, value in group.items():
                out.append(key)
                out.extend(str(v) for v in (value if isinstance(value, tuple) else [value]))
    return "\n".join(out)


def _private(result: Any, srv: LoopbackServer) -> list[str]:
    """The canaries: each card's brief, interests and red lines, every line of the system
    prompts (the score table and walk-away point are there), and every private note and
    side message the session made."""
    loaded = load_snapshot(result.run_dir)
    found: list[str] = []
    for card in loaded.cards.values():
        found += [card.private_brief, *card.private_interests, *(r.why for r in card.red_lines)]
    for body in srv.requests:
        system = body["messages"][0]["content"]
        found += [line.strip() for line in system.splitlines() if len(line.strip()) >= 12]
    for e in events_of(result):
        if e["type"] == "private_note":
            found.append(e["content"]["reasoning"])
        if e["type"] == "side_message":
            found.append(e["content"]["text"])
    return [text for text in found if text]


async def test_a_session_makes_the_span_tree_with_genai_attributes(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    with LoopbackServer(scripted_responder) as srv:
        result = await _session(srv, tmp_path)
    found = list(spans.get_finished_spans())
    ids = _by_id(found)
    named = {name: [s for s in found if s.name == name] for name in {s.name for s in found}}
    (session,) = named["majlis.session"]
    assert session.parent is None
    assert session.attributes["majlis.run_id"] == result.manifest.run_id
    assert session.attributes["majlis.scenario"] == "cornered-in-iraq"
    assert session.attributes["majlis.seed"] == 7
    assert session.attributes["majlis.outcome"] == result.outcome.kind
    rounds = named["majlis.round"]
    assert sorted(r.attributes["majlis.round"] for r in rounds) == [1, 2]
    assert all(_parent(r, ids) is session for r in rounds)
    events = events_of(result)
    parties = list(load_snapshot(result.run_dir).scenario.parties)
    for t in named["majlis.turn"]:
        assert _parent(t, ids).name == "majlis.round"
        assert t.attributes["majlis.round"] == _parent(t, ids).attributes["majlis.round"]
        made = events[t.attributes["majlis.seq.first"] : t.attributes["majlis.seq.last"] + 1]
        assert {e["speaker"] for e in made} == {t.attributes["majlis.party"]}
    assert len(named["majlis.turn"]) == 2 * len(parties)
    assert all(_parent(v, ids).name == "majlis.round" for v in named.get("majlis.vote", []))
    calls = named["chat scripted"]
    assert {_parent(c, ids).name for c in calls} <= {"majlis.turn", "majlis.vote"}
    assert len(calls) == result.outcome.calls == srv.calls
    for c in calls:
        a = c.attributes
        assert c.kind is SpanKind.CLIENT and c.status.status_code is not StatusCode.ERROR
        turn = _parent(c, ids)  # made when the round ends, the call's own times kept
        assert turn.start_time <= c.start_time <= c.end_time <= turn.end_time
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == "scripted"
        assert a["gen_ai.response.finish_reasons"] == ("stop",)
        assert a["server.address"] == "127.0.0.1" and a["server.port"] == srv.port
        assert "majlis.retries" not in a and "majlis.cached" not in a  # only when they happen
        assert a["majlis.latency_ms"] >= 0 and a["gen_ai.request.seed"] == 7
    used = [e["usage"] for e in events if e.get("usage")]
    assert sum(c.attributes["gen_ai.usage.input_tokens"] for c in calls) == sum(
        u["prompt_tokens"] for u in used
    )
    assert sum(c.attributes["gen_ai.usage.output_tokens"] for c in calls) == sum(
        u["completion_tokens"] for u in used
    )
    text = _texts(found)
    leaked = [p for p in _private(result, srv) if p in text]
    assert leaked == []
    assert "score" not in text and "threshold" not in text and "brief" not in text


async def test_public_messages_only_when_asked_and_never_private_text(
    spans: InMemorySpanExporter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAJLIS_TRACE_CONTENT", "1")
    spans = _trace_into()  # the variable is read when tracing starts
    with LoopbackServer(scripted_responder) as srv:
        result = await _session(srv, tmp_path, rounds=1)
    found = list(spans.get_finished_spans())
    said = {e["content"]["text"] for e in events_of(result) if e["type"] == "message"}
    turns = [s for s in found if s.name == "majlis.turn"]
    assert {t.attributes["majlis.public_message"] for t in turns} == said
    loaded = load_snapshot(result.run_dir)
    private = [c.private_brief for c in loaded.cards.values()]
    private += [e["content"]["reasoning"] for e in events_of(result) if e["type"] == "private_note"]
    text = _texts(found)
    assert [p for p in private if p in text] == []


def test_spans_held_in_a_block_are_made_together(spans: InMemorySpanExporter) -> None:
    """A call's span recorded inside a turn's block waits for its holder's `make`, with its
    own times and its turn as parent; inside a block of a holder already made, at once."""
    held = tracing.Held()
    with tracing.Current(tracing.start("majlis.turn"), held) as turn:
        began = time.time_ns()
        tracing.over("chat m", began, dict, {"gen_ai.request.model": "m"}, client=True)
        ended = time.time_ns()
    assert [s.name for s in spans.get_finished_spans()] == ["majlis.turn"]
    held.make()
    ended_turn, call = spans.get_finished_spans()
    assert call.name == "chat m" and call.parent.span_id == turn.get_span_context().span_id
    assert call.kind is SpanKind.CLIENT and dict(call.attributes) == {"gen_ai.request.model": "m"}
    assert ended_turn.start_time <= began == call.start_time <= call.end_time <= ended
    assert call.end_time <= ended_turn.end_time
    with tracing.Current(tracing.start("majlis.vote"), held):
        tracing.over("chat late", time.time_ns(), dict, error=RuntimeError("a secret"))
    late = spans.get_finished_spans()[2]
    assert late.name == "chat late" and late.status.status_code is StatusCode.ERROR
    assert dict(late.attributes) == {"error.type": "RuntimeError"}


async def test_no_spans_when_tracing_is_off(tmp_path: Path) -> None:
    exporter = _trace_into()
    tracing.use(None)
    with LoopbackServer(scripted_responder) as srv:
        await _session(srv, tmp_path, rounds=1)
    assert tracing.tracer() is None and exporter.get_finished_spans() == ()


async def test_a_sweep_holds_its_sessions(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    with LoopbackServer(scripted_responder) as srv:
        exp = experiment(srv.base_url, ["baseline"], seeds=2, rounds=1, model_name="s")
        result = await run_sweep(exp, tmp_path / "sweep", REPO, cache_file=None)
    found = list(spans.get_finished_spans())
    ids = _by_id(found)
    (sweep,) = [s for s in found if s.name == "majlis.sweep"]
    assert sweep.parent is None and sweep.attributes["majlis.done"] == 2
    sessions = [s for s in found if s.name == "majlis.session"]
    assert sorted(s.attributes["majlis.run_id"] for s in sessions) == sorted(result.done)
    assert all(_parent(s, ids) is sweep for s in sessions)
    assert {s.context.trace_id for s in found} == {sweep.context.trace_id}


async def test_a_failed_call_is_marked_by_its_type_alone(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    def broken(body: dict[str, Any]) -> Any:
        raise RuntimeError("the reply quoted a secret")

    with LoopbackServer(broken) as srv, pytest.raises(EndpointFailed):
        opts = RunOptions(
            model=ModelConfig(model="scripted", base_url=srv.base_url, max_retries=1),
            home=REPO,
            runs_root=tmp_path,
            rounds=1,
        )
        await run_session(opts)
    found = list(spans.get_finished_spans())
    (call,) = [s for s in found if s.name == "chat scripted"]
    assert call.status.status_code is StatusCode.ERROR and not call.status.description
    assert call.attributes["error.type"] and call.attributes["majlis.retries"] == 1
    assert "secret" not in _texts(found)
    (session,) = [s for s in found if s.name == "majlis.session"]
    assert session.status.status_code is StatusCode.ERROR


@pytest.mark.parametrize(
    ("env", "flag", "on"),
    [
        ({}, False, False),
        ({}, True, True),
        ({"OTEL_TRACES_EXPORTER": "none"}, False, False),
        ({"OTEL_TRACES_EXPORTER": "console"}, False, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}, False, True),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"},
            True,
            False,
        ),
    ],
)
def test_traces_are_wanted_only_when_configured(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], flag: bool, on: bool
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing.wanted(flag) is on


def test_an_unknown_exporter_is_the_users_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "nosuch")
    with pytest.raises(UserError, match="OTEL_TRACES_EXPORTER: no span exporter 'nosuch'"):
        tracing.setup()


def test_run_with_trace_exports_through_the_sdk(tmp_path: Path) -> None:
    """`majlis run --trace` with the console exporter: the spans reach the exporter by the
    time the command exits (the SDK's batch processor, flushed at exit)."""
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "majlis-test"}
    res = majlis_process(
        "run", "--model", "scripted", "--rounds", "1", "--quiet", "--trace",
        "--out", str(tmp_path), "--home", str(REPO), env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    names = [json.loads(s)["name"] for s in _objects(res.stdout)]
    assert names.count("majlis.session") == 1 and "chat scripted" in names
    assert '"service.name": "majlis-test"' in res.stdout


def _objects(text: str) -> list[str]:
    """The JSON objects the console exporter printed, one per span."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth, start = depth + 1, i if depth == 0 else start
        elif ch == "}":
            depth -= 1
            if depth == 0:
                out.append(text[start : i + 1])
    return out


def test_worker_processes_continue_the_sweeps_trace(tmp_path: Path) -> None:
    """`majlis sweep --workers 2 --trace`: each worker's sessions are children of the sweep's
    span in the parent process, and reach the exporter before the worker exits."""
    with LoopbackServer(scripted_responder) as srv:
        spec = tmp_path / "exp.yaml"
        experiment(srv.base_url, ["baseline"], path=spec, seeds=2, rounds=1, concurrency=2)
        res = majlis_process(
            "sweep", str(spec), "--workers", "2", "--trace", "--no-cache",
            "--out", str(tmp_path / "sweep"), "--home", str(REPO),
            env={"OTEL_TRACES_EXPORTER": "console"},
        )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    found = [json.loads(s) for s in _objects(res.stdout)]
    (sweep,) = [s for s in found if s["name"] == "majlis.sweep"]
    sessions = [s for s in found if s["name"] == "majlis.session"]
    assert len(sessions) == 2
    assert {s["parent_id"] for s in sessions} == {sweep["context"]["span_id"]}
    assert {s["context"]["trace_id"] for s in found} == {sweep["context"]["trace_id"]}
    assert sum(s["name"] == "chat scripted" for s in found) == srv.calls
