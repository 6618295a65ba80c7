"""Failure modes found in review: each test pins the behaviour a user relies on."""

from __future__ import annotations

import asyncio
import sys

import pytest

import durable
from durable.runtime import _dispatch

pytestmark = pytest.mark.anyio

seen: list[object] = []


@pytest.fixture(autouse=True)
def _fresh() -> None:
    seen.clear()


# -- recorded values are durable before an activity uses them ---------------------------------
current_app: list[durable.App] = []


@durable.activity
async def charge_with(key: str) -> str:
    journal = await current_app[0].store.read_journal(durable.activity_info().run_id)
    seen.append([e.kind for e in journal])
    return key


@durable.workflow(name="robust-key")
async def keyed(ctx: durable.Context) -> str:
    return await charge_with(str(ctx.uuid4()))


async def test_a_recorded_uuid_is_journaled_before_the_activity_that_uses_it_starts(app):
    current_app[:] = [app]
    async with app.worker():
        key = await (await app.start(keyed, id="robust-key")).result(timeout=10)
    assert seen == [["uuid4"]]  # a crash mid-activity replays the same key
    [record] = [e for e in await app.handle("robust-key").history() if e.kind == "uuid4"]
    assert record.payload == key


@durable.activity
async def first_step() -> str:
    return "done"


@durable.workflow(name="robust-key-after-step")
async def keyed_after_a_step(ctx: durable.Context) -> str:
    await first_step()  # the key below is recorded while this result is delivered
    return await charge_with(str(ctx.uuid4()))


async def test_a_uuid_recorded_after_a_result_is_journaled_before_the_next_activity(app):
    current_app[:] = [app]
    async with app.worker():
        handle = await app.start(keyed_after_a_step, id="robust-key-after-step")
        key = await handle.result(timeout=10)
    assert seen == [["activity", "uuid4"]]
    [record] = [e for e in await handle.history() if e.kind == "uuid4"]
    assert record.payload == key


# -- a cancelled run that cleans up with a durable wait sleeps, it does not spin --------------
@durable.workflow(name="robust-cleanup-sleep")
async def cleans_up_slowly(ctx: durable.Context) -> None:
    try:
        await ctx.sleep(3600)
    except durable.Cancelled:
        await ctx.sleep(0.5)
        raise


async def test_cleanup_after_cancel_may_sleep_without_waking_at_once(app, monkeypatch, wait_status):
    monkeypatch.setattr(_dispatch, "SHORT_WAIT", 0.0)  # every sleep suspends the run
    async with app.worker(poll_interval=0.05):
        handle = await app.start(cleans_up_slowly, id="robust-cleanup")
        await wait_status(handle, durable.Status.WAITING)
        await handle.cancel()
        with pytest.raises(durable.WorkflowFailed):
            await handle.result(timeout=10)
    run = await app.store.get_run("robust-cleanup")
    assert run is not None and run.epoch <= 4  # claims: start, cancel, wake, (one spare)


# -- poison runs and activities ---------------------------------------------------------------
@durable.workflow(name="robust-needs-args")
async def needs_args(ctx: durable.Context, order_id: str) -> str:
    return order_id


async def test_a_run_whose_arguments_the_workflow_cannot_take_fails_once(app):
    # stored by a client without the code (or before a deploy changed the signature)
    await app.store.create_run("robust-bad-args", "robust-needs-args", "{}")
    async with app.worker():
        with pytest.raises(durable.WorkflowFailed) as info:
            await app.handle("robust-bad-args").result(timeout=10)
    assert "order_id" in info.value.error_message
    run = await app.store.get_run("robust-bad-args")
    assert run is not None and run.epoch == 1


@durable.activity(retry=durable.RetryPolicy(max_attempts=1))
def exits(code: int) -> None:
    sys.exit(code)


@durable.activity(retry=durable.RetryPolicy(max_attempts=1))
async def stray_cancel() -> None:
    raise asyncio.CancelledError()


