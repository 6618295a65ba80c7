"""The Store contract: leases, fencing, wake-ups and migrations.

Written against the Store protocol only, so every backend runs the same checks.
"""

from __future__ import annotations

import time

import anyio
import pytest

import durable
from durable.store import (
    Commit,
    Fence,
    Finish,
    JournalEntry,
    Release,
    Store,
    Suspend,
    open_store,
)

pytestmark = pytest.mark.anyio


def entry(pos: int, seq: int, payload: str = "1") -> JournalEntry:
    return JournalEntry(pos, seq, "result", "activity", "a", None, payload, time.time())


async def test_create_is_idempotent(store: Store):
    _, created = await store.create_run("r1", "wf", "{}")
    again, created_again = await store.create_run("r1", "other", '{"x":1}')
    assert created and not created_again
    assert again.workflow == "wf" and again.args == "{}" and again.status is durable.Status.PENDING


async def test_claim_leases_and_bumps_epoch(store: Store):
    await store.create_run("r1", "wf", "{}")
    [claimed] = await store.claim("w1", 10, 30)
    assert claimed.status is durable.Status.RUNNING and claimed.epoch == 1
    assert await store.claim("w2", 10, 30) == []  # held: nobody else gets it


async def test_expired_lease_is_claimed_again_and_fences_the_old_holder(store: Store):
    await store.create_run("r1", "wf", "{}")
    [old] = await store.claim("w1", 10, 0.05)
    await store.commit(Commit(Fence("r1", old.epoch), [entry(0, 1)]))
    await anyio.sleep(0.1)
    [new] = await store.claim("w2", 10, 30)
    assert new.epoch == old.epoch + 1
    # the paused first worker wakes up and tries to write: refused, nothing written
    with pytest.raises(durable.LeaseLostError, match="r1"):
        await store.commit(Commit(Fence("r1", old.epoch), [entry(1, 2)]))
    assert [e.pos for e in await store.read_journal("r1")] == [0]
    assert await store.renew("w1", [Fence("r1", old.epoch)], 30) == {}
    state = await store.renew("w2", [Fence("r1", new.epoch)], 30)
    assert set(state) == {"r1"}
    await store.commit(Commit(Fence("r1", new.epoch), [entry(1, 2)]))
    assert [e.pos for e in await store.read_journal("r1")] == [0, 1]


async def test_renewal_keeps_the_lease(store: Store):
    await store.create_run("r1", "wf", "{}")
    [run] = await store.claim("w1", 10, 0.2)
    for _ in range(4):
        await anyio.sleep(0.1)
        assert "r1" in await store.renew("w1", [Fence("r1", run.epoch)], 0.2)
    assert await store.claim("w2", 10, 30) == []


async def test_an_expired_lease_cannot_be_renewed_even_if_nobody_took_it(store: Store):
    # Otherwise a paused worker would come back and run beside the one a queue's global
    # limit let start meanwhile: it must stop and let the run go through a claim again.
    await store.create_run("r1", "wf", "{}")
    [run] = await store.claim("w1", 10, 0.05)
    await anyio.sleep(0.1)
    assert await store.renew("w1", [Fence("r1", run.epoch)], 30) == {}
    [again] = await store.claim("w1", 10, 30)
    assert again.epoch == run.epoch + 1


async def test_suspend_wakes_at_timer_or_on_awaited_signal_only(store: Store):
    await store.create_run("r1", "wf", "{}")
    [run] = await store.claim("w1", 10, 30)
    fence = Fence("r1", run.epoch)
    await store.commit(
        Commit(fence, outcome=Suspend(time.time() + 3600, ("approve",), run.mailbox_version))
    )
    assert (await store.get_run("r1")).status is durable.Status.WAITING
    assert await store.claim("w1", 10, 30) == []
    await store.send_signal("r1", "unrelated", "1")  # buffered, wakes nothing
    assert await store.claim("w1", 10, 30) == []
    await store.send_signal("r1", "approve", '"yes"')
    [woken] = await store.claim("w1", 10, 30)
    signals = await store.pending_signals("r1", 0)
    assert [(s.name, s.payload) for s in signals] == [("unrelated", "1"), ("approve", '"yes"')]
    # consuming the signal is part of the journal commit
    await store.commit(
        Commit(Fence("r1", woken.epoch), [entry(0, 1)], consumed_signals=[(signals[1].id, 1)])
    )
    assert [s.name for s in await store.pending_signals("r1", 0)] == ["unrelated"]


async def test_signal_arriving_before_suspend_is_not_lost(store: Store):
    await store.create_run("r1", "wf", "{}")
    [run] = await store.claim("w1", 10, 30)
    await store.send_signal("r1", "go", "null")  # arrives while the worker still runs it
    await store.commit(
        Commit(Fence("r1", run.epoch), outcome=Suspend(None, ("go",), run.mailbox_version))
    )
    assert [r.id for r in await store.claim("w1", 10, 30)] == ["r1"]


async def test_due_timer_makes_run_claimable(store: Store):
    await store.create_run("r1", "wf", "{}")
    [run] = await store.claim("w1", 10, 30)
    wake = time.time() + 0.1
    await store.commit(
        Commit(Fence("r1", run.epoch), outcome=Suspend(wake, (), run.mailbox_version))
    )
    assert await store.next_wake_at() == pytest.approx(wake)
    assert await store.claim("w1", 10, 30) == []
    await anyio.sleep(0.15)
    assert [r.id for r in await store.claim("w1", 10, 30)] == ["r1"]


async def test_finish_release_and_closed_runs(store: Store):
    await store.create_run("r1", "wf", "{}")
    [run] = await store.claim("w1", 10, 30)
    await store.commit(Commit(Fence("r1", run.epoch), outcome=Release()))
    [again] = await store.claim("w2", 10, 30)
    await store.commit(
        Commit(Fence("r1", again.epoch), outcome=Finish(durable.Status.COMPLETED, result="42"))
    )
    done = await store.get_run("r1")
    assert done.status is durable.Status.COMPLETED and done.result == "42"
    with pytest.raises(durable.RunClosedError):
        await store.send_signal("r1", "x", "1")
    assert await store.claim("w1", 10, 30) == []
    with pytest.raises(durable.RunNotFoundError):
        await store.send_signal("nope", "x", "1")


async def test_claim_respects_limit_and_order(store: Store):
    for n in range(5):
        await store.create_run(f"r{n}", "wf", "{}")
    first = await store.claim("w1", 2, 30)
    second = await store.claim("w2", 10, 30)
    assert sorted(r.id for r in first) == ["r0", "r1"]
    assert sorted(r.id for r in second) == ["r2", "r3", "r4"]


async def test_reopening_applies_no_migration_twice(dsn: str):
    for _ in range(3):
        s = open_store(dsn)
        await s.open()
        await s.create_run(f"r{time.time()}", "wf", "{}")
        await s.close()
    s = open_store(dsn)
    await s.open()
    assert len(await s.list_runs(status=None, workflow=None, limit=10)) == 3
    await s.close()
