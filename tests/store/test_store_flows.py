"""The Store contract of JSON flows: definitions, run fields, deduplicated signals, jobs.

Written against the Store protocol only, so every backend runs the same checks.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator

import anyio
import pytest

import durable
from durable._wire import job_id_for, job_signal_name
from durable.store import (
    Commit,
    Fence,
    Finish,
    JobAnswer,
    Store,
    Suspend,
    open_store,
)
from durable.store._notify import JOBS, run_topic

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def more_stores(dsn: str, count: int) -> AsyncIterator[list[Store]]:
    """Stores of their own on the same database: other connections, as other processes."""
    stores = [open_store(dsn) for _ in range(count)]
    for s in stores:
        await s.open()
    try:
        yield stores
    finally:
        for s in stores:
            await s.close()


async def waiting_run(store: Store, run_id: str, *signals: str) -> None:
    """A run suspended until one of ``signals`` arrives."""
    await store.create_run(run_id, "LOS::loan", "{}")
    [run] = await store.claim("executor", 10, 30)
    await store.commit(
        Commit(Fence(run_id, run.epoch), outcome=Suspend(None, signals, run.mailbox_version))
    )


async def enqueue(store: Store, run_id: str, *seqs: int, job_type: str = "score", retries: int = 0):
    jobs = []
    for seq in seqs:
        jobs.append(
            await store.enqueue_job(run_id, seq, f"step-{seq}", job_type, '{"n": 1}', retries)
        )
        await anyio.sleep(0.002)  # distinct creation times: "oldest first" is well defined
    return jobs


# -- definitions --------------------------------------------------------------------------
async def test_definition_versions_increment(store: Store):
    document = '{ "id": "LOS::loan",  "name": "Loan ü" }'  # stored as given, spaces and all
    first = await store.put_definition("LOS::loan", "Loan", document)
    second = await store.put_definition("LOS::loan", "Loan v2", '{"v": 2}')
    other = await store.put_definition("LOS::other", "Other", "{}")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.document == document and first.uploaded_at == pytest.approx(time.time(), abs=60)
    assert await store.get_definition("LOS::loan") == second
    assert await store.get_definition("LOS::loan", None) == second
    assert await store.get_definition("LOS::loan", 1) == first
    assert await store.get_definition("LOS::loan", 3) is None
    assert await store.get_definition("nope") is None


async def test_list_definitions_latest_by_id_with_keyword_paging_and_total(store: Store):
    await store.put_definition("D::delta", "Loan Delta", "{}")
    await store.put_definition("A::alpha", "Alpha", "{}")
    await store.put_definition("A::alpha", "Renamed", "{}")
    await store.put_definition("C::gamma", "Gamma", "{}")
    await store.put_definition("B::beta", "Beta Flow", "{}")

    items, total = await store.list_definitions()
    assert [(d.id, d.version, d.name) for d in items] == [
        ("A::alpha", 2, "Renamed"),
        ("B::beta", 1, "Beta Flow"),
        ("C::gamma", 1, "Gamma"),
        ("D::delta", 1, "Loan Delta"),
    ]
    assert total == 4

    async def ids(keyword: str | None, offset: int = 0, limit: int = 20):
        items, total = await store.list_definitions(keyword=keyword, offset=offset, limit=limit)
        return [d.id for d in items], total

    assert await ids("BETA") == (["B::beta"], 1)  # id or name, any case
    assert await ids("loan") == (["D::delta"], 1)  # by name only
    assert await ids("renamed") == (["A::alpha"], 1)  # the latest version's name
    assert await ids("a::") == (["A::alpha"], 1)
    assert await ids("%") == ([], 0)  # no pattern characters: a plain substring
    assert await ids("") == (["A::alpha", "B::beta", "C::gamma", "D::delta"], 4)
    assert await ids(None, 0, 2) == (["A::alpha", "B::beta"], 4)
    assert await ids(None, 2, 2) == (["C::gamma", "D::delta"], 4)
    assert await ids(None, 10, 2) == ([], 4)  # past the end: still the total
    assert await ids("TA", 1, 1) == (["D::delta"], 2)  # beta, delta: the second page


async def test_concurrent_uploads_of_one_id_get_consecutive_versions(dsn: str):
    async with more_stores(dsn, 4) as stores:
        records = []

        async def upload(s: Store, n: int) -> None:
            records.append(await s.put_definition("LOS::race", f"upload {n}", f'{{"n": {n}}}'))

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(upload, stores[n % 4], n)
        assert sorted(r.version for r in records) == list(range(1, 21))
        latest = await stores[0].get_definition("LOS::race")
        assert latest == max(records, key=lambda r: r.version)


# -- runs and signals ---------------------------------------------------------------------
async def test_business_key_and_flow_version_are_stored_and_filtered(store: Store):
    first, _ = await store.create_run("r1", "LOS::loan", "{}", business_key="APP-1", flow_version=2)
    await store.create_run("r2", "LOS::loan", "{}", business_key="APP-2", flow_version=1)
    await store.create_run("r3", "LOS::other", "{}", business_key="APP-1")
    plain, _ = await store.create_run("r4", "wf", "{}")
    assert (first.business_key, first.flow_version) == ("APP-1", 2)
    assert (plain.business_key, plain.flow_version) == (None, None)
    got = await store.get_run("r1")
    assert got is not None and (got.business_key, got.flow_version) == ("APP-1", 2)

    async def listed(**filters):
        runs = await store.list_runs(limit=10, **{"status": None, "workflow": None, **filters})
        return sorted(r.id for r in runs)

    assert await listed(business_key="APP-1") == ["r1", "r3"]
    assert await listed(business_key="APP-1", workflow="LOS::loan") == ["r1"]
    assert await listed(business_key="APP-1", status=durable.Status.PENDING) == ["r1", "r3"]
    assert await listed(business_key="nope") == []
    assert await listed() == ["r1", "r2", "r3", "r4"]


async def test_a_repeated_dedupe_key_stores_and_wakes_nothing(store: Store):
    await waiting_run(store, "r1", "task")
    assert await store.send_signal("r1", "task", '"first"', dedupe_key="task#1") is True
    before = await store.get_run("r1")
    assert await store.send_signal("r1", "task", '"again"', dedupe_key="task#1") is False
    after = await store.get_run("r1")
    assert after is not None and before is not None
    assert after.mailbox_version == before.mailbox_version
    assert await store.send_signal("r1", "task", '"other key"', dedupe_key="task#2") is True
    assert await store.send_signal("r1", "x", "1") is True  # no key: never deduplicated
    assert await store.send_signal("r1", "x", "1") is True
    pending = await store.pending_signals("r1", 0)
    assert [(s.name, s.payload) for s in pending] == [
        ("task", '"first"'),
        ("task", '"other key"'),
        ("x", "1"),
        ("x", "1"),
    ]
    # the same key on another run is another signal
    await store.create_run("r2", "wf", "{}")
    assert await store.send_signal("r2", "task", "1", dedupe_key="task#1") is True


async def test_a_repeat_after_the_run_ended_is_still_a_no_op(store: Store):
    await store.create_run("r1", "wf", "{}")
    [run] = await store.claim("w", 10, 30)
    assert await store.send_signal("r1", "task", "1", dedupe_key="k") is True
    await store.commit(Commit(Fence("r1", run.epoch), outcome=Finish(durable.Status.COMPLETED)))
    assert await store.send_signal("r1", "task", "1", dedupe_key="k") is False
    with pytest.raises(durable.RunClosedError):
        await store.send_signal("r1", "task", "1", dedupe_key="new")
    with pytest.raises(durable.RunClosedError):
        await store.send_signal("r1", "task", "1")
    with pytest.raises(durable.RunNotFoundError):
        await store.send_signal("nope", "task", "1", dedupe_key="k")


# -- jobs ---------------------------------------------------------------------------------
async def test_enqueue_is_idempotent(store: Store):
    await store.create_run("r1", "wf", "{}")
    job = await store.enqueue_job("r1", 3, "score-step", "score", '{"a": 1}', 2)
    assert job.id == job_id_for("r1", 3) == job_id_for("r1", 3)
    assert job_id_for("r1", 3) != job_id_for("r1", 4)
    assert (job.run_id, job.seq, job.step_id, job.job_type) == ("r1", 3, "score-step", "score")
    assert (job.status, job.attempt, job.retries_remaining) == ("QUEUED", 1, 2)
    assert (job.worker_id, job.lock_expires_at, job.error, job.variables) == (
        None,
        None,
        None,
        '{"a": 1}',
    )
    again = await store.enqueue_job("r1", 3, "other", "other", '{"b": 2}', 9)  # a replay
    assert again == job
    assert await store.get_job(job.id) == job
    assert await store.get_job("nope") is None


async def test_poll_takes_oldest_jobs_of_the_types_asked_up_to_the_limit(store: Store):
    await store.create_run("r1", "wf", "{}")
    a1, a2, a3 = await enqueue(store, "r1", 1, 2, 3, job_type="a")
    [b4] = await enqueue(store, "r1", 4, job_type="b")
    assert await store.poll_jobs("w1", ["c"], 10, 30) == []
    assert await store.poll_jobs("w1", [], 10, 30) == []
    first = await store.poll_jobs("w1", ["a"], 2, 30)
    assert [j.id for j in first] == [a1.id, a2.id]
    for job in first:
        assert (job.status, job.worker_id) == ("RUNNING", "w1")
        assert job.lock_expires_at == pytest.approx(time.time() + 30, abs=5)
    rest = await store.poll_jobs("w2", ["b", "a"], 10, 30)
    assert [j.id for j in rest] == [a3.id, b4.id]
    assert await store.poll_jobs("w3", ["a", "b"], 10, 30) == []  # leases still held


async def test_concurrent_pollers_never_get_the_same_job(dsn: str, store: Store):
    await store.create_run("r1", "wf", "{}")
    for seq in range(40):
        await store.enqueue_job("r1", seq, "s", "t", "{}", 0)
    claimed: list[str] = []
    async with more_stores(dsn, 4) as pollers:
        while True:
            got: list[list[str]] = []

            async def poll(s: Store, worker: str, into: list[list[str]]) -> None:
                into.append([j.id for j in await s.poll_jobs(worker, ["t"], 3, 30)])

            async with anyio.create_task_group() as tg:
                for n, s in enumerate(pollers):
                    tg.start_soon(poll, s, f"w{n}", got)
            if not any(got):
                break
            claimed += [job_id for batch in got for job_id in batch]
    assert len(claimed) == len(set(claimed)) == 40


async def test_an_expired_lease_returns_the_job_and_fences_the_late_worker(store: Store):
    await waiting_run(store, "r1", job_signal_name(1))
    [job] = await enqueue(store, "r1", 1)
    await store.poll_jobs("w1", ["score"], 1, 0.05)
    await anyio.sleep(0.1)
    [again] = await store.poll_jobs("w2", ["score"], 1, 30)
    assert again.id == job.id and again.worker_id == "w2" and again.attempt == 1
    # the first worker wakes up and reports: refused, nothing changes
    assert await store.complete_job(job.id, "w1", '{"late": true}') is JobAnswer.CONFLICT
    assert await store.fail_job(job.id, "w1", retryable=True, message="x") is JobAnswer.CONFLICT
    assert await store.get_job(job.id) == again
    assert await store.pending_signals("r1", 0) == []
    assert await store.complete_job(job.id, "w2", "{}") is JobAnswer.DONE


async def test_the_holder_may_complete_past_its_lease_if_nobody_took_the_job(store: Store):
    await waiting_run(store, "r1", job_signal_name(1))
    [job] = await enqueue(store, "r1", 1)
    await store.poll_jobs("w1", ["score"], 1, 0.05)
    await anyio.sleep(0.1)
    assert await store.complete_job(job.id, "w1", "{}") is JobAnswer.DONE


async def test_complete_signals_the_run_and_makes_it_runnable(store: Store):
    await waiting_run(store, "r1", job_signal_name(1))
    [job] = await enqueue(store, "r1", 1)
    assert await store.claim("executor", 10, 30) == []
    await store.poll_jobs("w1", ["score"], 1, 30)
    with store.subscribe(run_topic("r1")) as changed:
        answer = await store.complete_job(job.id, "w1", '{"score": 720, "tags": ["a"]}')
        assert answer is JobAnswer.DONE
        assert await changed.wait(5)
    [signal] = await store.pending_signals("r1", 0)
    assert signal.name == job_signal_name(1) == "durable.job#1"
    assert json.loads(signal.payload) == {
        "ok": True,
        "variables": {"score": 720, "tags": ["a"]},
        "attempt": 1,
        "workerId": "w1",
    }
    done = await store.get_job(job.id)
    assert done is not None and (done.status, done.worker_id) == ("COMPLETED", "w1")
    assert [r.id for r in await store.claim("executor", 10, 30)] == ["r1"]
    # repeats and strangers change nothing
    assert await store.complete_job(job.id, "w1", '{"score": 1}') is JobAnswer.ALREADY
    assert await store.complete_job(job.id, "w2", "{}") is JobAnswer.CONFLICT
    assert await store.fail_job(job.id, "w1", retryable=False, message="x") is JobAnswer.CONFLICT
    assert await store.complete_job("nope", "w1", "{}") is JobAnswer.NOT_FOUND
    assert await store.fail_job("nope", "w1", retryable=False, message="x") is JobAnswer.NOT_FOUND
    assert len(await store.pending_signals("r1", 0)) == 1
    assert await store.get_job(job.id) == done


async def test_a_queued_job_cannot_be_completed(store: Store):
    await store.create_run("r1", "wf", "{}")
    [job] = await enqueue(store, "r1", 1)
    assert await store.complete_job(job.id, "w1", "{}") is JobAnswer.CONFLICT
    assert await store.get_job(job.id) == job


async def test_a_retryable_failure_requeues_until_retries_run_out(store: Store):
    await waiting_run(store, "r1", job_signal_name(1))
    [job] = await enqueue(store, "r1", 1, retries=1)
    await store.poll_jobs("w1", ["score"], 1, 30)
    assert await store.fail_job(job.id, "w1", retryable=True, message="boom") is JobAnswer.DONE
    queued = await store.get_job(job.id)
    assert queued is not None
    assert (queued.status, queued.attempt, queued.retries_remaining) == ("QUEUED", 2, 0)
    assert (queued.worker_id, queued.lock_expires_at) == (None, None)
    assert await store.pending_signals("r1", 0) == []
    assert await store.claim("executor", 10, 30) == []  # the run keeps waiting

    [second] = await store.poll_jobs("w2", ["score"], 1, 30)
    assert (second.id, second.attempt, second.worker_id) == (job.id, 2, "w2")
    assert await store.fail_job(job.id, "w2", retryable=True, message="again") is JobAnswer.DONE
    failed = await store.get_job(job.id)
    assert failed is not None and (failed.status, failed.error) == ("FAILED", "again")
    [signal] = await store.pending_signals("r1", 0)
    assert json.loads(signal.payload) == {
        "ok": False,
        "error": "again",
        "attempt": 2,
        "workerId": "w2",
    }
    assert [r.id for r in await store.claim("executor", 10, 30)] == ["r1"]
    assert await store.fail_job(job.id, "w2", retryable=True, message="again") is JobAnswer.ALREADY
    assert await store.fail_job(job.id, "w1", retryable=True, message="boom") is JobAnswer.CONFLICT
    assert await store.complete_job(job.id, "w2", "{}") is JobAnswer.CONFLICT
    assert len(await store.pending_signals("r1", 0)) == 1


async def test_a_non_retryable_failure_signals_the_error_at_once(store: Store):
    await waiting_run(store, "r1", job_signal_name(5))
    [job] = await enqueue(store, "r1", 5, retries=3)
    await store.poll_jobs("w1", ["score"], 1, 30)
    answer = await store.fail_job(job.id, "w1", retryable=False, message="card declined")
    assert answer is JobAnswer.DONE
    failed = await store.get_job(job.id)
    assert failed is not None
    assert (failed.status, failed.error, failed.retries_remaining) == ("FAILED", "card declined", 3)
    [signal] = await store.pending_signals("r1", 0)
    assert signal.name == "durable.job#5"
    assert json.loads(signal.payload) == {
        "ok": False,
        "error": "card declined",
        "attempt": 1,
        "workerId": "w1",
    }
    assert [r.id for r in await store.claim("executor", 10, 30)] == ["r1"]


async def test_cancel_jobs_of_a_run_or_one_step(store: Store):
    await store.create_run("r1", "wf", "{}")
    await store.create_run("r2", "wf", "{}")
    j1, j2, j3 = await enqueue(store, "r1", 1, 2, 3)
    [other] = await enqueue(store, "r2", 1)
    [held] = await store.poll_jobs("w1", ["score"], 1, 30)
    assert held.id == j1.id
    assert await store.cancel_jobs("r1", 2) == 1
    assert (await store.get_job(j2.id)).status == "CANCELLED"  # type: ignore[union-attr]
    assert await store.cancel_jobs("r1") == 2  # the held one and the queued one
    assert await store.cancel_jobs("r1") == 0
    assert {(await store.get_job(j.id)).status for j in (j1, j2, j3)} == {"CANCELLED"}  # type: ignore[union-attr]
    assert [j.id for j in await store.poll_jobs("w2", ["score"], 10, 30)] == [other.id]
    # the engine closed them: its holder's late report is a no-op, a stranger's refused
    assert await store.complete_job(j1.id, "w1", "{}") is JobAnswer.ALREADY
    assert await store.fail_job(j1.id, "w1", retryable=True, message="x") is JobAnswer.ALREADY
    assert await store.complete_job(j2.id, "w9", "{}") is JobAnswer.ALREADY  # never held
    assert await store.complete_job(j1.id, "w2", "{}") is JobAnswer.CONFLICT
    assert {(await store.get_job(j.id)).status for j in (j1, j2, j3)} == {"CANCELLED"}  # type: ignore[union-attr]
    assert await store.pending_signals("r1", 0) == []


async def test_a_finished_run_cancels_its_open_jobs(store: Store):
    await store.create_run("r1", "wf", "{}")
    await store.create_run("r2", "wf", "{}")
    [run] = await store.claim("executor", 1, 30)
    j1, j2 = await enqueue(store, "r1", 1, 2)
    [other] = await enqueue(store, "r2", 1)
    [held] = await store.poll_jobs("w1", ["score"], 1, 30)
    assert held.id == j1.id
    await store.commit(
        Commit(Fence("r1", run.epoch), outcome=Finish(durable.Status.FAILED, error="{}"))
    )
    assert (await store.get_job(j1.id)).status == "CANCELLED"  # type: ignore[union-attr]
    assert (await store.get_job(j2.id)).status == "CANCELLED"  # type: ignore[union-attr]
    assert (await store.get_job(other.id)).status == "QUEUED"  # type: ignore[union-attr]
    # the worker that held a job of the finished run reports late: a no-op
    assert await store.complete_job(j1.id, "w1", "{}") is JobAnswer.ALREADY
    assert await store.fail_job(j1.id, "w1", retryable=False, message="x") is JobAnswer.ALREADY
    assert (await store.get_job(j1.id)).status == "CANCELLED"  # type: ignore[union-attr]


async def test_completing_a_job_of_an_ended_run_cancels_it(store: Store):
    await store.create_run("r1", "wf", "{}")
    [run] = await store.claim("executor", 1, 30)
    await store.commit(Commit(Fence("r1", run.epoch), outcome=Finish(durable.Status.COMPLETED)))
    [job] = await enqueue(store, "r1", 1)  # queued after the end: nobody will ever wait for it
    await store.poll_jobs("w1", ["score"], 1, 30)
    assert await store.complete_job(job.id, "w1", "{}") is JobAnswer.ALREADY
    assert (await store.get_job(job.id)).status == "CANCELLED"  # type: ignore[union-attr]
    assert await store.pending_signals("r1", 0) == []


async def test_queued_and_requeued_jobs_wake_pollers_in_other_processes(dsn: str, store: Store):
    await store.create_run("r1", "wf", "{}")
    async with more_stores(dsn, 1) as [other]:
        with other.subscribe(JOBS) as jobs:
            [job] = await enqueue(store, "r1", 1, retries=1)
            assert await jobs.wait(5)
            await store.enqueue_job("r1", 1, "s", "score", "{}", 1)  # a repeat: nothing new
            await store.poll_jobs("w1", ["score"], 1, 30)
            assert await store.fail_job(job.id, "w1", retryable=True, message="x") is JobAnswer.DONE
            assert await jobs.wait(5)
