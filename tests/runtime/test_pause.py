"""Pause and resume: by hand, by a retry policy, one run and many, on both stores."""

from __future__ import annotations

import asyncio
from collections import Counter

import anyio
import pytest

import durable

pytestmark = pytest.mark.anyio

calls: Counter[str] = Counter()
gate = {"open": asyncio.Event(), "entered": asyncio.Event()}
fixed = {"ok": False}


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    gate["open"], gate["entered"] = asyncio.Event(), asyncio.Event()
    fixed["ok"] = False


@durable.activity
async def pa_step(label: str) -> str:
    calls[label] += 1
    return label


@durable.activity
async def pa_slow(label: str) -> str:
    calls[label] += 1
    gate["entered"].set()
    await gate["open"].wait()
    return label


@durable.workflow(name="pa-three")
async def three(ctx: durable.Context) -> list[str]:
    return [await pa_slow("a"), await pa_step("b"), await pa_step("c")]


@durable.workflow(name="pa-timer-signal")
async def timer_then_signal(ctx: durable.Context) -> list[str]:
    out = [await pa_step("first")]
    await ctx.sleep(2.2)  # longer than a worker keeps a sleeping run loaded: it suspends
    out.append(await pa_step("after-timer"))
    out.append(str(await ctx.wait_signal("go")))
    out.append(await pa_step("after-signal"))
    return out


@durable.workflow(name="pa-waiter")
async def waiter(ctx: durable.Context) -> str:
    got = str(await ctx.wait_signal("go"))
    await pa_step(f"got-{got}")
    return got


PAUSE_AFTER_TWO = durable.RetryPolicy(max_attempts=2, initial_interval=0.01, on_exhausted="pause")


@durable.activity(retry=PAUSE_AFTER_TWO)
async def pa_flaky(label: str) -> str:
    calls[label] += 1
    if not fixed["ok"]:
        raise ConnectionError(f"{label}: the card service is down")
    return label


@durable.workflow(name="pa-flaky")
async def flaky(ctx: durable.Context) -> list[str]:
    return [await pa_step("before"), await pa_flaky("charge"), await pa_step("after")]


async def wait_for(
    handle: durable.Handle[object], status: durable.Status
) -> durable.RunDescription:
    with anyio.fail_after(15):
        while (desc := await handle.describe()).status is not status:
            await anyio.sleep(0.02)
    return desc


async def test_pause_lets_the_activity_in_flight_finish_and_starts_nothing_after_it(app):
    async with app.worker():
        h = await app.start(three, id="p-flight")
        await gate["entered"].wait()
        await h.pause("checking the ledger")
        gate["open"].set()
        desc = await wait_for(h, durable.Status.PAUSED)
        assert desc.paused_reason == "checking the ledger"
        await anyio.sleep(0.3)
        assert calls == {"a": 1}  # "a" finished; "b" never started
        results = [e for e in await h.history() if e.event == "result"]
        assert [e.payload for e in results] == ["a"]  # and "a" is journaled
        await h.pause("again")  # a no-op: the first reason stays
        assert (await h.describe()).paused_reason == "checking the ledger"
        await h.resume()
        assert await h.result(timeout=15) == ["a", "b", "c"]
    assert calls == {"a": 1, "b": 1, "c": 1}
    assert (await h.describe()).paused_reason is None


async def test_a_due_timer_and_a_signal_during_the_pause_take_effect_after_resume(app):
    async with app.worker():
        h = await app.start(timer_then_signal, id="p-timer")
        await wait_for(h, durable.Status.WAITING)  # sleeping
        await h.pause()
        assert (await h.describe()).status is durable.Status.PAUSED
        await h.signal("go", "green")  # a signal arrives while paused
        await anyio.sleep(2.5)  # and the timer falls due
        desc = await h.describe()
        assert desc.status is durable.Status.PAUSED
        assert desc.paused_reason == "paused by an operator"
        assert calls == {"first": 1}  # neither woke the run
        await h.resume()
        assert await h.result(timeout=15) == ["first", "after-timer", "green", "after-signal"]
    assert calls == {"first": 1, "after-timer": 1, "after-signal": 1}


