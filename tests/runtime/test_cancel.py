"""Cancellation: raised at the next durable await; the run ends CANCELLED."""

from __future__ import annotations

import pytest

import durable

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    cleanups.clear()


cleanups: list[str] = []


@durable.activity
async def cleanup(label: str) -> None:
    cleanups.append(label)


@durable.workflow(name="cancel-sleeper")
async def sleeper(ctx: durable.Context, label: str) -> str:
    try:
        await ctx.sleep(3600)
    except durable.Cancelled:
        await cleanup(label)  # cleanup code may still make durable calls
        raise
    return "woke"


async def test_cancel_ends_a_sleeping_run_cancelled(app, wait_status):
    async with app.worker():
        handle = await app.start(sleeper, "c1", id="sleeping")
        await wait_status(handle, durable.Status.WAITING)
        await handle.cancel()
        with pytest.raises(durable.WorkflowFailed) as info:
            await handle.result(timeout=10)
    assert info.value.status == "CANCELLED" and info.value.error_type == "Cancelled"
    assert (await handle.describe()).status is durable.Status.CANCELLED
    assert cleanups == ["c1"]
    events = [(e.event, e.kind) for e in await handle.history()]
    assert ("cancel", "cancel") in events


async def test_cancel_before_start_ends_at_once(app):
    handle = await app.start(sleeper, "never", id="pending-cancel")
    await handle.cancel()
    desc = await handle.describe()
    assert desc.status is durable.Status.CANCELLED
    assert "never" not in cleanups


async def test_cancel_twice_and_cancel_finished_are_harmless(app, wait_status):
    async with app.worker():
        handle = await app.start(sleeper, "c2", id="twice")
        await wait_status(handle, durable.Status.WAITING)
        await handle.cancel()
        await handle.cancel()
        with pytest.raises(durable.WorkflowFailed):
            await handle.result(timeout=10)
        await handle.cancel()
    assert cleanups.count("c2") == 1
