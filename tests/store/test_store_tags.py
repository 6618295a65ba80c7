"""Store contract: run tags, run queries with a page position, and bulk cancel in batches."""

from __future__ import annotations

import pytest

from durable.info import Status
from durable.store import RunQuery, Store

pytestmark = pytest.mark.anyio


async def test_create_run_stores_tags_and_queries_find_them(store: Store) -> None:
    run, created = await store.create_run("r1", "wf", "[]", tags=[("a", "1"), ("b", "2")])
    assert created and run.tags == {"a": "1", "b": "2"}
    await store.create_run("r2", "wf", "[]", tags=[("a", "2")])
    await store.create_run("r3", "wf", "[]")
    _, again = await store.create_run("r1", "wf", "[]", tags=[("a", "9")])
    assert not again
    found = await store.get_run("r1")
    assert found is not None and found.tags == {"a": "1", "b": "2"}
    by_tag = await store.list_runs(query=RunQuery(tags=(("a", "1"),)), limit=10)
    assert [r.id for r in by_tag] == ["r1"]
    assert {r.id for r in await store.list_runs(limit=10)} == {"r1", "r2", "r3"}


async def test_list_runs_pages_by_created_at_and_id(store: Store) -> None:
    for i in range(5):
        await store.create_run(f"r{i}", "wf", "[]", tags=[("k", "v")])
    query = RunQuery(tags=(("k", "v"),))
    first = await store.list_runs(query=query, limit=2)
    rest = await store.list_runs(query=query, limit=10, before=(first[-1].created_at, first[-1].id))
    ids = [r.id for r in [*first, *rest]]
    assert sorted(ids) == [f"r{i}" for i in range(5)] and len(set(ids)) == 5


async def test_bulk_cancel_works_in_batches_and_only_on_matching_open_runs(store: Store) -> None:
    for i in range(5):
        await store.create_run(f"x{i}", "wf", "[]", tags=[("t", "x")])
    await store.create_run("y", "wf", "[]", tags=[("t", "y")])
    query = RunQuery(tags=(("t", "x"),))
    assert await store.bulk_cancel(query, dry_run=True) == 5
    assert await store.bulk_cancel(query, batch=2) == 5
    for i in range(5):
        run = await store.get_run(f"x{i}")
        assert run is not None and run.status is Status.CANCELLED and run.cancel_requested
    other = await store.get_run("y")
    assert other is not None and other.status is Status.PENDING
    assert await store.bulk_cancel(query) == 0