@durable.workflow(name="robust-exits")
async def survives(ctx: durable.Context) -> list[str]:
    kinds = []
    for call in (lambda: exits(3), stray_cancel):
        try:
            await call()
        except durable.ActivityError as exc:
            kinds.append(exc.error_type)
    return kinds


async def test_sys_exit_or_a_stray_cancellation_in_an_activity_is_a_failed_attempt(app):
    async with app.worker():
        handle = await app.start(survives, id="robust-exits")
        assert await handle.result(timeout=10) == ["SystemExit", "CancelledError"]


# -- children ---------------------------------------------------------------------------------
@durable.workflow(name="robust-child", queue="robust-nobody-serves-this")
async def unserved_child(ctx: durable.Context) -> str:
    return "never"


@durable.workflow(name="robust-parent")
async def parent_of_unserved(ctx: durable.Context) -> str:
    try:
        return await ctx.child(unserved_child, id="robust-unstarted-child")
    except durable.WorkflowFailed as exc:
        return exc.status


async def test_cancelling_a_child_that_never_started_tells_its_parent(app, wait_status):
    async with app.worker(queues=["default"]):
        handle = await app.start(parent_of_unserved, id="robust-parent")
        await wait_status(handle, durable.Status.WAITING)
        await app.handle("robust-unstarted-child").cancel()
        assert await handle.result(timeout=10) == "CANCELLED"


@durable.workflow(name="robust-quick-child")
async def quick_child(ctx: durable.Context, n: int) -> int:
    return n * 10


@durable.workflow(name="robust-reuses-child-id")
async def reuses_child_id(ctx: durable.Context, generation: int) -> list[int]:
    value = await ctx.child(quick_child, generation, id="robust-fixed-child")
    if generation == 0:
        ctx.continue_as_new(1)
    return [generation, value]


async def test_a_child_id_that_names_a_finished_run_gives_that_runs_result(app):
    async with app.worker():
        handle = await app.start(reuses_child_id, 0, id="robust-reuse")
        # the second incarnation starts the same child id: starting is idempotent
        assert await handle.result(timeout=10) == [1, 0]


@durable.workflow(name="robust-sleepy-child")
async def sleepy_child(ctx: durable.Context) -> None:
    await ctx.sleep(3600)


@durable.workflow(name="robust-restarts-with-child")
async def restarts_with_child(ctx: durable.Context, generation: int) -> int:
    if generation == 0:
        ctx.start_child(sleepy_child, id="robust-left-behind")
        await ctx.sleep(0.1)
        ctx.continue_as_new(1)
    await ctx.wait_signal("finish")
    return generation


async def test_a_child_cancelled_by_continue_as_new_leaves_no_signal_behind(app, wait_status):
    async with app.worker():
        handle = await app.start(restarts_with_child, 0, id="robust-restart")
        await wait_status(handle, durable.Status.WAITING)  # the second incarnation
        await wait_status(app.handle("robust-left-behind"), durable.Status.CANCELLED)
        assert await app.store.pending_signals("robust-restart", 0) == []
        await handle.signal("finish")
        assert await handle.result(timeout=10) == 1


# -- heartbeats start when the attempt does, not while it waits for a queue slot --------------
ONE_AT_A_TIME = durable.Queue("robust-one-at-a-time", concurrency=1)


@durable.activity(queue=ONE_AT_A_TIME, heartbeat_timeout=0.3)
async def beating(label: str) -> str:
    for _ in range(6):
        await asyncio.sleep(0.1)
        durable.heartbeat()
    return label


@durable.workflow(name="robust-beating")
async def beats_in_turn(ctx: durable.Context) -> list[str]:
    return await ctx.gather(beating("a"), beating("b"))


async def test_an_attempt_waiting_for_a_queue_slot_is_not_timed_out_by_its_heartbeat(dsn):
    async with durable.App(dsn, queues=[ONE_AT_A_TIME]) as app, app.worker():
        handle = await app.start(beats_in_turn, id="robust-beating")
        assert await handle.result(timeout=15) == ["a", "b"]
