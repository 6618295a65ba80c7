"""Events: a running workflow publishes progress that clients read."""

from __future__ import annotations

import pytest

import durable

pytestmark = pytest.mark.anyio


@durable.workflow(name="events-progress")
async def progress(ctx: durable.Context) -> str:
    ctx.set_event("stage", {"name": "waiting", "done": 1})
    await ctx.wait_signal("go")
    ctx.set_event("stage", {"name": "finishing", "done": 2})
    ctx.set_event("extra", [1, 2, 3])
    return "ok"


async def test_clients_read_the_latest_event_of_a_running_and_finished_run(app, wait_status):
    async with app.worker():
        handle = await app.start(progress, id="events")
        assert await handle.get_event("stage", timeout=10) == {"name": "waiting", "done": 1}
        await wait_status(handle, durable.Status.WAITING)
        assert await handle.get_event("extra") is None  # not yet, and no waiting
        await handle.signal("go")
        assert await handle.result(timeout=10) == "ok"
    assert await handle.get_event("stage") == {"name": "finishing", "done": 2}
    assert await handle.get_event("extra") == [1, 2, 3]
    assert await handle.get_event("never", timeout=5) is None  # the run ended: no wait
    events = [e for e in await handle.history() if e.kind == "event"]
    assert [e.name for e in events] == ["stage", "stage", "extra"]


async def test_get_event_waits_for_a_first_value(app):
    async with app.worker():
        handle = await app.start(progress, id="events-wait")
        value = await handle.get_event("stage", timeout=10)
    assert value == {"name": "waiting", "done": 1}
