"""durable.testing.TestEnv: idle time is skipped, timers keep their order, mocks decide."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import durable
from durable.testing import TestEnv

pytestmark = pytest.mark.anyio

log: list[str] = []


@pytest.fixture(autouse=True)
def _fresh() -> None:
    log.clear()


@pytest.fixture
async def env() -> AsyncIterator[TestEnv]:
    async with TestEnv() as env:
        yield env


@durable.activity(name="testing.note")
async def note(label: str) -> str:
    log.append(label)
    return label


@durable.workflow(name="testing.month")
async def month(ctx: durable.Context) -> float:
    before = ctx.now()
    await ctx.sleep(timedelta(days=30))
    return (ctx.now() - before).total_seconds()


async def test_a_30_day_sleep_passes_at_once(env: TestEnv):
    started, wall = env.now(), time.perf_counter()
    slept = await env.run(month, id="month")
    print(f"30 virtual days took {time.perf_counter() - wall:.3f} s of wall time")
    assert slept >= 30 * 86400
    assert env.now() - started >= timedelta(days=30)
    timers = [e for e in await env.handle("month").history() if e.event == "timer"]
    assert len(timers) == 1  # one durable timer, journaled with its virtual deadline


@durable.workflow(name="testing.staggered")
async def staggered(ctx: durable.Context, label: str, hours: int) -> str:
    await ctx.sleep(timedelta(hours=hours))
    return await note(label)


async def test_timers_of_several_runs_fire_in_due_order(env: TestEnv):
    late = await env.start(staggered, "late", 48, id="late")
    early = await env.start(staggered, "early", 2, id="early")
    middle = await env.start(staggered, "middle", 24, id="middle")
    await env.result(late)
    assert await early.result() and await middle.result()
    assert log == ["early", "middle", "late"]


@durable.workflow(name="testing.fan-out")
async def fan_out(ctx: durable.Context) -> list[str]:
    async def after(label: str, minutes: int) -> str:
        await ctx.sleep(timedelta(minutes=minutes))
        return await note(label)

    return await ctx.gather(after("c", 90), after("a", 10), after("b", 45))


async def test_timers_of_one_run_fire_in_due_order(env: TestEnv):
    assert await env.run(fan_out) == ["c", "a", "b"]
    assert log == ["a", "b", "c"]


@durable.workflow(name="testing.approval")
async def approval(ctx: durable.Context, days: int) -> str:
    try:
        answer = await ctx.wait_signal("approve", timeout=timedelta(days=days))
    except durable.WaitTimeout:
        return "expired"
    return f"approved by {answer['by']}"


async def test_a_signal_wait_times_out_in_virtual_time(env: TestEnv):
    started = env.now()
    assert await env.run(approval, 3) == "expired"
    assert env.now() - started >= timedelta(days=3)


async def test_a_signal_before_the_timeout_wins(env: TestEnv):
    handle = await env.start(approval, 3)
    await env.sleep(timedelta(days=2))
    assert (await handle.describe()).status is durable.Status.WAITING
    await env.signal(handle, "approve", {"by": "ann"})
    assert await handle.result() == "approved by ann"
    assert env.now() - (await handle.describe()).created_at < timedelta(days=3)


async def test_env_sleep_moves_the_clock_exactly(env: TestEnv):
    handle = await env.start(month)
    await env.sleep(timedelta(days=29, hours=23))
    assert (await handle.describe()).status is durable.Status.WAITING
    await env.sleep(timedelta(hours=2))
    assert (await handle.describe()).status is durable.Status.COMPLETED


async def test_waiting_for_a_signal_nobody_sends_times_out_with_advice(env: TestEnv):
    handle = await env.start(approval_forever)
    with pytest.raises(TimeoutError, match="signal"):
        await env.result(handle, timeout=0.5)


@durable.workflow(name="testing.approval-forever")
async def approval_forever(ctx: durable.Context) -> Any:
    return await ctx.wait_signal("approve")


# -- retries --------------------------------------------------------------------------
HOURLY = durable.RetryPolicy(
    max_attempts=4, initial_interval=timedelta(hours=1), max_interval=timedelta(days=1)
)
SHORT = durable.RetryPolicy(max_attempts=3, initial_interval=20)


@durable.activity(name="testing.flaky", retry=HOURLY)
async def flaky(label: str) -> str:
    raise ConnectionError("the real one is never called in these tests")


@durable.workflow(name="testing.retrying")
async def retrying(ctx: durable.Context, label: str) -> str:
    return await flaky(label)


@durable.workflow(name="testing.retrying-short")
async def retrying_short(ctx: durable.Context, label: str) -> str:
    return await ctx.run(flaky, label, retry=SHORT)


def fail_until(attempt: int) -> Any:
    def mock(label: str) -> str:
        now = durable.activity_info().attempt
        if now < attempt:
            raise ConnectionError(f"attempt {now} failed")
        return f"{label} on {now}"

    return mock


async def test_long_backoffs_are_skipped_and_counted(env: TestEnv):
    mocked = env.mock_activity(flaky, fail_until(4))
    started = env.now()
    assert await env.run(retrying, "x", id="retrying") == "x on 4"
    assert len(mocked.calls) == 4
    # 1 h, 2 h, 4 h of backoff: the run was suspended between attempts
    assert env.now() - started >= timedelta(hours=7)
    history = await env.handle("retrying").history()
    due = [e.payload["at"] for e in history if e.event == "retry"]
    assert [round(b - a) for a, b in itertools.pairwise(due)] == [7200, 14400]


async def test_short_backoffs_stay_in_memory_and_are_skipped(env: TestEnv):
    env.mock_activity("testing.flaky", fail_until(3))
    started = env.now()
    assert await env.run(retrying_short, "y") == "y on 3"
    assert env.now() - started >= timedelta(seconds=60)  # 20 s, then 40 s


async def test_retries_run_out(env: TestEnv):
    env.mock_activity(flaky, ConnectionError("down"))
    with pytest.raises(durable.WorkflowFailed, match="ConnectionError"):
        await env.run(retrying, "z")


# -- execution timeouts ---------------------------------------------------------------
@durable.workflow(name="testing.overdue", execution_timeout=timedelta(days=1))
async def overdue(ctx: durable.Context) -> str:
    await ctx.sleep(timedelta(days=2))
    return "never"


@durable.workflow(name="testing.overdue-busy", execution_timeout=timedelta(minutes=2))
async def overdue_busy(ctx: durable.Context) -> str:
    return await ctx.run(
        flaky, "w", retry=durable.RetryPolicy(max_attempts=100, initial_interval=10)
    )


async def test_execution_timeout_while_sleeping(env: TestEnv):
    with pytest.raises(durable.WorkflowFailed, match="WorkflowTimeout"):
        await env.run(overdue)


async def test_execution_timeout_while_retrying_in_memory(env: TestEnv):
    mocked = env.mock_activity(flaky, ConnectionError("down"))
    started = env.now()
    with pytest.raises(durable.WorkflowFailed, match="WorkflowTimeout"):
        await env.run(overdue_busy)
    assert timedelta(minutes=2) <= env.now() - started < timedelta(minutes=3)
    assert 2 <= len(mocked.calls) <= 13


# -- mocks ----------------------------------------------------------------------------
@durable.activity(name="testing.charge")
async def charge(order_id: str, cents: int) -> dict[str, Any]:
    raise AssertionError("the mock replaces the real call")


@durable.workflow(name="testing.order")
async def order(ctx: durable.Context, order_id: str) -> str:
    receipt = await charge(order_id, 1250)
    return f"{order_id}: {receipt['id']}"


async def test_a_mocked_activity_decides_the_outcome(env: TestEnv):
    mocked = env.mock_activity(charge, lambda order_id, cents: {"id": f"ch-{cents}"})
    assert await env.run(order, "o-1") == "o-1: ch-1250"
    assert mocked.calls == [(("o-1", 1250), {})]


async def test_a_mock_value_and_an_async_mock(env: TestEnv):
    env.mock_activity("testing.charge", {"id": "fixed"})
    assert await env.run(order, "o-2") == "o-2: fixed"

    async def later(order_id: str, cents: int) -> dict[str, Any]:
        return {"id": order_id.upper()}

    env.mock_activity(charge, later)
    assert await env.run(order, "o-3") == "o-3: O-3"


async def test_a_mock_raising_fails_like_the_activity(env: TestEnv):
    env.mock_activity(charge, durable.NonRetryableError("card declined"))
    with pytest.raises(durable.WorkflowFailed, match="card declined"):
        await env.run(order, "o-4")


async def test_a_virtual_clock_needs_sqlite() -> None:
    from durable._clock import VirtualClock

    with pytest.raises(durable.ConfigurationError, match="SQLite"):
        durable.App("postgresql://nobody@127.0.0.1:1/none", clock=VirtualClock())


async def test_start_in_the_future() -> None:
    begin = datetime(2100, 1, 1, tzinfo=UTC)
    async with TestEnv(start=begin) as env:
        assert env.now() >= begin
        assert await env.run(month) >= 30 * 86400
        assert env.now() >= begin + timedelta(days=30)
    with pytest.raises(durable.ConfigurationError, match="past"):
        TestEnv(start=datetime(2000, 1, 1, tzinfo=UTC))


# -- children, cancellation, continue-as-new ---------------------------------------------
@durable.workflow(name="testing.parent")
async def parent(ctx: durable.Context) -> list[float]:
    first = ctx.start_child(month, id="child-a")
    second = ctx.start_child(month, id="child-b")
    return await ctx.gather(first, second)


async def test_children_sleep_in_virtual_time_too(env: TestEnv):
    started = env.now()
    assert await env.run(parent) == [pytest.approx(30 * 86400, abs=5)] * 2
    assert timedelta(days=30) <= env.now() - started < timedelta(days=31)


async def test_a_sleeping_run_is_cancelled(env: TestEnv):
    handle = await env.start(month)
    await env.sleep(timedelta(days=1))
    await handle.cancel()
    with pytest.raises(durable.WorkflowFailed, match="CANCELLED|cancelled"):
        await handle.result()


@durable.workflow(name="testing.ticker")
async def ticker(ctx: durable.Context, left: int, seen: int = 0) -> int:
    await ctx.sleep(timedelta(days=1))
    if left > 1:
        ctx.continue_as_new(left - 1, seen + 1)
    return seen + 1


async def test_continue_as_new_keeps_the_virtual_clock(env: TestEnv):
    started = env.now()
    assert await env.run(ticker, 5) == 5
    assert timedelta(days=5) <= env.now() - started < timedelta(days=6)


async def test_waiting_for_several_results_at_once_keeps_the_order(env: TestEnv):
    handles = [await env.start(staggered, label, hours) for label, hours in
               (("third", 30), ("first", 10), ("second", 20))]  # fmt: skip
    await asyncio.gather(*(handle.result() for handle in handles))
    assert log == ["first", "second", "third"]
