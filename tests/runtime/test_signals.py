"""Signals: buffered before the wait, consumed in order, races journaled."""

from __future__ import annotations

from collections import Counter

import pytest

import durable

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    calls.clear()


calls: Counter[str] = Counter()


@durable.activity
async def note(label: str) -> str:
    calls[label] += 1
    return label


@durable.workflow(name="signals-collect")
async def collect(ctx: durable.Context, count: int) -> list[object]:
    await note("collect-start")
    received = []
    for _ in range(count):
        received.append(await ctx.wait_signal("item"))
    return received


async def test_signals_sent_before_the_wait_are_buffered_in_order(app):
    handle = await app.start(collect, 3, id="buffered")
    for n in range(3):  # no worker yet: the run has not even started
        await handle.signal("item", {"n": n})
    async with app.worker():
        assert await handle.result(timeout=10) == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_signals_to_a_waiting_run_wake_it(app, wait_status):
    async with app.worker():
        handle = await app.start(collect, 2, id="waking")
        await wait_status(handle, durable.Status.WAITING)
        await handle.signal("item", "a")
        await handle.signal("item", "b")
        assert await handle.result(timeout=10) == ["a", "b"]


@durable.workflow(name="signals-timeout")
async def approval(ctx: durable.Context, wait: float) -> str:
    try:
        decision = await ctx.wait_signal("approve", timeout=wait)
    except durable.WaitTimeout:
        decision = "timed out"
    await ctx.wait_signal("finish")
    await note(f"after-{decision}")
    return str(decision)


async def test_wait_timeout_takes_the_journaled_branch_on_replay(app, wait_status):
    async with app.worker():
        handle = await app.start(approval, 0.2, id="to-1")
        history = []
        # wait until the timeout fired and was journaled, then the run parks on "finish"
        while not any(e.event == "error" for e in history):
            await wait_status(handle, durable.Status.WAITING)
            history = await handle.history()
        # a late approval must not change the branch already taken
        await handle.signal("approve", "yes")
        await handle.signal("finish")
        assert await handle.result(timeout=10) == "timed out"
    assert calls["after-timed out"] == 1 and calls["after-yes"] == 0


async def test_signal_wins_the_race_before_the_timeout(app, wait_status):
    async with app.worker():
        handle = await app.start(approval, 30, id="to-2")
        await wait_status(handle, durable.Status.WAITING)
        await handle.signal("approve", "yes")
        await handle.signal("finish")
        assert await handle.result(timeout=10) == "yes"


async def test_signal_to_finished_run_is_refused(app):
    async with app.worker():
        handle = await app.start(collect, 0, id="closed")
        await handle.result(timeout=10)
    with pytest.raises(durable.RunClosedError, match="closed.*COMPLETED"):
        await handle.signal("item", 1)


async def test_signal_to_unknown_run_is_refused(app):
    with pytest.raises(durable.RunNotFoundError, match="nope"):
        await app.handle("nope").signal("item", 1)


async def test_unstorable_signal_payload(app):
    handle = await app.start(collect, 1, id="payload")
    with pytest.raises(durable.SerializationError, match="signal 'item'"):
        await handle.signal("item", object())
