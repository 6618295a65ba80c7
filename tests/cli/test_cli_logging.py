"""Structured logs (``durable._logging``): run, workflow and step on every record."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import durable
from durable import _logging

pytestmark = pytest.mark.anyio
log = logging.getLogger("tests.cli.logging")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Route the root logger through ``configure`` into a buffer; restore it afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_bound_fields_nest_and_end_with_the_block(captured: io.StringIO):
    _logging.configure("info", "json", stream=captured)
    with _logging.bind(run_id="o-7", workflow="order"):
        with _logging.bind(step="reserve", attempt=2):
            log.info("inside %s", "step")
        log.info("between steps", extra={"worker": "w-1"})
    log.info("outside")
    log.debug("not shown")
    inside, between, outside = records(captured)
    assert inside["msg"] == "inside step" and inside["level"] == "INFO"
    assert (inside["run_id"], inside["workflow"], inside["step"]) == ("o-7", "order", "reserve")
    assert inside["attempt"] == 2 and inside["logger"] == "tests.cli.logging"
    assert (between["run_id"], between["step"], between["worker"]) == ("o-7", None, "w-1")
    assert "attempt" not in between
    assert (outside["run_id"], outside["workflow"], outside["step"]) == (None, None, None)


def test_text_format_is_key_value_with_quoting_and_tracebacks(captured: io.StringIO):
    _logging.configure("DEBUG", "text", stream=captured)
    _logging.configure("DEBUG", "text", stream=captured)  # replaces, never duplicates
    with _logging.bind(run_id="o-7", workflow="order flow"):
        log.debug('said "hi"')
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    lines = captured.getvalue().splitlines()
    first = lines[0]
    assert first.startswith("time=") and " level=DEBUG logger=tests.cli.logging " in first
    assert first.endswith(' run_id=o-7 workflow="order flow" msg="said \\"hi\\""')
    assert "step=" not in first  # unknown fields are left out of text lines
    assert lines[1].endswith("msg=failed") and lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom" and len([x for x in lines if "time=" in x]) == 2


def test_bad_level_or_format_is_refused():
    with pytest.raises(durable.DurableError, match="unknown log level 'loud'"):
        _logging.configure("loud", "text")
    with pytest.raises(durable.DurableError, match="unknown log format 'xml'"):
        _logging.configure("INFO", "xml")


@durable.activity(name="log-async")
async def log_async(item: str) -> str:
    log.info("async activity %s", item)
    return item


@durable.activity(name="log-sync")
def log_sync(item: str) -> str:
    log.info("sync activity %s", item)  # runs in a worker thread
    return item


@durable.workflow(name="log-run")
async def log_run(ctx: durable.Context, item: str) -> list[str]:
    log.info("workflow code")
    return [await log_async(item), await log_sync(item)]


async def test_records_made_in_a_run_carry_its_run_workflow_and_step(
    captured: io.StringIO, tmp_path: Path
):
    _logging.configure("INFO", "json", stream=captured)
    async with durable.App(f"sqlite:///{tmp_path / 'log.db'}") as app, app.worker():
        handle = await app.start(log_run, "x", id="log-1")
        assert await handle.result(timeout=30) == ["x", "x"]
    mine = {r["msg"]: r for r in records(captured) if r["logger"] == "tests.cli.logging"}
    assert (mine["workflow code"]["run_id"], mine["workflow code"]["workflow"]) == (
        "log-1", "log-run"
    )  # fmt: skip
    for msg, step in (("async activity x", "log-async"), ("sync activity x", "log-sync")):
        assert (mine[msg]["run_id"], mine[msg]["workflow"], mine[msg]["step"]) == (
            "log-1", "log-run", step
        )  # fmt: skip


def test_uvicorn_colour_messages_never_reach_the_lines(captured: io.StringIO):
    colour = {"color_message": "Started server process [\x1b[36m%d\x1b[0m]"}
    for fmt in ("json", "text"):
        _logging.configure("INFO", fmt, stream=captured)
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 42, extra=colour)
    json_line, text_line = captured.getvalue().splitlines()
    assert json.loads(json_line)["msg"] == "Started server process [42]"
    assert "color_message" not in json_line and "color_message" not in text_line
    assert "\\u001b" not in json_line and "\x1b" not in text_line
    assert text_line.endswith('msg="Started server process [42]"')


@durable.activity(name="log-flow-job")
async def log_flow_job(task: dict[str, object]) -> dict[str, object]:
    log.info("flow job")
    return {}


async def test_flow_runs_are_logged_with_their_definition_id(captured: io.StringIO, tmp_path: Path):
    _logging.configure("INFO", "json", stream=captured)
    job = {"id": "job", "name": "Job", "type": "SERVICE_TASK", "jobType": "log-flow-job"}
    steps = [{**job, "nextStep": "done"}, {"id": "done", "name": "Done", "type": "END"}]
    async with durable.App(f"sqlite:///{tmp_path / 'flow.db'}") as app, app.worker():
        await app.definitions.upload({"id": "LOG::flow", "name": "Log flow", "steps": steps})
        handle = await app.start_flow("LOG::flow", id="flow-1")
        await handle.result(timeout=30)
    mine = [r for r in records(captured) if r["run_id"] == "flow-1"]
    assert {r["workflow"] for r in mine} == {"LOG::flow"}, mine
    states = [r["msg"] for r in mine if r["logger"] == "durable.runtime"]
    assert any("workflow=LOG::flow" in msg and "state=COMPLETED" in msg for msg in states)
    job = next(r for r in mine if r["msg"] == "flow job")
    assert (job["step"], job["job_type"]) == ("job", "log-flow-job")
