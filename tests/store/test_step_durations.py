"""Store.step_durations: each step record read once, by commit order, and only the new ones.

The old history is written with SQL (as a large database would hold it); the new work
comes from real flow runs.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import anyio
import asyncpg
import pytest

import durable
from durable.store._admin import StepDurations
from durable.store.postgres import parse_dsn

pytestmark = pytest.mark.anyio

BOUNDS = (1.0, 60.0)
OLD_RUNS = 3000
"""Runs of old history: 10 journal rows each, 3 of them step records."""

FLOW = {
    "id": "STEPS::flow",
    "name": "Step durations",
    "steps": [
        {"id": "work", "name": "Work", "type": "SERVICE_TASK", "jobType": "steps-work",
         "nextStep": "done"},
        {"id": "done", "name": "Done", "type": "END"},
    ],
}  # fmt: skip


@durable.activity(name="steps-work")
async def work(task: dict[str, Any]) -> dict[str, Any]:
    return {}


_STEP = '{"type":"SERVICE_TASK","startedAt":"2024-01-01T00:00:00Z","at":"2024-01-01T00:00:01Z","status":"COMPLETED"}'  # noqa: E501
_RUNS = (
    "INSERT INTO runs (id, workflow, status, args, created_at, updated_at, flow_version)"
    " SELECT 'old' || n, 'OLD::flow', 'COMPLETED', '[]', n, n, 1 FROM {numbers}"
)
_JOURNAL = (
    "INSERT INTO journal (run_id, pos, seq, event, kind, name, payload, created_at)"
    " SELECT 'old' || (n / 10), n % 10, n % 10, 'result',"
    " CASE WHEN n % 10 < 3 THEN 'step' ELSE 'activity' END, 'x',"
    f" CASE WHEN n % 10 < 3 THEN '{_STEP}' ELSE '\"ok\"' END, {{created}} FROM {{numbers}}"
)
"""Old history: ``{created}`` is the time the records were made."""


async def _write(dsn: str, *statements: str) -> None:
    """Run statements on a connection of our own; ``{numbers}`` is 1..OLD_RUNS*10+9."""
    last = OLD_RUNS * 10 + 9
    if dsn.startswith("sqlite"):
        numbers = "(WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {}) SELECT n FROM g)"  # noqa: E501
        conn = sqlite3.connect(dsn.removeprefix("sqlite:///"), isolation_level=None)
        try:
            for stmt in statements:
                conn.execute(stmt.replace("{numbers}", numbers.format(last)))
        finally:
            conn.close()
        return
    server, schema = parse_dsn(dsn)
    pg = await asyncpg.connect(server, server_settings={"search_path": schema})
    try:
        for stmt in statements:
            await pg.execute(stmt.replace("{numbers}", f"generate_series(1, {last}) n"))
        await pg.execute("ANALYZE")
    finally:
        await pg.close()


def _counts(read: StepDurations) -> dict[tuple[str, str], int]:
    return {(s.workflow, s.step_type): s.count for s in read.steps}


async def _run_flows(app: durable.App, count: int) -> None:
    handles = [await app.start_flow("STEPS::flow") for _ in range(count)]
    with anyio.fail_after(20):
        for handle in handles:
            await handle.result()


async def test_a_read_takes_only_the_records_committed_since_the_last(app: durable.App, dsn: str):
    await _write(dsn, _RUNS, _JOURNAL.replace("{created}", "1000.0"))
    await app.definitions.upload(FLOW)
    since = time.time()
    store = app.store
    first = await store.step_durations(BOUNDS, since=since)
    assert first.steps == [] and first.rows < 10  # Postgres: the planner peeks at the index
    settled = await store.step_durations(BOUNDS, since=since, position=first.position)
    assert settled.steps == []

    async with app.worker(poll_interval=0.05):
        await _run_flows(app, 4)
    read = await store.step_durations(BOUNDS, since=since, position=settled.position)
    assert _counts(read) == {("STEPS::flow", "SERVICE_TASK"): 4, ("STEPS::flow", "END"): 4}
    # 8 new step records; the 9,000 old ones are not read (Postgres counts the rows the
    # planner peeks at too, and a transaction of another session still open at the
    # previous read makes it read a few rows again)
    assert 8 <= read.rows < 100
    again = await store.step_durations(BOUNDS, since=since, position=read.position)
    assert again.steps == [] and again.rows < 20
    if dsn.startswith("sqlite"):
        assert (first.rows, read.rows, again.rows) == (0, 8, 0)

    async with app.worker(poll_interval=0.05):
        await _run_flows(app, 2)
    later = await store.step_durations(BOUNDS, since=since, position=again.position)
    assert _counts(later) == {("STEPS::flow", "SERVICE_TASK"): 2, ("STEPS::flow", "END"): 2}
    assert later.steps[0].buckets == (2, 2)  # cumulative: both took under a second


async def test_records_made_before_since_or_unreadable_are_skipped(app: durable.App, dsn: str):
    store = app.store
    since = time.time()
    start = await store.step_durations(BOUNDS, since=since)
    # committed after the read, but made before `since`: not counted, read once
    await _write(dsn, _RUNS, _JOURNAL.replace("{created}", str(since - 60)))
    late = await store.step_durations(BOUNDS, since=since, position=start.position)
    assert late.steps == [] and late.rows >= OLD_RUNS * 3
    bad = [
        "INSERT INTO runs (id, workflow, status, args, created_at, updated_at)"
        " VALUES ('bad', 'BAD::flow', 'RUNNING', '[]', 0, 0)",
        "INSERT INTO journal (run_id, pos, seq, event, kind, name, payload, created_at)"
        f" VALUES ('bad', 0, 1, 'result', 'step', 'x', 'not json', {time.time()}),"
        f" ('bad', 1, 2, 'result', 'step', 'x', '[1]', {time.time()}),"
        f" ('bad', 2, 3, 'result', 'step', 'x', '{{\"status\":\"COMPLETED\",\"start\":9}}',"
        f" {time.time()}),"
        f" ('bad', 3, 4, 'result', 'step', 'x', '{{\"status\":\"x\",\"type\":\"T\","
        f'"startedAt":"yesterday","at":3}}\', {time.time()})',
    ]
    await _write(dsn, *bad)
    read = await store.step_durations(BOUNDS, since=since, position=late.position)
    assert read.steps == [] and read.rows >= 4
