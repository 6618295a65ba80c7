"""Retention: App.prune by hand, and the background sweep of App(retention=), on both stores."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import anyio
import pytest

import durable
from durable.worker._retention_loop import LEASE, retention_loop

pytestmark = pytest.mark.anyio


@durable.activity
async def ret_step(label: str) -> str:
    return label


@durable.workflow(name="ret-done")
async def done(ctx: durable.Context, label: str) -> str:
    ctx.set_event("seen", label)
    return await ret_step(label)


@durable.workflow(name="ret-boom")
async def boom(ctx: durable.Context) -> str:
    raise RuntimeError("boom")


@durable.workflow(name="ret-parent")
async def parent(ctx: durable.Context) -> str:
    first = await ctx.child(done, "kid")
    return str(first) + str(await ctx.wait_signal("go"))


@durable.workflow(name="ret-waits")
async def waits(ctx: durable.Context) -> str:
    return str(await ctx.wait_signal("go"))


async def test_prune_deletes_finished_runs_only_and_everything_they_own(app, wait_status):
    async with app.worker():
        ok = await app.start(done, "a", id="r-ok", tags={"batch": "1"})
        bad = await app.start(boom, id="r-bad")
        open_ = await app.start(waits, id="r-open", tags={"batch": "1"})
        assert await ok.result(timeout=15) == "a"
        with pytest.raises(durable.WorkflowFailed):
            await bad.result(timeout=15)
        await wait_status(open_, durable.Status.WAITING)
    assert await app.prune(timedelta(hours=1)) == 0  # both ended moments ago
    assert await app.prune(timedelta(0), dry_run=True) == 2
    assert await app.prune(timedelta(0), status="FAILED") == 1
    assert await app.prune(timedelta(0), status=["COMPLETED", "FAILED"]) == 1
    for gone in (ok, bad):
        with pytest.raises(durable.RunNotFoundError):
            await gone.describe()
    assert await app.store.read_journal("r-ok") == []
    assert await app.store.get_event("r-ok", "seen") is None
    page = await app.list_runs(durable.RunFilter(tags={"batch": "1"}))
    assert [r.run_id for r in page.runs] == ["r-open"]
    assert (await open_.describe()).status is durable.Status.WAITING


async def test_prune_keeps_a_finished_child_while_its_parent_is_open(app, wait_status):
    async with app.worker():
        h = await app.start(parent, id="p")
        await wait_status(h, durable.Status.WAITING)
        [kid] = (await h.describe()).children
        await wait_status(app.handle(kid), durable.Status.COMPLETED)
        assert await app.prune(timedelta(0)) == 0
        await h.signal("go", "!")
        assert await h.result(timeout=15) == "kid!"
    assert await app.prune(timedelta(0)) == 2


async def test_prune_rejects_open_statuses_and_bad_ages(app):
    with pytest.raises(durable.InvalidInputError, match="WAITING"):
        await app.prune(timedelta(days=1), status=durable.Status.WAITING)
    with pytest.raises(durable.InvalidInputError, match="'NOPE'"):
        await app.prune(timedelta(days=1), status="NOPE")
    with pytest.raises(durable.InvalidInputError, match="negative"):
        await app.prune(timedelta(days=-1))
    with pytest.raises(durable.InvalidInputError, match="timedelta"):
        await app.prune(30)  # type: ignore[arg-type]
    with pytest.raises(durable.InvalidInputError, match="retention"):
        durable.App("sqlite:///x.db", retention=timedelta(seconds=-1))


async def test_workers_of_an_app_with_retention_prune_in_the_background(dsn):
    async with durable.App(dsn) as first, first.worker():
        h = await first.start(done, "x", id="old")
        assert await h.result(timeout=15) == "x"
    await anyio.sleep(0.3)
    async with durable.App(dsn, retention=timedelta(seconds=0.2)) as app:
        kept = await app.start(waits, id="kept")
        async with app.worker():
            with anyio.fail_after(10):
                while await app.store.get_run("old") is not None:
                    await anyio.sleep(0.05)
        assert (await kept.describe()).status is durable.Status.WAITING
        # the sweep gave its lease up when the worker stopped: another may take it now
        assert await app.store.take_lease(LEASE, "someone-else", 30)


async def test_only_the_lease_holder_sweeps(app):
    for i in range(3):
        await app.start(done, str(i), id=f"q{i}")
    assert await app.store.take_lease(LEASE, "holder", 30)
    loop = asyncio.create_task(retention_loop(app.store, "other", 0, interval=0.05))
    await anyio.sleep(0.3)
    assert not loop.done()
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    async with app.worker():
        for i in range(3):
            await app.handle(f"q{i}").result(timeout=15)
    assert await app.store.prune_runs(0, dry_run=True) == 3  # nobody swept meanwhile
    await app.store.drop_lease(LEASE, "holder")
    loop = asyncio.create_task(retention_loop(app.store, "other", 0, interval=0.05))
    with anyio.fail_after(10):
        while await app.store.prune_runs(0, dry_run=True):
            await anyio.sleep(0.05)
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)


async def test_prune_never_takes_a_paused_run(app, wait_status):
    async with app.worker():
        h = await app.start(waits, id="paused-one")
        await wait_status(h, durable.Status.WAITING)
        await h.pause("hold on")
        await wait_status(h, durable.Status.PAUSED)
        assert await app.prune(timedelta(0), dry_run=True) == 0
        assert await app.prune(timedelta(0)) == 0
    assert (await h.describe()).status is durable.Status.PAUSED
