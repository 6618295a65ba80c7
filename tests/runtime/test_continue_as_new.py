"""continue_as_new: a fresh journal for the same run id keeps endless loops bounded."""

from __future__ import annotations

import pytest

import durable

pytestmark = pytest.mark.anyio


@durable.workflow(name="can-counter")
async def counter(ctx: durable.Context, n: int, limit: int) -> dict[str, int]:
    ctx.random()  # every iteration journals something
    if n >= limit:
        return {"n": n, "journal": ctx.info.attempt}
    ctx.continue_as_new(n + 1, limit)


async def test_10000_iterations_keep_the_journal_bounded(app):
    async with app.worker():
        handle = await app.start(counter, 0, 10_000, id="loop")
        result = await handle.result(timeout=110)
    assert result["n"] == 10_000
    history = await handle.history()
    assert len(history) == 1 and history[0].kind == "random"  # only the last iteration's


@durable.workflow(name="can-collects")
async def collects(ctx: durable.Context, seen: list[str]) -> list[str]:
    if len(seen) == 3:
        return seen
    seen = [*seen, await ctx.wait_signal("item")]
    ctx.continue_as_new(seen)


async def test_unconsumed_signals_carry_over_in_order(app, wait_status):
    handle = await app.start(collects, [], id="collector")
    for item in ("a", "b", "c"):
        await handle.signal("item", item)
    async with app.worker():
        assert await handle.result(timeout=10) == ["a", "b", "c"]
    assert len(await handle.history()) == 0  # the last iteration only returned
