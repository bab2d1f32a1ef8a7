"""OpenTelemetry traces, when asked for: the tracer every layer's spans come from.

Off unless configured: by the standard `OTEL_*` variables (`OTEL_TRACES_EXPORTER`,
`OTEL_EXPORTER_OTLP_ENDPOINT`, ...), by a command's `--trace` flag (`setup`), or by a
program that sets a global tracer provider before it runs majlis. Off, or without the
`otel` extra installed, `tracer()` is None and each span site costs one global read: the
SDK is imported only by `setup`, never when the command line starts.

At the bottom of the layers (beside `errors.py`) because spans are made at several levels:
the model layer's calls, the run layer's sessions, rounds and turns, the compare layer's
sweeps. Exporting is the SDK's: the exporter `OTEL_TRACES_EXPORTER` names (OTLP over HTTP by
default, its endpoint and headers read by the exporter itself from `OTEL_EXPORTER_OTLP_*`).

What goes into a span is each site's business; one rule is kept here for all of them: an
error is recorded by its type alone, never its message, which can quote a model's reply
and so a party's private reasoning.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from .errors import UserError

_UNSET: Any = object()
_tracer: Any = _UNSET  # the tracer, None when tracing is off; resolved on first use
_provider: Any = None  # the provider `setup` made, flushed by `flush`
_content = False  # whether public message text may go into spans
# opentelemetry's functions the spans need, bound once a tracer is found (`_bind`) so that
# no span imports them again, and this module imports nothing of the SDK before then
_in_context: Any = None  # trace.set_span_in_context
_attach: Any = None
_detach: Any = None
_kinds: Any = None  # SpanKind (INTERNAL, CLIENT)
_current: Any = None  # context.get_current

# exceptions that pause a graph rather than fail it (langgraph's interrupts), by class name
# so that this module need not import langgraph
_PAUSES = frozenset({"GraphBubbleUp"})


def wanted(flag: bool = False) -> bool:
    """Whether traces are asked for: by the flag, or by the OpenTelemetry variables that
    configure an exporter (and not switched off by `OTEL_SDK_DISABLED`)."""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if flag:
        return True
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def setup(flag: bool = False) -> bool:
    """Start tracing for this process if it is asked for (see `wanted`); whether it is on.
    `--trace` without the extra installed is the user's error; the variables alone, set
    perhaps for other programs, only earn a warning."""
    if not wanted(flag):
        return tracer() is not None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        why = "traces need the otel extra: pip install 'majlis[otel]'"
        if flag:
            raise UserError(f"--trace: {why}") from None
        print(f"majlis: OTEL_* variables are set but {why}", file=sys.stderr)
        return False
    # the resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES itself
    defaults = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "majlis"}
    provider = TracerProvider(resource=Resource.create(defaults))
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    use(provider)
    return True


def _exporters() -> list[Any]:
    """The exporters `OTEL_TRACES_EXPORTER` names (default `otlp`), found by the entry
    points the SDK's own configuration uses; `otlp` is OTLP over HTTP unless the protocol
    variables ask for gRPC."""
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    out = []
    for name in (n for n in names if n and n != "none"):
        if name == "otlp":
            name = "otlp_proto_grpc" if protocol == "grpc" else "otlp_proto_http"
        found = importlib.metadata.entry_points(group="opentelemetry_traces_exporter", name=name)
        if not found:
            raise UserError(
                f"OTEL_TRACES_EXPORTER: no span exporter {name!r} is installed "
                "(majlis[otel] brings OTLP over HTTP and console)"
            )
        out.append(next(iter(found)).load()())
    return out


def use(provider: Any) -> None:
    """Trace through this SDK tracer provider from now on (None: stop tracing). For tests,
    and for programs that build their own provider rather than set the global one."""
    global _tracer, _provider, _content
    _provider = provider
    _tracer = None if provider is None else _bind(provider.get_tracer("majlis", _version()))
    _content = os.environ.get("MAJLIS_TRACE_CONTENT", "") == "1"


def provider() -> Any:
    """The SDK tracer provider `setup` or `use` chose, or None."""
    return _provider


def tracer() -> Any:
    """The tracer spans come from, or None when tracing is off (the common case, and cheap).
    Unless `setup` or `use` chose one, the global provider's, if a program has set one."""
    global _tracer
    if _tracer is _UNSET:
        _tracer = _global_tracer()
    return _tracer


def _global_tracer() -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return _bind(provider.get_tracer("majlis", _version()))


def _bind(found: Any) -> Any:
    """Keep the few opentelemetry functions each span uses at hand; `found`, the tracer."""
    global _in_context, _attach, _detach, _kinds, _current
    from opentelemetry import context, trace

    _in_context = trace.set_span_in_context
    _attach, _detach, _current = context.attach, context.detach, context.get_current
    _kinds = (trace.SpanKind.INTERNAL, trace.SpanKind.CLIENT)
    return found


def _version() -> str:
    try:
        return importlib.metadata.version("majlis")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def content() -> bool:
    """Whether a party's public message text may go into its turn's span
    (`MAJLIS_TRACE_CONTENT=1`). Prompts, replies and private text never do."""
    return _content


def flush() -> None:
    """Send the spans still queued: a forked worker ends without running exit handlers."""
    if _provider is not None:
        _provider.force_flush()


