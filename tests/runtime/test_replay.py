"""Replay: recorded results come back without re-running anything, in the same order."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import pytest

import durable

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    calls.clear()


calls: Counter[str] = Counter()


@durable.activity
async def count_call(label: str, delay: float = 0.0) -> str:
    calls[label] += 1
    await asyncio.sleep(delay)
    return f"{label}-done"


@durable.activity
def sync_none(label: str) -> None:
    calls[label] += 1


@durable.workflow(name="replay-basic")
async def replay_basic(ctx: durable.Context, prefix: str) -> dict[str, object]:
    first = await count_call(f"{prefix}-a")
    nothing = await ctx.run(sync_none, f"{prefix}-none")
    when, rnd, uid = ctx.now(), ctx.random(), ctx.uuid4()
    await ctx.wait_signal("go")  # the run is unloaded here, replayed on the signal
    second = await count_call(f"{prefix}-b")
    return {
        "first": first,
        "nothing": nothing,
        "second": second,
        "when": when.isoformat(),
        "random": rnd,
        "uuid": str(uid),
        "same_now": ctx.now() >= when,
    }


async def test_replay_returns_recorded_results_without_rerunning(app, wait_status):
    async with app.worker():
        handle = await app.start(replay_basic, "rb", id="rb")
        await wait_status(handle, durable.Status.WAITING)
        history_before = await handle.history()
        await handle.signal("go")
        result = await handle.result(timeout=10)
    assert calls["rb-a"] == 1 and calls["rb-none"] == 1 and calls["rb-b"] == 1
    assert result["first"] == "rb-a-done" and result["nothing"] is None
    assert result["second"] == "rb-b-done"
    recorded = {e.kind: e.payload for e in history_before if e.kind in ("now", "random", "uuid4")}
    # now/random/uuid4 returned on replay are the recorded values, not fresh ones
    assert dt.datetime.fromisoformat(recorded["now"]) == dt.datetime.fromisoformat(result["when"])
    assert recorded["random"] == result["random"]
    assert recorded["uuid4"] == result["uuid"]


async def test_none_result_is_a_record_not_a_missing_one(app, wait_status):
    async with app.worker():
        handle = await app.start(replay_basic, "rn", id="rn")
        await wait_status(handle, durable.Status.WAITING)
        await handle.signal("go")
        await handle.result(timeout=10)
    history = await handle.history()
    none_entry = next(e for e in history if e.name.endswith("sync_none"))
    assert none_entry.event == "result" and none_entry.payload is None
    assert calls["rn-none"] == 1


@durable.workflow(name="replay-gather")
async def replay_gather(ctx: durable.Context) -> list[str]:
    # the first call finishes last: results must still come back in argument order
    results = await ctx.gather(
        count_call("g-slow", 0.3), count_call("g-mid", 0.15), count_call("g-fast", 0.0)
    )
    branch_results = await ctx.gather(_branch(ctx, "x", 0.2), _branch(ctx, "y", 0.0))
    await ctx.wait_signal("go")
    again = await ctx.gather(count_call("g-after-1"), count_call("g-after-2"))
    return [*results, *branch_results, *again]


async def _branch(ctx: durable.Context, name: str, delay: float) -> str:
    one = await count_call(f"branch-{name}-1", delay)
    two = await count_call(f"branch-{name}-2")
    return f"{one}+{two}"


async def test_gather_keeps_argument_order_across_replay(app, wait_status):
    async with app.worker():
        handle = await app.start(replay_gather, id="gather")
        await wait_status(handle, durable.Status.WAITING)
        await handle.signal("go")
        result = await handle.result(timeout=10)
    assert result == [
        "g-slow-done",
        "g-mid-done",
        "g-fast-done",
        "branch-x-1-done+branch-x-2-done",
        "branch-y-1-done+branch-y-2-done",
        "g-after-1-done",
        "g-after-2-done",
    ]
    for label in ("g-slow", "g-mid", "g-fast", "branch-x-1", "branch-x-2", "branch-y-2"):
        assert calls[label] == 1, label
    history = await handle.history()
    completions = [e.name for e in history if e.kind == "activity"]
    # completion order differs from call order, and replay still matched every record
    assert len(completions) == 9


@durable.workflow(name="replay-failing-activity")
async def replay_failing(ctx: durable.Context) -> str:
    try:
        await ctx.run(always_fails, retry=durable.RetryPolicy(max_attempts=2, initial_interval=0))
    except durable.ActivityError as exc:
        caught = f"{exc.error_type}:{exc.error_message}:{exc.attempts}"
    await ctx.wait_signal("go")
    return caught


@durable.activity
def always_fails() -> None:
    calls["always_fails"] += 1
    raise ValueError("boom")


async def test_activity_failure_is_recorded_and_replayed_identically(app, wait_status):
    async with app.worker():
        handle = await app.start(replay_failing, id="fails")
        await wait_status(handle, durable.Status.WAITING)
        await handle.signal("go")
        assert await handle.result(timeout=10) == "ValueError:boom:2"
    assert calls["always_fails"] == 2
