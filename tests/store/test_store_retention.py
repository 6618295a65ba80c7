"""Store contract: pruning finished runs with everything they own, and named leases."""

from __future__ import annotations

import time

import anyio
import pytest

import durable
from durable.info import Status
from durable.store import ChildStart, Commit, Fence, Finish, JournalEntry, Store

pytestmark = pytest.mark.anyio


def entry(pos: int, seq: int) -> JournalEntry:
    return JournalEntry(pos, seq, "result", "activity", "a", None, "1", time.time())


async def finish(store: Store, run_id: str, status: Status = Status.COMPLETED, **links) -> None:
    """Claim ``run_id`` (it must be the only runnable run) and end it with a journal row."""
    [run] = await store.claim("w", 1, 30)
    assert run.id == run_id
    await store.commit(
        Commit(Fence(run_id, run.epoch), [entry(0, 1)], outcome=Finish(status, "1"), **links)
    )


async def owned_rows(store: Store, run_id: str) -> dict[str, object]:
    return {
        "run": await store.get_run(run_id),
        "journal": await store.read_journal(run_id),
        "event": await store.get_event(run_id, "k"),
        "job": await store.get_job(durable._wire.job_id_for(run_id, 1)),
    }


async def test_prune_deletes_finished_runs_and_every_row_they_own(store: Store) -> None:
    await store.create_run("done", "wf", "[]", tags=[("t", "1")])
    await store.send_signal("done", "s", "1")
    await store.enqueue_job("done", 1, "step", "job", "{}", 0)
    await finish(store, "done", events=[("k", '"v"')])
    await store.create_run("open", "wf", "[]", tags=[("t", "1")])
    before = await owned_rows(store, "done")
    assert all(value for value in before.values())  # the rows exist before the prune

    assert await store.prune_runs(0, dry_run=True) == 1
    assert await store.prune_runs(0) == 1
    after = await owned_rows(store, "done")
    assert after == {"run": None, "journal": [], "event": None, "job": None}
    assert [
        r.id
        for r in await store.list_runs(query=durable.store.RunQuery(tags=(("t", "1"),)), limit=9)
    ] == ["open"]
    # the signal went with the run: a new run of that id starts with an empty mailbox
    await store.create_run("done", "wf", "[]")
    assert await store.pending_signals("done", 0) == []
    assert await store.get_run("open") is not None


async def test_prune_keeps_runs_younger_than_the_age_and_takes_only_given_statuses(
    store: Store,
) -> None:
    await store.create_run("ok", "wf", "[]")
    await finish(store, "ok")
    await store.create_run("bad", "wf", "[]")
    await finish(store, "bad", Status.FAILED)
    assert await store.prune_runs(3600) == 0
    assert await store.prune_runs(0, statuses=[Status.FAILED]) == 1
    assert await store.get_run("bad") is None and await store.get_run("ok") is not None
    with pytest.raises(durable.InvalidInputError, match="RUNNING"):
        await store.prune_runs(0, statuses=[Status.RUNNING])
    with pytest.raises(durable.InvalidInputError, match="PAUSED"):
        await store.prune_runs(0, statuses=[Status.PAUSED])
    with pytest.raises(durable.InvalidInputError, match="negative"):
        await store.prune_runs(-1)


async def test_prune_never_takes_a_child_of_an_open_parent_nor_a_parent_of_an_open_child(
    store: Store,
) -> None:
    await store.create_run("parent", "wf", "[]")
    [parent] = await store.claim("w", 1, 30)
    children = [ChildStart("kid-done", "wf", "[]"), ChildStart("kid-open", "wf", "[]")]
    await store.commit(Commit(Fence("parent", parent.epoch), [entry(0, 1)], children=children))
    [kid] = await store.claim("w", 1, 30)
    await store.commit(
        Commit(Fence(kid.id, kid.epoch), outcome=Finish(Status.COMPLETED, "1"), parent_id="parent")
    )
    assert await store.prune_runs(0) == 0  # the finished child's parent is open
    await store.commit(Commit(Fence("parent", parent.epoch), outcome=Finish(Status.COMPLETED, "1")))
    # the parent ended, yet one of its children is open: the tree stays whole
    assert await store.prune_runs(0, dry_run=True) == 1
    assert await store.prune_runs(0) == 1
    assert await store.get_run("parent") is not None
    [other] = await store.claim("w", 1, 30)
    await store.commit(Commit(Fence(other.id, other.epoch), outcome=Finish(Status.CANCELLED)))
    assert await store.prune_runs(0) == 2
    assert [await store.get_run(r) for r in ("parent", "kid-done", "kid-open")] == [None] * 3


async def test_prune_works_in_batches_reports_progress_and_stops_at_max_runs(store: Store) -> None:
    for i in range(7):
        await store.create_run(f"r{i}", "wf", "[]")
        await finish(store, f"r{i}")
    seen: list[int] = []
    assert await store.prune_runs(0, batch=2, max_runs=5, progress=seen.append) == 5
    assert seen == [2, 4, 5]
    left = await store.list_runs(limit=10)
    assert sorted(r.id for r in left) == ["r5", "r6"]  # oldest first
    assert await store.prune_runs(0, batch=2) == 2


async def test_a_lease_has_one_holder_until_it_expires_or_is_dropped(store: Store) -> None:
    assert await store.take_lease("sweep", "a", 30)
    assert not await store.take_lease("sweep", "b", 30)
    assert await store.take_lease("sweep", "a", 0.05)  # its holder renews it
    await anyio.sleep(0.1)
    assert await store.take_lease("sweep", "b", 30)  # expired: anyone takes it
    await store.drop_lease("sweep", "a")  # not a's any more: nothing happens
    assert not await store.take_lease("sweep", "a", 30)
    await store.drop_lease("sweep", "b")
    assert await store.take_lease("sweep", "a", 30)
