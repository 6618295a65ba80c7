"""OpenTelemetry tracing, optional: spans per run execution and per activity attempt.

Installed with the ``otel`` extra (``opentelemetry-api``); spans are recorded once the
application configures a tracer provider (``opentelemetry-sdk`` or a distro). This is the
only module that imports OpenTelemetry, lazily, on first use: without it every helper
here returns at once (``None``, or the shared no-op :data:`NO_SPAN`).

How a trace crosses the database: a run started inside an active span (``App.start``,
``App.start_flow``, ``ctx.child``, a schedule's tick) stores the span's context, as the
configured propagator writes it (W3C ``traceparent``/``tracestate`` by default), with the
run (:func:`inject`). Each claim of the run by a worker opens a span ``durable.run
<workflow>`` whose parent is that stored context (:func:`run_span`); each activity
attempt opens a child span ``durable.activity <name>`` (:func:`activity_span`).

Example::

    with tracer.start_as_current_span("checkout"):
        await app.start(order, "o-1")   # the worker's "durable.run order" joins this trace
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import RunRecord

TRACER_NAME = "durable"
"""The instrumentation scope of durable's spans."""


class _Otel:
    """The OpenTelemetry API modules and durable's tracer (imported on first use)."""

    def __init__(self) -> None:
        from opentelemetry import context, propagate, trace

        self.context = context
        self.propagate = propagate
        self.trace = trace
        self.tracer = trace.get_tracer(TRACER_NAME)  # follows a provider configured later
        self.error = trace.StatusCode.ERROR


_otel: _Otel | None = None
_missing = False


def _load() -> _Otel | None:
    """The API, or None when ``opentelemetry-api`` is not installed (checked once)."""
    global _otel, _missing
    if _otel is not None or _missing:
        return _otel
    try:
        _otel = _Otel()
    except ImportError:
        _missing = True
    return _otel


class NoSpan:
    """What the helpers return when nothing is traced: every method does nothing."""

    __slots__ = ()

    def __enter__(self) -> NoSpan:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def finish(self, outcome: str, error: Mapping[str, Any] | str | None = None) -> None:
        """Record how the run or the attempt ended (``error``: the stored error)."""


NO_SPAN = NoSpan()


class Span(NoSpan):
    """A started span, current inside ``with``, ended on leaving it."""

    __slots__ = ("_otel", "_span", "_token")

    def __init__(self, otel: _Otel, span: Any) -> None:
        self._otel = otel
        self._span = span
        self._token: Any = None

    def __enter__(self) -> Span:
        otel = self._otel
        self._token = otel.context.attach(otel.trace.set_span_in_context(self._span))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._otel.context.detach(self._token)
        span = self._span
        if isinstance(exc, asyncio.CancelledError):
            span.set_attribute("durable.outcome", "cancelled")
        elif isinstance(exc, Exception):
            span.record_exception(exc)
            span.set_status(self._otel.error, f"{type(exc).__name__}: {exc}")
        span.end()

    def finish(self, outcome: str, error: Mapping[str, Any] | str | None = None) -> None:
        span = self._span
        span.set_attribute("durable.outcome", outcome)
        if error is None:
            return
        data = _error(error)
        kind, message = str(data.get("type", "Error")), str(data.get("message", ""))
        span.set_status(self._otel.error, f"{kind}: {message}")
        # The attributes record_exception writes (the exception itself stayed in the
        # activity's task: what is left of it is the error the journal stores).
        span.add_event(
            "exception",
            {
                "exception.type": kind,
                "exception.message": message,
                "exception.stacktrace": str(data.get("traceback", "")),
            },
        )


def _error(error: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if not isinstance(error, str):
        return error
    try:
        data = json.loads(error)
    except ValueError:
        return {"message": error}
    return data if isinstance(data, dict) else {"message": error}


def inject() -> str | None:
    """The context of the active span, as the JSON text stored with a run; None when
    OpenTelemetry is not installed or no span is active."""
    otel = _load()
    if otel is None or not otel.trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    otel.propagate.inject(carrier)
    return json.dumps(carrier, separators=(",", ":")) if carrier else None


def run_span(run: RunRecord) -> NoSpan:
    """The span of one claim of ``run``: a child of the context stored with it, else a
    new trace. Use it as ``with run_span(run) as span: ...; span.finish(state)``."""
    otel = _load()
    if otel is None:
        return NO_SPAN
    parent = otel.context.Context()  # never the worker's own context: a run is its own work
    if run.trace_context:
        try:
            carrier = json.loads(run.trace_context)
        except ValueError:
            carrier = None
        if isinstance(carrier, dict):
            parent = otel.propagate.extract(carrier, context=parent)
    attributes: dict[str, Any] = {
        "durable.run_id": run.id,
        "durable.workflow": run.workflow,
        "durable.epoch": run.epoch,
    }
    if run.flow_version is not None:
        attributes["durable.flow_version"] = run.flow_version
    span = otel.tracer.start_span(f"durable.run {run.workflow}", parent, attributes=attributes)
    if not span.get_span_context().is_valid:  # no tracer provider and no stored context
        return NO_SPAN
    return Span(otel, span)


def activity_span(workflow: str, activity: str, seq: int, attempt: int) -> NoSpan:
    """The span of one activity attempt, a child of the current run span (no-op when the
    run is not traced). ``finish(outcome, error)``: ``ok``, ``retry`` or ``error``."""
    otel = _load()
    if otel is None or not otel.trace.get_current_span().get_span_context().is_valid:
        return NO_SPAN
    span = otel.tracer.start_span(
        f"durable.activity {activity}",
        attributes={
            "durable.workflow": workflow,
            "durable.activity": activity,
            "durable.seq": seq,
            "durable.attempt": attempt,
        },
    )
    return Span(otel, span)


def set_step(step_id: object) -> None:
    """Name the JSON-flow step the current activity span executes (``durable.step_id``)."""
    otel = _load()
    if otel is None or not isinstance(step_id, str):
        return
    span = otel.trace.get_current_span()
    if span.is_recording():
        span.set_attribute("durable.step_id", step_id)


def tick_context(schedule_id: str, workflow: str, run_ids: tuple[str, ...]) -> str | None:
    """A span ``durable.schedule <id>`` for one firing of a schedule (its own trace), and
    its context to store with the runs it starts; None when nothing is traced."""
    otel = _load()
    if otel is None or not run_ids:
        return None
    span = otel.tracer.start_span(
        f"durable.schedule {schedule_id}",
        otel.context.Context(),
        attributes={
            "durable.schedule_id": schedule_id,
            "durable.workflow": workflow,
            "durable.run_ids": list(run_ids),
        },
    )
    try:
        if not span.get_span_context().is_valid:
            return None
        carrier: dict[str, str] = {}
        otel.propagate.inject(carrier, context=otel.trace.set_span_in_context(span))
        return json.dumps(carrier, separators=(",", ":")) if carrier else None
    finally:
        span.end()
