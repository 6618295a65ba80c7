"""OpenTelemetry: a trace started around ``app.start`` reaches the worker's spans.

Spans are read from the SDK's in-memory exporter (in this process) or from a file a
``durable worker`` subprocess writes with the SDK's console exporter.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import durable
from durable import _tracing

pytestmark = pytest.mark.anyio

tracer = trace.get_tracer("tests")


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The SDK on the global tracer provider (it can be set once per process)."""
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.shutdown()  # later tests keep no spans in memory


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


async def wait_spans(
    exporter: InMemorySpanExporter,
    ready: Callable[[Sequence[ReadableSpan]], bool],
    timeout: float = 15.0,
) -> list[ReadableSpan]:
    """The finished spans, once ``ready`` holds for them (a run span ends after the run's
    last commit, so just after its result can be read)."""
    with anyio.fail_after(timeout):
        while True:
            found = list(exporter.get_finished_spans())
            if ready(found):
                return found
            await anyio.sleep(0.02)


def named(found: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in found if span.name == name]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@durable.activity(name="tracing.add")
async def add(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x + 1


@durable.workflow(name="tracing.two-steps")
async def two_steps(ctx: durable.Context, x: int) -> int:
    return await add(await add(x))


@durable.workflow(name="tracing.fails-then-recovers")
async def fails(ctx: durable.Context) -> str:
    try:
        await ctx.run(add, -1, retry=durable.RetryPolicy(max_attempts=2, initial_interval=0.01))
    except durable.ActivityError:
        return "recovered"
    return "unexpected"


@durable.workflow(name="tracing.waits")
async def waits(ctx: durable.Context) -> int:
    before = await add(1)
    await ctx.wait_signal("go")
    return await add(before)


@durable.workflow(name="tracing.parent")
async def parent(ctx: durable.Context) -> int:
    return await ctx.child(two_steps, 10, id=f"{ctx.info.run_id}-child")


async def test_a_trace_started_around_start_reaches_the_run_and_its_activities(
    app: durable.App, spans: InMemorySpanExporter
):
    with tracer.start_as_current_span("checkout") as client:
        handle = await app.start(two_steps, 1, id="traced-1")
    stored = await app.store.get_run("traced-1")
    assert stored is not None and stored.trace_context is not None
    trace_id = client.get_span_context().trace_id
    assert f"{trace_id:032x}" in json.loads(stored.trace_context)["traceparent"]

    async with app.worker(poll_interval=0.05):
        assert await handle.result(timeout=15) == 3
        found = await wait_spans(spans, lambda s: bool(named(s, "durable.run tracing.two-steps")))

    (run_span,) = named(found, "durable.run tracing.two-steps")
    assert run_span.context.trace_id == trace_id
    assert parent_of(run_span) == client.get_span_context().span_id
    assert dict(run_span.attributes or {}) == {
        "durable.run_id": "traced-1",
        "durable.workflow": "tracing.two-steps",
        "durable.epoch": 1,
        "durable.outcome": "COMPLETED",
    }
    activities = named(found, "durable.activity tracing.add")
    assert len(activities) == 2
    for seq, span in enumerate(sorted(activities, key=lambda s: s.start_time or 0), start=1):
        assert span.context.trace_id == trace_id
        assert parent_of(span) == run_span.context.span_id
        assert dict(span.attributes or {}) == {
            "durable.workflow": "tracing.two-steps",
            "durable.activity": "tracing.add",
            "durable.seq": seq,
            "durable.attempt": 1,
            "durable.outcome": "ok",
        }
        assert span.status.status_code is StatusCode.UNSET


def test_the_cli_start_carries_the_trace_context_like_app_start(
    tmp_path: Path, exporter: InMemorySpanExporter
):
    from durable.cli import main

    dsn = f"sqlite:///{tmp_path / 'cli.db'}"
    with tracer.start_as_current_span("deploy-script") as client:
        code = main(
            ["start", "tracing.two-steps", "--args", '{"x": 1}', "--id", "cli-1", "--dsn", dsn]
        )
    assert code == 0

    async def stored() -> str | None:
        async with durable.App(dsn) as app:
            run = await app.store.get_run("cli-1")
            assert run is not None
            return run.trace_context

    context = asyncio.run(stored())
    assert context is not None
    trace_id = client.get_span_context().trace_id
    assert f"{trace_id:032x}" in json.loads(context)["traceparent"]


async def test_a_run_started_outside_any_span_starts_its_own_trace(
    app: durable.App, spans: InMemorySpanExporter
):
    handle = await app.start(two_steps, 5)
    assert (await app.store.get_run(handle.run_id)).trace_context is None  # type: ignore[union-attr]
    async with app.worker(poll_interval=0.05):
        assert await handle.result(timeout=15) == 7
        found = await wait_spans(spans, lambda s: bool(named(s, "durable.run tracing.two-steps")))
    (run_span,) = named(found, "durable.run tracing.two-steps")
    assert run_span.parent is None
    for span in named(found, "durable.activity tracing.add"):
        assert parent_of(span) == run_span.context.span_id


async def test_failed_attempts_have_error_status_and_the_exception(
    app: durable.App, spans: InMemorySpanExporter
):
    with tracer.start_as_current_span("client"):
        handle = await app.start(fails)
    async with app.worker(poll_interval=0.05):
        assert await handle.result(timeout=15) == "recovered"
        found = await wait_spans(
            spans, lambda s: bool(named(s, "durable.run tracing.fails-then-recovers"))
        )
    attempts = sorted(named(found, "durable.activity tracing.add"), key=lambda s: s.start_time or 0)
    assert [(s.attributes or {})["durable.attempt"] for s in attempts] == [1, 2]
    assert [(s.attributes or {})["durable.outcome"] for s in attempts] == ["retry", "error"]
    for span in attempts:
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError: negative: -1"
        (event,) = span.events
        assert event.name == "exception"
        assert (event.attributes or {})["exception.type"] == "ValueError"
        assert (event.attributes or {})["exception.message"] == "negative: -1"
        assert "raise ValueError" in str((event.attributes or {})["exception.stacktrace"])
    (run_span,) = named(found, "durable.run tracing.fails-then-recovers")
    assert run_span.status.status_code is StatusCode.UNSET  # the workflow handled it


async def test_every_claim_is_a_new_run_span_in_the_same_trace(
    app: durable.App, spans: InMemorySpanExporter
):
    with tracer.start_as_current_span("client") as client:
        handle = await app.start(waits, id="traced-waits")
    async with app.worker(poll_interval=0.05):
        await wait_spans(spans, lambda s: bool(named(s, "durable.run tracing.waits")))
        await handle.signal("go", None)
        assert await handle.result(timeout=15) == 3
        found = await wait_spans(spans, lambda s: len(named(s, "durable.run tracing.waits")) == 2)
    claims = sorted(named(found, "durable.run tracing.waits"), key=lambda s: s.start_time or 0)
    assert [(s.attributes or {})["durable.epoch"] for s in claims] == [1, 2]
    assert [(s.attributes or {})["durable.outcome"] for s in claims] == ["WAITING", "COMPLETED"]
    for claim in claims:
        assert claim.context.trace_id == client.get_span_context().trace_id
        assert parent_of(claim) == client.get_span_context().span_id
    first, second = claims
    (before, after) = sorted(
        named(found, "durable.activity tracing.add"), key=lambda s: s.start_time or 0
    )
    assert parent_of(before) == first.context.span_id
    assert parent_of(after) == second.context.span_id


async def test_a_child_run_joins_its_parent_trace(app: durable.App, spans: InMemorySpanExporter):
    with tracer.start_as_current_span("client") as client:
        handle = await app.start(parent, id="traced-parent")
    async with app.worker(poll_interval=0.05):
        assert await handle.result(timeout=15) == 12
        found = await wait_spans(
            spans,
            lambda s: bool(named(s, "durable.run tracing.two-steps"))
            and any((x.attributes or {}).get("durable.outcome") == "COMPLETED"
                    for x in named(s, "durable.run tracing.parent")),
        )  # fmt: skip
    trace_id = client.get_span_context().trace_id
    parent_claims = named(found, "durable.run tracing.parent")
    (child_run,) = named(found, "durable.run tracing.two-steps")
    assert child_run.context.trace_id == trace_id
    assert (child_run.attributes or {})["durable.run_id"] == "traced-parent-child"
    # the child's context was stored by the claim of the parent that started it
    assert parent_of(child_run) == parent_claims[0].context.span_id
    assert all(claim.context.trace_id == trace_id for claim in parent_claims)


@durable.activity(name="tracing.score")
async def score(task: dict[str, Any]) -> dict[str, Any]:
    return {"score": 7}


async def test_a_flow_service_task_span_names_its_step(
    app: durable.App, spans: InMemorySpanExporter
):
    definition = {
        "id": "TRACING::flow",
        "name": "Traced flow",
        "steps": [
            {"id": "rate", "name": "Rate", "type": "SERVICE_TASK", "jobType": "tracing.score",
             "nextStep": "done"},
            {"id": "done", "name": "Done", "type": "END"},
        ],
    }  # fmt: skip
    await app.definitions.upload(definition)
    with tracer.start_as_current_span("client") as client:
        handle = await app.start_flow("TRACING::flow", variables={"a": 1})
    async with app.worker(poll_interval=0.05):
        assert (await handle.result(timeout=15))["score"] == 7
        found = await wait_spans(spans, lambda s: bool(named(s, "durable.run TRACING::flow")))
    (run_span,) = named(found, "durable.run TRACING::flow")
    assert parent_of(run_span) == client.get_span_context().span_id
    assert (run_span.attributes or {})["durable.flow_version"] == 1
    (task,) = named(found, "durable.activity tracing.score")
    assert parent_of(task) == run_span.context.span_id
    attributes = dict(task.attributes or {})
    assert attributes["durable.step_id"] == "rate"
    assert attributes["durable.workflow"] == "TRACING::flow"


async def test_a_schedule_tick_is_a_trace_of_its_own(app: durable.App, spans: InMemorySpanExporter):
    await app.schedule(two_steps, cron="* * * * * *", id="traced-tick", args=(1,))
    async with app.worker(poll_interval=0.05):
        found = await wait_spans(spans, lambda s: bool(named(s, "durable.run tracing.two-steps")))
    ticks = named(found, "durable.schedule traced-tick")
    run_span = named(found, "durable.run tracing.two-steps")[0]
    run_id = (run_span.attributes or {})["durable.run_id"]
    (tick,) = [t for t in ticks if run_id in list((t.attributes or {})["durable.run_ids"])]
    assert tick.parent is None
    assert parent_of(run_span) == tick.context.span_id
    assert (tick.attributes or {})["durable.workflow"] == "tracing.two-steps"


async def test_without_a_tracer_provider_nothing_is_stored(app: durable.App):
    """No span active (the API alone, or no SDK configured): no context is stored."""
    assert _tracing.inject() is None
    handle = await app.start(two_steps, 1)
    assert (await app.store.get_run(handle.run_id)).trace_context is None  # type: ignore[union-attr]


BLOCKER = """
import sys

class _NoOpenTelemetry:  # as if the otel extra were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, _NoOpenTelemetry())
"""

WITHOUT_OTEL = """
import asyncio, sys
import durable
from durable import _tracing

@durable.activity
async def add(x: int) -> int:
    return x + 1

@durable.workflow
async def wf(ctx: durable.Context, x: int) -> int:
    return await add(await add(x))

async def main() -> None:
    async with durable.App(sys.argv[1]) as app, app.worker(poll_interval=0.05):
        handle = await app.start(wf, 1)
        print(await handle.result(timeout=30))
    print(_tracing.inject(), _tracing.run_span is not None, _tracing._load())
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))

asyncio.run(main())
"""


def test_without_opentelemetry_installed_runs_work_untraced(tmp_path: Path):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    script = tmp_path / "untraced.py"
    script.write_text(WITHOUT_OTEL)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, str(script), f"sqlite:///{tmp_path / 'untraced.db'}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["3", "None True None", "[]"]


TRACED_APP = """
import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import durable

provider = TracerProvider()
out = open(os.environ["SPANS_FILE"], "a", buffering=1)
exporter = ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\\n")
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


@durable.activity(name="tracing.add")
async def add(x: int) -> int:
    return x + 1


@durable.workflow(name="tracing.two-steps")
async def two_steps(ctx: durable.Context, x: int) -> int:
    return await add(await add(x))


app = durable.App()
"""


@pytest.fixture
def traced_worker(tmp_path: Path, dsn: str) -> Iterator[Callable[[], Path]]:
    """Start ``durable worker traced_app:app``; its spans go to the returned file."""
    procs: list[subprocess.Popen[bytes]] = []
    spans_file = tmp_path / "spans.jsonl"

    def start() -> Path:
        (tmp_path / "traced_app.py").write_text(textwrap.dedent(TRACED_APP))
        env = {**os.environ, "DURABLE_DSN": dsn, "SPANS_FILE": str(spans_file)}
        command = [sys.executable, "-m", "durable.cli", "worker", "traced_app:app",
                   "--poll-interval", "0.1"]  # fmt: skip
        with (tmp_path / "worker.log").open("wb") as log:
            procs.append(subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log))
        return spans_file

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_the_trace_crosses_into_a_durable_worker_process(
    app: durable.App, spans: InMemorySpanExporter, traced_worker: Callable[[], Path]
):
    spans_file = traced_worker()
    with tracer.start_as_current_span("checkout") as client:
        handle = await app.start(two_steps, 1, id="traced-across")
    assert await handle.result(timeout=60) == 3
    with anyio.fail_after(30):
        while not any(s["name"] == "durable.run tracing.two-steps" for s in read_spans(spans_file)):
            await anyio.sleep(0.05)
    found = read_spans(spans_file)
    (run_span,) = [s for s in found if s["name"] == "durable.run tracing.two-steps"]
    context = client.get_span_context()
    assert run_span["context"]["trace_id"] == f"0x{context.trace_id:032x}"
    assert run_span["parent_id"] == f"0x{context.span_id:016x}"
    assert run_span["attributes"]["durable.run_id"] == "traced-across"
    activities = [s for s in found if s["name"] == "durable.activity tracing.add"]
    assert len(activities) == 2
    assert {s["parent_id"] for s in activities} == {run_span["context"]["span_id"]}
