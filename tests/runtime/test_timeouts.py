"""Attempt timeouts, heartbeats, cancellation reaching activities, execution timeouts."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import durable

pytestmark = pytest.mark.anyio

seen: list[str] = []
stopped = threading.Event()


@pytest.fixture(autouse=True)
def _fresh() -> None:
    seen.clear()
    stopped.clear()


ONCE = durable.RetryPolicy(max_attempts=1)


@durable.activity(
    heartbeat_timeout=0.3, retry=durable.RetryPolicy(max_attempts=2, initial_interval=0)
)
async def goes_silent() -> str:
    seen.append(f"attempt {durable.activity_info().attempt}")
    await asyncio.sleep(30)
    return "never"


@durable.activity(heartbeat_timeout=0.3, retry=ONCE)
async def beats(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        durable.heartbeat()
        await asyncio.sleep(0.05)
    return "alive"


@durable.workflow(name="timeouts-heartbeats")
async def heartbeats(ctx: durable.Context) -> dict[str, object]:
    long = await beats(1.0)  # longer than the heartbeat timeout, but beating
    try:
        await goes_silent()
    except durable.ActivityError as exc:
        return {"long": long, "attempts": exc.attempts, "type": exc.error_type, "msg": str(exc)}
    return {}


async def test_a_missed_heartbeat_fails_the_attempt_and_beating_keeps_it_alive(app):
    async with app.worker():
        handle = await app.start(heartbeats, id="heartbeats")
        result = await handle.result(timeout=15)
    assert result["long"] == "alive"
    assert result["attempts"] == 2 and result["type"] == "TimeoutError"
    assert "sent no heartbeat for 0.3 s" in str(result["msg"])
    assert seen == ["attempt 1", "attempt 2"]


@durable.activity(timeout=0.2, retry=ONCE)
async def too_slow() -> None:
    await asyncio.sleep(30)


@durable.workflow(name="timeouts-attempt")
async def attempt_timeout(ctx: durable.Context) -> str:
    try:
        await too_slow()
    except durable.ActivityError as exc:
        return exc.error_type
    return "finished"


async def test_an_attempt_past_its_timeout_fails(app):
    async with app.worker():
        handle = await app.start(attempt_timeout, id="attempt-timeout")
        assert await handle.result(timeout=10) == "TimeoutError"


@durable.activity
def sync_worker() -> None:
    """A sync activity: it keeps running in its thread until told through its context."""
    seen.append("started")
    try:
        while True:
            durable.heartbeat()
            time.sleep(0.02)
    except durable.Cancelled:
        seen.append(f"told, cancelled={durable.activity_info().cancelled}")
        stopped.set()
        raise


@durable.activity
async def async_worker() -> None:
    seen.append("started")
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        seen.append("async cancelled")
        stopped.set()
        raise


@durable.activity
async def clean_up(kind: str) -> None:
    seen.append(f"cleanup {kind}")


@durable.workflow(name="timeouts-cancel-activity")
async def cancellable(ctx: durable.Context, kind: str) -> None:
    try:
        await (sync_worker() if kind == "sync" else async_worker())
    except durable.Cancelled:
        await clean_up(kind)
        raise


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_cancel_reaches_a_running_activity_and_runs_cleanup(app, kind):
    async with app.worker():
        handle = await app.start(cancellable, kind, id=f"cancel-{kind}")
        deadline = time.monotonic() + 10
        while "started" not in seen and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await handle.cancel()
        with pytest.raises(durable.WorkflowFailed) as info:
            await handle.result(timeout=10)
        assert await asyncio.to_thread(stopped.wait, 5)
    assert info.value.status == "CANCELLED"
    told = "told, cancelled=True" if kind == "sync" else "async cancelled"
    assert seen == ["started", told, f"cleanup {kind}"] or seen == [
        "started",
        f"cleanup {kind}",
        told,
    ]


@durable.workflow(name="timeouts-execution", execution_timeout=0.5)
async def bounded(ctx: durable.Context, where: str) -> str:
    if where == "sleeping":
        await ctx.sleep(3600)
    else:
        await too_slow_but_retried()
    return "finished"


@durable.activity(retry=ONCE)
async def too_slow_but_retried() -> None:
    await asyncio.sleep(30)


@pytest.mark.parametrize("where", ["sleeping", "in-activity"])
async def test_an_execution_timeout_ends_the_run_failed(app, where):
    async with app.worker():
        handle = await app.start(bounded, where, id=f"bounded-{where}")
        with pytest.raises(durable.WorkflowFailed) as info:
            await handle.result(timeout=10)
    assert info.value.status == "FAILED"
    assert info.value.error_type == "WorkflowTimeout"
    assert "execution_timeout" in info.value.error_message
    desc = await handle.describe()
    assert desc.status is durable.Status.FAILED and "timed out" in (desc.failure_reason or "")


async def test_an_execution_timeout_that_passed_while_no_worker_ran_fails_at_claim(app):
    handle = await app.start(bounded, "sleeping", id="bounded-late")
    await asyncio.sleep(0.6)
    async with app.worker():
        with pytest.raises(durable.WorkflowFailed) as info:
            await handle.result(timeout=10)
    assert info.value.error_type == "WorkflowTimeout"
    assert await handle.history() == []  # nothing of the workflow ran
