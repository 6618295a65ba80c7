"""Changed code under a parked run: reported precisely, parked (not failed), resumable."""

from __future__ import annotations

import pytest

import durable

pytestmark = pytest.mark.anyio


@durable.activity
async def reserve(item: str) -> str:
    return f"reserved {item}"


@durable.activity
async def charge(item: str) -> str:
    return f"charged {item}"


def define(version: int) -> durable.Workflow[..., str]:
    """Register a version of the 'order-nd' workflow (same qualname: replaces the last)."""

    @durable.workflow(name="order-nd")
    async def order(ctx: durable.Context, item: str) -> str:
        if version == 1:
            first = await reserve(item)
        elif version == 2:
            first = await charge(item)  # a different activity at sequence number 1
        else:
            first = await reserve(item + "!")  # the same activity, other arguments
        await ctx.wait_signal("go")
        return first

    return order


async def test_changed_code_parks_run_with_details_and_fixed_code_resumes(app, wait_status):
    v1 = define(1)
    async with app.worker():
        handle = await app.start(v1, "book", id="nd-1")
        await wait_status(handle, durable.Status.WAITING)

    define(2)  # deploy changed code
    async with app.worker():
        await handle.signal("go")
        with pytest.raises(durable.NonDeterminismError) as info:
            await handle.result(timeout=10)
    err = info.value
    assert err.run_id == "nd-1" and err.seq == 1
    assert "activity 'reserve'" in err.recorded and "activity 'charge'" in err.requested
    assert "sequence number 1" in str(err)
    desc = await handle.describe()
    assert desc.status is durable.Status.WAITING  # parked, not failed
    assert desc.parked_reason is not None and "charge" in desc.parked_reason
    assert desc.blocked_on is not None and desc.blocked_on.kind == "parked"
    assert "activity 'charge'" in desc.blocked_on.message
    assert "activity 'reserve'" in desc.blocked_on.message

    define(1)  # deploy the fix: a new worker picks the parked run up again
    async with app.worker():
        assert await handle.result(timeout=10) == "reserved book"


async def test_changed_arguments_are_reported(app, wait_status):
    v1 = define(1)
    async with app.worker():
        handle = await app.start(v1, "lamp", id="nd-2")
        await wait_status(handle, durable.Status.WAITING)
    define(3)
    async with app.worker():
        await handle.signal("go")
        with pytest.raises(durable.NonDeterminismError) as info:
            await handle.result(timeout=10)
    assert info.value.seq == 1
    assert info.value.recorded != info.value.requested
    assert "arguments" in info.value.recorded
    define(1)


async def test_journal_entries_the_code_no_longer_asks_for(app, wait_status):
    @durable.workflow(name="nd-removed-step")
    async def shorter(ctx: durable.Context) -> str:  # the "old" deployment
        await reserve("x")
        await ctx.wait_signal("go")
        return "done"

    async with app.worker():
        handle = await app.start("nd-removed-step", id="nd-3")
        await wait_status(handle, durable.Status.WAITING)

    @durable.workflow(name="nd-removed-step")
    async def shorter(ctx: durable.Context) -> str:  # noqa: F811 - the "new" deployment
        await ctx.wait_signal("go")
        return "done"

    async with app.worker():
        await handle.signal("go")
        with pytest.raises(durable.NonDeterminismError) as info:
            await handle.result(timeout=10)
    assert info.value.seq == 1 and "reserve" in info.value.recorded
    assert "signal 'go'" in info.value.requested
