"""Worker liveness locks (``WorkerStore.liveness_lock``) and taking over a dead worker."""

from __future__ import annotations

import sqlite3
import time

import asyncpg
import pytest

from durable.store import Fence, QueueClaim, Store, WorkerInfo
from durable.store.postgres import parse_dsn

pytestmark = pytest.mark.anyio


def info(worker_id: str) -> WorkerInfo:
    return WorkerInfo(id=worker_id, host="box", pid=1, queues=("default",), version="1")


def nothing() -> None:
    return None


async def register_as_an_old_version(dsn: str, worker_id: str) -> None:
    """The row a version without liveness locks writes: it knows no holds_lock column."""
    now = time.time()
    sql = (
        "INSERT INTO workers (id, host, pid, queues, version, workflows, stale_after,"
        f" started_at, heartbeat_at) VALUES ('{worker_id}', 'box', 1, '[\"default\"]', '0.9',"
        f" '{{}}', 60, {now}, {now})"
    )
    if dsn.startswith("sqlite"):
        lite = sqlite3.connect(dsn.removeprefix("sqlite:///"), isolation_level=None)
        try:
            lite.execute(sql)
        finally:
            lite.close()
        return
    plain, schema = parse_dsn(dsn)
    pg = await asyncpg.connect(plain, server_settings={"search_path": schema})
    try:
        await pg.execute(sql)
    finally:
        await pg.close()


async def test_a_held_lock_is_not_dead_and_a_released_one_is(store: Store):
    mine, peer = store.liveness_lock("w-1"), store.liveness_lock("w-2")
    assert await mine.acquire(nothing) and await peer.acquire(nothing)
    await store.register_worker(info("w-1"))
    await store.register_worker(info("w-2"))
    assert mine.held()
    assert await peer.dead_peers() == []
    await mine.release()
    assert not mine.held()
    assert await peer.dead_peers() == ["w-1"]
    await peer.release()


async def test_a_second_holder_of_the_same_worker_id_is_refused(store: Store):
    first, second = store.liveness_lock("w-1"), store.liveness_lock("w-1")
    assert await first.acquire(nothing)
    assert await second.acquire(nothing) is False
    await first.release()
    assert await second.acquire(nothing)
    await second.release()


async def test_a_row_without_a_lock_reads_as_dead(store: Store):
    peer = store.liveness_lock("w-2")
    assert await peer.acquire(nothing)
    await store.register_worker(info("w-1"))  # registered, but holding no lock
    assert await peer.dead_peers() == ["w-1"]
    await peer.release()


async def test_take_over_frees_the_dead_workers_runs_ahead_of_runs_not_started(store: Store):
    await store.create_run("older", "wf", "[]")
    await store.create_run("held", "wf", "[]")
    dead = store.liveness_lock("dead")
    assert await dead.acquire(nothing)
    await store.register_worker(info("dead"))
    [older] = await store.claim("dead", 1, 60.0, [QueueClaim("default", 1, False)])
    assert older.id == "older"
    await store.create_run("newer", "wf", "[]")
    [held] = await store.claim("dead", 1, 60.0, [QueueClaim("default", 1, False)])
    assert held.id == "held"
    await store.create_run("pending", "wf", "[]")

    live = store.liveness_lock("live")
    assert await live.acquire(nothing)
    await store.register_worker(info("live"))
    assert await store.take_over(["dead"]) == {}  # its lock is held: left alone
    fences = [Fence(r.id, r.epoch) for r in (older, held)]
    assert set(await store.renew("dead", fences, 60.0)) == {"older", "held"}
    await dead.release()
    assert await live.dead_peers() == ["dead"]
    assert await store.take_over(["dead"]) == {"dead": 2}
    assert await store.take_over(["dead"]) == {}  # once
    assert [w.id for w in await store.list_workers()] == ["live"]
    # the runs taken over go ahead of runs created before them that never started
    got = await store.claim("live", 2, 60.0, [QueueClaim("default", 2, False)])
    assert sorted(r.id for r in got) == ["held", "older"]
    assert all(r.epoch == 2 for r in got)
    assert await store.renew("dead", fences, 60.0) == {}  # the dead worker's leases are gone
    await live.release()


async def test_a_worker_of_a_version_without_liveness_locks_is_left_to_its_leases(
    store: Store, dsn: str
):
    await store.create_run("old-run", "wf", "[]")
    await register_as_an_old_version(dsn, "old")  # no lock, ever: it never took one
    [old_run] = await store.claim("old", 1, 60.0, [QueueClaim("default", 1, False)])
    await store.create_run("new-run", "wf", "[]")
    dead = store.liveness_lock("dead")
    assert await dead.acquire(nothing)
    await store.register_worker(info("dead"))
    [new_run] = await store.claim("dead", 1, 60.0, [QueueClaim("default", 1, False)])
    assert (old_run.id, new_run.id) == ("old-run", "new-run")
    await dead.release()  # the new version's worker died; the old one lives

    live = store.liveness_lock("live")
    assert await live.acquire(nothing)
    await store.register_worker(info("live"))
    assert await live.dead_peers() == ["dead"]
    assert await store.take_over(["old", "dead"]) == {"dead": 1}
    assert sorted(w.id for w in await store.list_workers()) == ["live", "old"]
    # the old worker keeps its run until its lease expires, as that version expects
    got = await store.claim("live", 2, 60.0, [QueueClaim("default", 2, False)])
    assert [r.id for r in got] == ["new-run"]
    assert set(await store.renew("old", [Fence(old_run.id, old_run.epoch)], 60.0)) == {"old-run"}
    await live.release()
