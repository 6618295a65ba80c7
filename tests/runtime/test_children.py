"""Child runs: started durably, awaited, linked, failing into the parent, cancelled with it."""

from __future__ import annotations

import pytest

import durable

pytestmark = pytest.mark.anyio


@durable.activity
async def square(n: int) -> int:
    return n * n


@durable.workflow(name="child-square")
async def child_square(ctx: durable.Context, n: int) -> int:
    return await square(n)


@durable.workflow(name="child-fails")
async def child_fails(ctx: durable.Context, reason: str) -> None:
    raise ValueError(reason)


@durable.workflow(name="child-sleeps")
async def child_sleeps(ctx: durable.Context) -> str:
    await ctx.sleep(3600)
    return "woke"


@durable.workflow(name="parent-sum")
async def parent_sum(ctx: durable.Context, n: int) -> int:
    first = await ctx.child(child_square, n, id=f"{ctx.info.run_id}-first")
    later = [ctx.start_child(child_square, i) for i in range(3)]
    rest = await ctx.gather(*later)
    return first + sum(rest)


async def test_children_return_results_and_are_linked_both_ways(app):
    async with app.worker():
        handle = await app.start(parent_sum, 5, id="parent")
        assert await handle.result(timeout=15) == 25 + 0 + 1 + 4
    parent = await handle.describe()
    assert len(parent.children) == 4 and parent.children[0] == "parent-first"
    for child_id in parent.children:
        child = await app.handle(child_id).describe()
        assert child.parent_id == "parent" and child.status is durable.Status.COMPLETED
    kinds = [(e.kind, e.event) for e in await handle.history() if e.kind == "child"]
    assert kinds.count(("child", "start")) == 4 and kinds.count(("child", "result")) == 4


@durable.workflow(name="parent-catches")
async def parent_catches(ctx: durable.Context) -> str:
    try:
        await ctx.child(child_fails, "out of stock")
    except durable.WorkflowFailed as exc:
        return f"{exc.status}: {exc.error_type}: {exc.error_message}"
    return "no error"


async def test_a_failed_child_raises_in_the_parent(app):
    async with app.worker():
        handle = await app.start(parent_catches, id="parent-catches")
        assert await handle.result(timeout=15) == "FAILED: ValueError: out of stock"


@durable.workflow(name="parent-waits")
async def parent_waits(ctx: durable.Context) -> str:
    return await ctx.child(child_sleeps, id="sleepy-child")


async def test_cancelling_the_parent_cancels_its_children(app, wait_status):
    async with app.worker():
        handle = await app.start(parent_waits, id="parent-waits")
        await wait_status(handle, durable.Status.WAITING)  # its child is started by then
        child = app.handle("sleepy-child")
        await wait_status(child, durable.Status.WAITING)
        await handle.cancel()
        for run in (handle, child):
            with pytest.raises(durable.WorkflowFailed) as info:
                await run.result(timeout=10)
            assert info.value.status == "CANCELLED"


@durable.workflow(name="parent-leaves")
async def parent_leaves(ctx: durable.Context) -> str:
    ctx.start_child(child_sleeps, id="orphan")
    await ctx.sleep(0.2)
    return "done"


async def test_a_child_still_running_when_the_parent_ends_is_cancelled(app, wait_status):
    async with app.worker():
        handle = await app.start(parent_leaves, id="parent-leaves")
        assert await handle.result(timeout=10) == "done"
        desc = await wait_status(app.handle("orphan"), durable.Status.CANCELLED)
    assert desc.parent_id == "parent-leaves"


async def test_a_child_survives_the_parent_worker_restarting(app, wait_status):
    async with app.worker():
        handle = await app.start(parent_waits, id="parent-restart")
        await wait_status(handle, durable.Status.WAITING)
        await wait_status(app.handle("sleepy-child"), durable.Status.WAITING)
    # a new worker: the parent replays, finds its child started, and waits on
    async with app.worker():
        await wait_status(handle, durable.Status.WAITING)
        [child_id] = (await handle.describe()).children
        assert child_id == "sleepy-child"
        await app.handle(child_id).cancel()
        with pytest.raises(durable.WorkflowFailed) as info:
            await handle.result(timeout=10)
    assert info.value.error_type == "WorkflowFailed"  # the child's end, raised in the parent
