"""Worker liveness locks (``WorkerStore.liveness_lock``) and taking over a dead worker."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest

from durable.store import Fence, QueueClaim, Store, WorkerInfo
from durable.store._sqlite_workers import lock_path
from durable.store.postgres import parse_dsn

pytestmark = pytest.mark.anyio
sqlite_only = pytest.mark.parametrize("dsn", ["sqlite"], indirect=True)


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


def lock_file(dsn: str, worker_id: str) -> str:
    return lock_path(dsn.removeprefix("sqlite:///"), worker_id)


def on_disk(path: str) -> bool:
    return os.path.exists(path)


@sqlite_only
async def test_a_clean_stop_removes_the_lock_file_and_the_folder_left_empty(store: Store, dsn):
    lock = store.liveness_lock("w-1")
    assert await lock.acquire(nothing)
    path = lock_file(dsn, "w-1")
    assert on_disk(path)
    await lock.release()
    assert not on_disk(path)
    assert not on_disk(os.path.dirname(path))
    assert await lock.acquire(nothing)  # the folder is made again
    assert on_disk(path)
    await lock.release()


@sqlite_only
async def test_a_clean_stop_leaves_a_live_peers_lock_file_held(store: Store, dsn):
    first, second = store.liveness_lock("w-1"), store.liveness_lock("w-2")
    assert await first.acquire(nothing) and await second.acquire(nothing)
    await store.register_worker(info("w-1"))
    await store.register_worker(info("w-2"))
    await store.unregister_worker("w-1")  # a clean stop, as the worker does it
    await first.release()
    folder = os.path.dirname(lock_file(dsn, "w-2"))
    assert os.listdir(folder) == [os.path.basename(lock_file(dsn, "w-2"))]
    probe = store.liveness_lock("w-3")
    assert await probe.acquire(nothing)
    assert await probe.dead_peers() == []  # w-2 is still seen live
    assert await store.liveness_lock("w-2").acquire(nothing) is False
    assert await store.take_over(["w-2"]) == {}
    await probe.release()
    await second.release()
    assert not on_disk(folder)


@sqlite_only
async def test_workers_starting_and_stopping_at_once_each_hold_a_lock_file(store: Store, dsn):
    # one worker's stop removes the folder it finds empty while another makes its file
    def churn(worker_id: str) -> None:
        async def rounds() -> None:
            lock, path = store.liveness_lock(worker_id), lock_file(dsn, worker_id)
            for _ in range(1000):
                assert await lock.acquire(nothing)
                assert on_disk(path)
                await lock.release()

        asyncio.run(rounds())

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(churn, f"w-{n}") for n in range(2)]:
            done.result()
    assert not on_disk(os.path.dirname(lock_file(dsn, "w-0")))


@sqlite_only
async def test_a_lock_file_removed_before_it_is_locked_is_made_again(
    store: Store, dsn, monkeypatch: pytest.MonkeyPatch
):
    # a worker stopping (or a takeover) removes the file after a starting worker of the
    # same id opened it and before it locks it: a lock on the removed file tells nobody
    path, real, locked = lock_file(dsn, "w-1"), fcntl.flock, []

    def flock(fd: int, operation: int) -> None:
        if not locked:
            os.unlink(path)
        locked.append(fd)
        real(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    lock = store.liveness_lock("w-1")
    assert await lock.acquire(nothing)
    monkeypatch.undo()
    assert len(locked) == 2 and on_disk(path)
    await store.register_worker(info("w-1"))
    peer = store.liveness_lock("w-2")
    assert await peer.acquire(nothing)
    assert await peer.dead_peers() == []
    await peer.release()
    await lock.release()
