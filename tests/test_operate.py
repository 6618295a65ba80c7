"""Operating runs: tags, filters, pages by cursor and bulk cancel, on both stores."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

import durable

pytestmark = pytest.mark.anyio

bodies: Counter[str] = Counter()


@durable.activity
async def op_note(label: str) -> str:
    bodies[label] += 1
    return label


@durable.workflow(name="op-tagger")
async def tagger(ctx: durable.Context, label: str) -> str:
    ctx.set_tags({"stage": "started", "label": label})
    await op_note(f"{label}-a")
    await ctx.sleep(0.2)  # suspends: the rest runs after a replay of the journal
    ctx.set_tags({"stage": "done", "extra": "yes"})
    await op_note(f"{label}-b")
    return label


@durable.workflow(name="op-quick")
async def quick(ctx: durable.Context, label: str) -> str:
    return label


@durable.workflow(name="op-waiter")
async def waiter(ctx: durable.Context) -> str:
    return str(await ctx.wait_signal("go"))


async def test_tags_round_trip_through_start_and_describe(app):
    h = await app.start(quick, "x", id="t1", tags={"tenant": "acme", "region": "eu-1"})
    assert (await h.describe()).tags == {"tenant": "acme", "region": "eu-1"}
    again = await app.start(quick, "x", id="t1", tags={"tenant": "other"})  # idempotent
    assert (await again.describe()).tags == {"tenant": "acme", "region": "eu-1"}
    plain = await app.start(quick, "y", id="t2")
    assert (await plain.describe()).tags == {}


async def test_set_tags_is_journaled_and_survives_replay(app, wait_status):
    bodies.clear()
    async with app.worker():
        h = await app.start(tagger, "r", id="tagged-run", tags={"tenant": "acme"})
        assert await h.result(timeout=15) == "r"
    desc = await h.describe()
    assert desc.tags == {"tenant": "acme", "stage": "done", "label": "r", "extra": "yes"}
    assert bodies == {"r-a": 1, "r-b": 1}  # the replay ran no activity again
    kinds = [e.kind for e in await h.history() if e.kind == "tags"]
    assert len(kinds) == 2  # each set_tags journaled once, not again on replay


@durable.workflow(name="op-tag-then-wait")
async def tag_then_wait(ctx: durable.Context) -> str:
    ctx.set_tags({"stage": "waiting"})
    got = str(await ctx.wait_signal("go"))  # suspends; the signal's delivery replays
    ctx.set_tags({"stage": got})
    return got


async def test_set_tags_before_a_wait_replays_after_the_signal(app, wait_status):
    async with app.worker():
        h = await app.start(tag_then_wait, id="tag-wait")
        desc = await wait_status(h, durable.Status.WAITING)
        while desc.tags != {"stage": "waiting"}:
            desc = await h.describe()
        await h.signal("go", "done")
        assert await h.result(timeout=15) == "done"
    assert (await h.describe()).tags == {"stage": "done"}


async def test_invalid_tags_are_refused_naming_the_run_and_key(app):
    with pytest.raises(durable.InvalidInputError, match="'bad key'.*'r-bad'|'r-bad'.*'bad key'"):
        await app.start(quick, "x", id="r-bad", tags={"bad key": "v"})
    with pytest.raises(durable.InvalidInputError, match="'k'.*256"):
        await app.start(quick, "x", id="r-long", tags={"k": "v" * 257})
    with pytest.raises(durable.InvalidInputError, match="at most 32"):
        await app.start(quick, "x", id="r-many", tags={f"k{i}": "v" for i in range(33)})
    with pytest.raises(durable.InvalidInputError, match="string value"):
        await app.start(quick, "x", id="r-int", tags={"k": 1})
    assert await app.list_runs() == []  # nothing was stored


async def test_list_runs_by_tag_returns_exactly_the_tagged_runs(app):
    for i in range(5):
        await app.start(quick, str(i), id=f"a{i}", tags={"tenant": "acme", "n": str(i % 2)})
        await app.start(quick, str(i), id=f"b{i}", tags={"tenant": "beta"})
    page = await app.list_runs(durable.RunFilter(tags={"tenant": "acme"}))
    assert isinstance(page, durable.RunPage)
    assert {r.run_id for r in page.runs} == {f"a{i}" for i in range(5)}
    assert page.next_cursor is None
    both = await app.list_runs(durable.RunFilter(tags={"tenant": "acme", "n": "1"}))
    assert {r.run_id for r in both.runs} == {"a1", "a3"}
    other = await app.list_runs(durable.RunFilter(workflow="op-quick", tags={"tenant": "zeta"}))
    assert other.runs == []
    future = datetime.now(UTC) + timedelta(hours=1)
    assert (await app.list_runs(durable.RunFilter(created_after=future))).runs == []
    earlier = await app.list_runs(durable.RunFilter(created_before=future, queue="default"))
    assert len(earlier.runs) == 10
    assert [r.run_id for r in await app.list_runs(workflow="op-quick", limit=3)] == [
        r.run_id for r in earlier.runs[:3]
    ]  # the keyword form still answers a list, in the same order


async def test_pages_by_cursor_have_no_duplicates_or_gaps_while_runs_are_created(app):
    for i in range(7):
        await app.start(quick, str(i), id=f"p{i}", tags={"batch": "b1"})
    flt = durable.RunFilter(tags={"batch": "b1"})
    seen: list[str] = []
    page = await app.list_runs(flt, limit=3)
    n = 0
    while True:
        seen += [r.run_id for r in page.runs]
        await app.start(quick, "new", id=f"new{n}", tags={"batch": "b1"})  # newer: not in pages
        n += 1
        if page.next_cursor is None:
            break
        page = await app.list_runs(flt, limit=3, cursor=page.next_cursor)
    assert sorted(seen) == sorted(f"p{i}" for i in range(7))
    assert len(seen) == len(set(seen))
    with pytest.raises(durable.InvalidInputError, match="cursor"):
        await app.list_runs(flt, cursor="not-a-cursor")


async def test_bulk_cancel_by_tag_cancels_exactly_the_tagged_open_runs(app, wait_status):
    flt = durable.RunFilter(tags={"batch": "stop"})
    async with app.worker():
        tagged = [await app.start(waiter, id=f"s{i}", tags={"batch": "stop"}) for i in range(4)]
        others = [await app.start(waiter, id=f"o{i}", tags={"batch": "keep"}) for i in range(3)]
        for h in [*tagged, *others]:
            await wait_status(h, durable.Status.WAITING)
        done = await app.start(quick, "z", id="finished", tags={"batch": "stop"})
        await done.result(timeout=15)
        assert await app.bulk("cancel", flt, dry_run=True) == 4
        assert {(await h.describe()).status for h in tagged} == {durable.Status.WAITING}
        assert await app.bulk("cancel", flt) == 4
        for h in tagged:
            await wait_status(h, durable.Status.CANCELLED)
        assert await app.bulk("cancel", flt) == 0  # nothing left to change
        for h in others:
            await h.signal("go", "ok")
            assert await h.result(timeout=15) == "ok"
    assert (await done.describe()).status is durable.Status.COMPLETED


async def test_bulk_cancel_ends_runs_that_never_started_at_once(app):
    runs = [await app.start(quick, "x", id=f"n{i}", tags={"t": "x"}) for i in range(3)]
    left = await app.start(quick, "x", id="left")
    flt = durable.RunFilter(status="PENDING", tags={"t": "x"})
    assert await app.bulk("cancel", flt) == 3
    assert {(await h.describe()).status for h in runs} == {durable.Status.CANCELLED}
    assert (await left.describe()).status is durable.Status.PENDING


async def test_bulk_refuses_actions_that_do_not_exist(app):
    with pytest.raises(ValueError, match="supported: 'cancel', 'pause', 'resume', 'retry'"):
        await app.bulk("archive", durable.RunFilter())


@durable.workflow(name="op-parent")
async def parent(ctx: durable.Context) -> str:
    child = ctx.child(waiter, id=f"{ctx.info.run_id}-child")
    return await child


async def test_bulk_cancel_cancels_the_children_of_the_runs_it_cancels(app, wait_status):
    async with app.worker():
        parents = [await app.start(parent, id=f"par{i}", tags={"t": "fam"}) for i in range(2)]
        for h in parents:
            await wait_status(h, durable.Status.WAITING)  # its child exists from then on
        children = [app.handle(f"par{i}-child") for i in range(2)]
        for h in children:
            await wait_status(h, durable.Status.WAITING)
        assert await app.bulk("cancel", durable.RunFilter(tags={"t": "fam"})) == 2
        for h in [*parents, *children]:
            await wait_status(h, durable.Status.CANCELLED)