def attributes(pairs: Mapping[str, Any]) -> dict[str, Any]:
    """The pairs OpenTelemetry can hold: None values left out."""
    return {k: v for k, v in pairs.items() if v is not None}


def span(
    name: str, attrs: Mapping[str, Any] | None = None, parent: Any = None, client: bool = False
) -> Current:
    """A span, current inside the block, a child of `parent` (a span) or else of the
    current one; None when tracing is off. An exception marks it failed by its type alone."""
    return Current(start(name, attributes(attrs) if attrs else None, parent, client))


class Current:
    """`with Current(span, held) as s:` makes a started span current inside the block and
    ends it after, marked failed by an exception's type (see `failed`); the spans `over`
    records inside go into `held`, if given. A span of None does nothing. A class rather
    than a generator's context manager: it is entered once per turn."""

    __slots__ = ("_held", "_token", "held", "span")

    def __init__(self, span: Any, held: Held | None = None) -> None:
        self.span, self.held = span, held
        self._token: Any = None
        self._held: Any = None

    def __enter__(self) -> Any:
        if self.span is not None:
            self._token = _attach(_in_context(self.span))
            if self.held is not None:
                self._held = _holding.set(self.held)
        return self.span

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        s = self.span
        if s is None:
            return
        if self._held is not None:
            _holding.reset(self._held)
        _detach(self._token)
        if exc is not None:
            failed(s, exc)
        s.end()


class Held(list[tuple[Any, ...]]):
    """Spans that are over, recorded by `over` inside a `Current` block given this list, to
    be made together by `make` (a session's, when its round ends)."""

    open = True

    def make(self) -> None:
        """Make the spans held so far; any recorded after this are made at once."""
        self.open = False
        _make(self)
        self.clear()


# the spans that `over` holds back go into this list, if any (inside a `Current` block)
_holding: ContextVar[Held | None] = ContextVar("majlis_held_spans", default=None)


def over(
    name: str,
    began: int,
    attrs_of: Callable[..., dict[str, Any]],
    *args: Any,
    client: bool = False,
    error: BaseException | None = None,
) -> None:
    """The span of something that began at `began` (`time.time_ns`) and is over now (a model
    call), a child of the current span, its attributes `attrs_of(*args)` (no None values),
    failed if `error` (see `failed`). Nothing nests under such a span and nothing reads it
    while it runs, so it is made only once it is over, with all its attributes at once.
    Inside a `Current` block that holds spans, later still: its times and parent are taken
    now, its attributes are worked out and the span made when the holder's `make` runs,
    with the others it holds, one after another. The SDK's code for a span costs several
    times as much run once between two stretches of other work (out of the processor's
    caches) as run again straight after. Nothing when tracing is off."""
    if (_tracer if _tracer is not _UNSET else tracer()) is None:
        return
    record = (name, began, time.time_ns(), client, _current(), error, attrs_of, args)
    held = _holding.get()
    if held is not None and held.open:
        held.append(record)
    else:
        _make([record])


def _make(records: list[tuple[Any, ...]]) -> None:
    t = _tracer if _tracer is not _UNSET else tracer()
    if t is None:
        return
    for name, began, ended, client, ctx, error, attrs_of, args in records:
        s = t.start_span(name, ctx, _kinds[client], attrs_of(*args), start_time=began)
        if error is not None:
            failed(s, error)
        s.end(ended)


def start(
    name: str,
    attrs: Mapping[str, Any] | None = None,
    parent: Any = None,
    client: bool = False,
    *,
    within: Any = None,
) -> Any:
    """A span the caller ends (a session, a round; a turn, which `Current` makes current):
    a child of `parent` (a span), or of the span a context from `within` holds (kept by a
    caller that starts many children under one span), or else of the current span; None
    when tracing is off. `attrs` without None values (see `attributes`)."""
    t = _tracer if _tracer is not _UNSET else tracer()
    if t is None:
        return None
    if parent is not None:
        within = _in_context(parent)
    return t.start_span(name, within, _kinds[client], attrs)


def within(parent: Any) -> Any:
    """The context whose current span is `parent`, for `start(..., within=)` (None: the
    current context, and so the current span, at each start)."""
    return None if parent is None else _in_context(parent)


def failed(s: Any, exc: BaseException) -> None:
    """Mark a span failed by the exception's type, not its message (see the module's doc);
    a graph's pause for a person is no failure."""
    if s is None or any(c.__name__ in _PAUSES for c in type(exc).__mro__):
        return
    from opentelemetry.trace import Status, StatusCode

    s.set_attribute("error.type", type(exc).__name__)
    s.set_status(Status(StatusCode.ERROR))


def carrier() -> dict[str, str]:
    """The current span's context as W3C trace-context headers, for a worker process to
    continue the trace in (empty when tracing is off)."""
    if tracer() is None:
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    out: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(out)
    return out


@contextlib.contextmanager
def continued(headers: Mapping[str, str]) -> Iterator[None]:
    """Continue in this process the trace whose context `carrier` gave, if any. A spawned
    worker (not forked) has no tracer yet: it sets one up from the same variables."""
    if not headers:
        yield
        return
    if tracer() is None:
        setup(flag=True)
    from opentelemetry import context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    token = context.attach(TraceContextTextMapPropagator().extract(dict(headers)))
    try:
        yield
    finally:
        context.detach(token)
