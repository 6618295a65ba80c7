"""Worker behaviour in one process: concurrency limit, heartbeats, parked unknown workflows."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

import durable
from durable.registry import Registry, Workflow
from durable.store.postgres import PostgresStore

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    ran.clear()


running = 0
peak = 0
ran: Counter[str] = Counter()


@durable.activity
async def busy(label: str, seconds: float) -> str:
    global running, peak
    ran[label] += 1
    running += 1
    peak = max(peak, running)
    try:
        await asyncio.sleep(seconds)
    finally:
        running -= 1
    return label


@durable.workflow(name="worker-busy")
async def busy_flow(ctx: durable.Context, label: str, seconds: float) -> str:
    return await busy(label, seconds)


async def test_concurrency_limit_is_never_exceeded(app):
    global peak
    peak = 0
    async with app.worker(concurrency=2):
        handles = [await app.start(busy_flow, f"c{n}", 0.1) for n in range(6)]
        assert [await h.result(timeout=10) for h in handles] == [f"c{n}" for n in range(6)]
    assert peak == 2


async def test_heartbeat_keeps_the_lease_of_a_long_activity(app):
    async with app.worker(lease_seconds=0.3), app.worker(lease_seconds=0.3):
        handle = await app.start(busy_flow, "long", 1.2)
        assert await handle.result(timeout=10) == "long"
    assert ran["long"] == 1  # the other worker never took the run over


async def test_unknown_workflow_is_parked_until_a_worker_knows_it(app):
    @durable.workflow(name="worker-late")
    async def late(ctx: durable.Context) -> str:
        return "known now"

    handle = await app.start(late, id="late-1")
    del app.registry.workflows["worker-late"]  # this worker's code lacks it
    async with app.worker():
        with pytest.raises(durable.NotRegisteredError, match="worker-late"):
            await handle.result(timeout=10)
    assert (await handle.describe()).status is durable.Status.WAITING
    app.registry.add_workflow(late)  # deploy code that has it
    async with app.worker():
        assert await handle.result(timeout=10) == "known now"


slot_gate = asyncio.Event()


@durable.activity
async def hold_the_slot() -> None:
    await slot_gate.wait()


@durable.workflow(name="worker-slot-holder")
async def slot_holder(ctx: durable.Context) -> None:
    await hold_the_slot()


@durable.workflow(name="worker-partial")
async def partial(ctx: durable.Context) -> str:
    return "taken over"


async def test_a_running_worker_that_knows_the_workflow_takes_runs_another_parked(dsn, wait_status):
    slot_gate.clear()
    older_code = Registry()  # a worker on older code: it lacks worker-partial
    async with (
        durable.App(dsn) as knows,
        durable.App(dsn, registry=older_code) as lacks,
        knows.worker(concurrency=1, lease_seconds=0.3, poll_interval=0.05),
    ):
        busy = await knows.start(slot_holder, id="slot-holder")
        await wait_status(busy, durable.Status.RUNNING)  # the worker's one slot is taken
        handle = await knows.start(partial, id="partial-1")
        async with lacks.worker(poll_interval=0.05):
            with pytest.raises(durable.NotRegisteredError, match="worker-partial"):
                await handle.result(timeout=10)
        slot_gate.set()  # the slot frees; only a heartbeat can unpark the run now
        await wait_status(handle, durable.Status.COMPLETED)
        assert await handle.result() == "taken over"


async def test_runs_cut_off_by_the_grace_period_are_released_at_once(app):
    worker = app.worker(grace_period=0.2, lease_seconds=60)
    await worker.start()
    handle = await app.start(busy_flow, "cut-off", 30.0)
    while (await handle.describe()).status is not durable.Status.RUNNING:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # the activity is in flight
    await worker.stop()
    # released for the next worker now, not after the 60 s lease
    assert (await handle.describe()).status is durable.Status.PENDING


async def test_the_start_line_names_the_store_queues_and_what_the_worker_serves(
    dsn: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="durable.worker")
    served = Registry()
    for name in ("w-order", "w-refund", "w-audit", "w-ship"):
        served.add_workflow(Workflow(busy_flow.fn, name, None))
    served.add_activity(busy)
    app = durable.App(dsn, registry=served)
    async with app, app.worker(concurrency=7, queues=["default", "bulk"]):
        pass
    line = next(r.getMessage() for r in caplog.records if " started: " in r.getMessage())
    assert f"started: store {dsn.split('?')[0]}" in line
    assert ", queues default, bulk, " in line
    assert "4 workflows (w-audit, w-order, w-refund, …)" in line
    assert "1 activity (" in line and line.endswith(", concurrency 7")


def test_a_postgres_store_names_itself_without_its_password():
    store = PostgresStore("postgresql://root:s3cret@db.example:5432/prod?schema=app")
    assert store.location == "postgresql://root:***@db.example:5432/prod?schema=app"
