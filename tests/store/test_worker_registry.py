"""The worker registry (``WorkerStore``): register, heartbeat, list with liveness, unregister."""

from __future__ import annotations

import anyio
import pytest

from durable.store import Store, WorkerInfo

pytestmark = pytest.mark.anyio


def info(worker_id: str = "w-1", *, stale_after: float = 30.0) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id,
        host="box",
        pid=4242,
        queues=("default", "mail"),
        version="1.2.3",
        workflows={"expense": (("claim_id", "POSITIONAL_OR_KEYWORD"), ("amount", "KEYWORD_ONLY"))},
        flows=True,
        stale_after=stale_after,
    )


async def test_a_registered_worker_is_listed_live_with_what_it_knows(store: Store):
    await store.register_worker(info())
    [worker] = await store.list_workers()
    assert worker.id == "w-1" and worker.host == "box" and worker.pid == 4242
    assert worker.queues == ("default", "mail") and worker.version == "1.2.3"
    assert worker.workflows == {
        "expense": (("claim_id", "POSITIONAL_OR_KEYWORD"), ("amount", "KEYWORD_ONLY"))
    }
    assert worker.flows is True and worker.live is True
    assert worker.started_at == worker.heartbeat_at


async def test_a_worker_without_heartbeats_goes_stale_and_a_heartbeat_revives_it(store: Store):
    await store.register_worker(info(stale_after=0.2))
    await anyio.sleep(0.4)
    [worker] = await store.list_workers()
    assert worker.live is False
    assert await store.heartbeat_worker("w-1") is True
    [worker] = await store.list_workers()
    assert worker.live is True and worker.heartbeat_at > worker.started_at


async def test_registering_again_replaces_the_row(store: Store):
    await store.register_worker(info())
    await store.register_worker(WorkerInfo("w-1", "other", 7, ("q",), "2", stale_after=5))
    [worker] = await store.list_workers()
    assert (worker.host, worker.pid, worker.queues, worker.workflows) == ("other", 7, ("q",), {})


async def test_unregister_removes_only_that_worker_and_a_heartbeat_then_says_so(store: Store):
    await store.register_worker(info("w-1"))
    await store.register_worker(info("w-2"))
    await store.unregister_worker("w-1")
    await store.unregister_worker("w-1")  # twice: no error
    assert [w.id for w in await store.list_workers()] == ["w-2"]
    assert await store.heartbeat_worker("w-1") is False