async def test_a_run_paused_before_it_started_starts_on_resume(app):
    h = await app.start(waiter, id="p-pending")
    await h.pause()
    assert (await h.describe()).status is durable.Status.PAUSED
    async with app.worker():
        await h.signal("go", "x")
        await anyio.sleep(0.3)
        assert (await h.describe()).status is durable.Status.PAUSED
        await h.resume()
        assert await h.result(timeout=15) == "x"
    assert calls == {"got-x": 1}


async def test_pause_and_resume_of_an_ended_run_are_refused(app):
    async with app.worker():
        h = await app.start(three, id="p-done")
        gate["open"].set()
        await h.result(timeout=15)
    with pytest.raises(durable.RunClosedError, match="cannot be paused"):
        await h.pause()
    with pytest.raises(durable.RunClosedError, match="cannot be resumed"):
        await h.resume()
    with pytest.raises(durable.RunNotFoundError):
        await app.handle("nope").pause()


async def test_resume_of_a_run_that_is_not_paused_changes_nothing(app):
    h = await app.start(waiter, id="p-noop")
    await h.resume()
    assert (await h.describe()).status is durable.Status.PENDING


async def test_cancel_works_on_a_paused_run(app):
    async with app.worker():
        h = await app.start(waiter, id="p-cancel")
        await wait_for(h, durable.Status.WAITING)
        await h.pause()
        await wait_for(h, durable.Status.PAUSED)
        await h.cancel()
        await wait_for(h, durable.Status.CANCELLED)
    never = await app.start(waiter, id="p-cancel-unstarted")
    await never.pause()
    await never.cancel()
    assert (await never.describe()).status is durable.Status.CANCELLED


async def test_on_exhausted_pause_then_a_fix_then_resume_completes_the_run(app):
    async with app.worker():
        h = await app.start(flaky, id="p-flaky")
        desc = await wait_for(h, durable.Status.PAUSED)
        assert desc.paused_reason is not None
        assert "'pa_flaky' failed 2 time(s)" in desc.paused_reason
        assert "ConnectionError: charge: the card service is down" in desc.paused_reason
        assert calls == {"before": 1, "charge": 2}
        fixed["ok"] = True  # the fix is deployed
        await h.resume()
        assert await h.result(timeout=15) == ["before", "charge", "after"]
    assert calls == {"before": 1, "charge": 3, "after": 1}


async def test_on_exhausted_pause_gives_a_fresh_budget_of_attempts(app):
    async with app.worker():
        h = await app.start(flaky, id="p-budget")
        await wait_for(h, durable.Status.PAUSED)
        await h.resume()  # not fixed yet: two more attempts, then paused again
        with anyio.fail_after(15):
            while calls["charge"] < 4:
                await anyio.sleep(0.02)
        await wait_for(h, durable.Status.PAUSED)
        assert calls["charge"] == 4


async def test_bulk_pause_and_resume_by_tag(app):
    async with app.worker():
        tagged = [await app.start(waiter, id=f"bp{i}", tags={"wave": "1"}) for i in range(3)]
        other = await app.start(waiter, id="bp-other", tags={"wave": "2"})
        for h in [*tagged, other]:
            await wait_for(h, durable.Status.WAITING)
        flt = durable.RunFilter(tags={"wave": "1"})
        assert await app.bulk("pause", flt, dry_run=True) == 3
        assert await app.bulk("pause", flt) == 3
        assert await app.bulk("pause", flt) == 0  # paused already
        paused = durable.RunFilter(status="PAUSED")
        assert sorted(r.run_id for r in (await app.list_runs(paused)).runs) == [
            "bp0",
            "bp1",
            "bp2",
        ]
        for h in [*tagged, other]:
            await h.signal("go", h.run_id)
        assert await other.result(timeout=15) == "bp-other"
        assert (await tagged[0].describe()).status is durable.Status.PAUSED
        assert await app.bulk("resume", flt) == 3
        for h in tagged:
            assert await h.result(timeout=15) == h.run_id
