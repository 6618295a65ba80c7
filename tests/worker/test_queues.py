"""Queues: which workers take which runs, in what order, and within which limits.

Limits are checked by recording when each activity (or slot holder) starts and ends and
computing how many overlapped; several Workers with an App (and a store connection)
each stand for several processes, and on Postgres real worker processes do too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest
import queue_app  # noqa: F401  (registers the workflow the worker processes run)

import durable
from durable.store import QueueClaim

pytestmark = pytest.mark.anyio
HERE = Path(__file__).parent

REPORTS = durable.Queue("q-reports")
LIMITED = durable.Queue("q-limited", concurrency=2)
PER_WORKER = durable.Queue("q-per-worker", worker_concurrency=2)
RATED = durable.Queue("q-rated", rate_limit=(2, 1.0))
GPU = durable.Queue("q-gpu", concurrency=2)
LOCAL = durable.Queue("q-local", worker_concurrency=1)
ARATE = durable.Queue("q-arate", rate_limit=(3, 0.5))
ALL = [REPORTS, LIMITED, PER_WORKER, RATED, GPU, LOCAL, ARATE]

spans: list[tuple[str, float, float]] = []
order: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_records() -> None:
    spans.clear()
    order.clear()


def peak(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end before a start at a tie)."""
    events = sorted(e for s, t in intervals for e in ((s, 1), (t, -1)))
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


@durable.activity(name="q-hold")
async def hold(label: str, seconds: float) -> str:
    start = time.monotonic()
    order.append(label)
    await asyncio.sleep(seconds)
    spans.append((label, start, time.monotonic()))
    return label


@durable.workflow(name="q-hold-flow")
async def hold_flow(ctx: durable.Context, label: str, seconds: float) -> str:
    return await hold(label, seconds)


@durable.workflow(name="q-report", queue=REPORTS)
async def report(ctx: durable.Context, label: str) -> str:
    return await hold(label, 0.0)


async def apps(dsn: str, stack: AsyncExitStack, count: int) -> list[durable.App]:
    """``count`` Apps on one database, each with its own store connection."""
    return [await stack.enter_async_context(durable.App(dsn, queues=ALL)) for _ in range(count)]


@pytest.fixture
async def qapp(dsn: str) -> AsyncIterator[durable.App]:
    async with durable.App(dsn, queues=ALL) as app:
        yield app


async def test_workers_serve_only_their_queues(qapp):
    reports = await qapp.start(report, "r1")  # first in line: a worker serving it takes it
    default = await qapp.start(hold_flow, "d1", 0.0)
    before = await reports.describe()
    async with qapp.worker(queues=["default"], poll_interval=0.05):
        assert await default.result(timeout=10) == "d1"
    after = await reports.describe()
    assert after.status is durable.Status.PENDING
    assert after.updated_at == before.updated_at  # never claimed
    assert await qapp.queue_depth(REPORTS) == 1
    async with qapp.worker(queues=["q-reports"], poll_interval=0.05) as worker:
        assert worker.served.names == ("q-reports",)
        assert await reports.result(timeout=10) == "r1"
    assert order == ["d1", "r1"]


async def test_the_default_worker_serves_declared_and_workflow_queues(qapp):
    names = qapp.worker().served.names
    assert {"default", "q-reports", "q-limited", "q-gpu"} <= set(names)
    handle = await qapp.start(hold_flow, "moved", 0.0, queue="q-reports")
    async with qapp.worker(poll_interval=0.05):
        assert await handle.result(timeout=10) == "moved"


async def test_higher_priority_is_claimed_first_fifo_within_a_priority(qapp):
    plan = [("low-1", 0), ("high-1", 5), ("low-2", 0), ("mid-1", 1), ("high-2", 5), ("neg", -3)]
    handles = [await qapp.start(hold_flow, label, 0.0, priority=p) for label, p in plan]
    async with qapp.worker(concurrency=1, poll_interval=0.05):
        for handle in handles:
            await handle.result(timeout=10)
    assert order == ["high-1", "high-2", "mid-1", "low-1", "low-2", "neg"]


async def test_priorities_across_queues_one_claim(qapp):
    await qapp.start(report, "report-low")
    await qapp.start(hold_flow, "default-high", 0.0, priority=2)
    await qapp.start(report, "report-high", priority=3)
    async with qapp.worker(concurrency=1, poll_interval=0.05):
        with anyio.fail_after(10):
            while len(order) < 3:
                await anyio.sleep(0.02)
    assert order == ["report-high", "default-high", "report-low"]


async def test_the_per_worker_limit_holds(qapp):
    handles = [await qapp.start(hold_flow, f"w{n}", 0.1, queue=PER_WORKER) for n in range(6)]
    async with qapp.worker(concurrency=10, poll_interval=0.05):
        for handle in handles:
            await handle.result(timeout=20)
    assert peak((s, e) for _, s, e in spans) <= 2


async def test_a_global_limit_of_two_holds_across_four_workers(dsn):
    async with AsyncExitStack() as stack:
        fleet = await apps(dsn, stack, 4)
        handles = [await fleet[0].start(hold_flow, f"g{n}", 0.1, queue=LIMITED) for n in range(12)]
        for app in fleet:
            await stack.enter_async_context(app.worker(concurrency=10, poll_interval=0.05))
        for handle in handles:
            assert (await handle.result(timeout=60)).startswith("g")
    assert len(spans) == 12
    assert peak((s, e) for _, s, e in spans) <= 2


async def test_the_rate_limit_holds_across_workers(dsn):
    async with AsyncExitStack() as stack:
        fleet = await apps(dsn, stack, 2)
        handles = [await fleet[0].start(hold_flow, f"r{n}", 0.0, queue=RATED) for n in range(6)]
        for app in fleet:
            await stack.enter_async_context(app.worker(poll_interval=0.05))
        for handle in handles:
            await handle.result(timeout=30)
    starts = sorted(s for _, s, _ in spans)
    # 2 starts per second: the third start after any start comes a period later. The
    # activity begins a little after its claim, so allow that much jitter.
    assert all(later - first >= 0.7 for first, later in zip(starts, starts[2:], strict=False))


async def test_claims_never_pass_the_rate_limit(dsn):
    """Exact, at the store: each claimed run's ``updated_at`` is its claim time."""
    async with AsyncExitStack() as stack:
        fleet = await apps(dsn, stack, 3)
        await fleet[0].store.put_queues([RATED])  # as a worker does when it starts
        for n in range(7):
            await fleet[0].start(hold_flow, f"s{n}", 0.0, queue=RATED)
        claim = QueueClaim("q-rated", 10, limited=True)
        times: list[float] = []
        with anyio.fail_after(30):
            while len(times) < 7:
                batches = await asyncio.gather(
                    *(app.store.claim(f"c{i}", 10, 60, [claim]) for i, app in enumerate(fleet))
                )
                times += [run.updated_at for batch in batches for run in batch]
                await anyio.sleep(0.02)
    times.sort()
    assert all(later - first >= 1.0 - 1e-6 for first, later in zip(times, times[2:], strict=False))


async def test_depth_counts_runnable_unclaimed_runs(qapp):
    assert await qapp.queue_depth("q-reports") == 0
    for n in range(3):
        await qapp.start(report, f"d{n}")
    handle = await qapp.start(hold_flow, "x", 0.0)
    assert await qapp.queue_depth(REPORTS) == 3
    assert await qapp.queue_depth("default") == 1
    assert await qapp.queue_depth("never-used") == 0
    depths = await qapp.queues_depth()
    assert depths["q-reports"] == 3 and depths["default"] == 1 and depths["q-gpu"] == 0
    async with qapp.worker(queues=["default"], poll_interval=0.05):
        await handle.result(timeout=10)
    assert await qapp.queue_depth("default") == 0
    assert (await qapp.queues_depth())["q-reports"] == 3


# -- the activity limiter ------------------------------------------------------------------
async def hold_slot(worker: durable.Worker, queue: str, label: str, seconds: float) -> None:
    async with worker.limiter.slot(queue):
        start = time.monotonic()
        await asyncio.sleep(seconds)
        spans.append((label, start, time.monotonic()))


async def test_the_limiter_holds_a_global_limit_across_four_workers(dsn):
    async with AsyncExitStack() as stack:
        fleet = await apps(dsn, stack, 4)
        workers = [await stack.enter_async_context(app.worker()) for app in fleet]
        with anyio.fail_after(60):
            await asyncio.gather(
                *(hold_slot(w, "q-gpu", f"{i}-{n}", 0.05) for i, w in enumerate(workers)
                  for n in range(4))
            )  # fmt: skip
    assert len(spans) == 16
    assert peak((s, e) for _, s, e in spans) <= 2


async def test_the_limiter_holds_a_per_worker_limit(dsn):
    async with AsyncExitStack() as stack:
        fleet = await apps(dsn, stack, 2)
        workers = [await stack.enter_async_context(app.worker()) for app in fleet]
        await asyncio.gather(
            *(hold_slot(w, "q-local", f"{i}-{n}", 0.05) for i, w in enumerate(workers)
              for n in range(3))
        )  # fmt: skip
    for i in range(2):
        assert peak((s, e) for label, s, e in spans if label.startswith(f"{i}-")) == 1
    assert len(spans) == 6


async def test_the_limiter_holds_a_rate_limit(dsn):
    async with AsyncExitStack() as stack:
        fleet = await apps(dsn, stack, 3)
        workers = [await stack.enter_async_context(app.worker()) for app in fleet]
        with anyio.fail_after(30):
            await asyncio.gather(
                *(hold_slot(w, "q-arate", f"{i}-{n}", 0.0) for i, w in enumerate(workers)
                  for n in range(3))
            )  # fmt: skip
    starts = sorted(s for _, s, _ in spans)
    assert all(later - first >= 0.45 for first, later in zip(starts, starts[3:], strict=False))


async def test_a_slot_is_freed_when_its_holder_fails_or_is_cancelled(qapp):
    async with qapp.worker() as worker:
        with pytest.raises(RuntimeError):
            async with worker.limiter.slot("q-gpu"):
                raise RuntimeError("boom")
        waiter = asyncio.ensure_future(hold_slot(worker, "q-gpu", "a", 10))
        await anyio.sleep(0.2)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        with anyio.fail_after(5):  # both slots are free again
            await asyncio.gather(*(hold_slot(worker, "q-gpu", f"b{n}", 0.0) for n in range(2)))


async def test_unlimited_queues_and_none_pass_through(qapp):
    async with qapp.worker() as worker:
        async with worker.limiter.slot(None), worker.limiter.slot("q-reports"):
            pass
        async with worker.limiter.slot("nobody-declared-this"):
            pass


# -- declarations and bad input ------------------------------------------------------------
async def test_a_worker_stores_its_declarations_and_warns_on_a_change(dsn, caplog):
    async with durable.App(dsn, queues=[durable.Queue("q-x", concurrency=3)]) as first:
        async with first.worker():
            pass
        assert (await first.store.get_queues(["q-x"]))["q-x"].concurrency == 3
    async with durable.App(dsn, queues=[durable.Queue("q-x", concurrency=5)]) as second:
        async with second.worker():
            pass
        assert (await second.store.get_queues(["q-x"]))["q-x"].concurrency == 5
    assert "q-x: limits changed" in caplog.text


def test_bad_declarations_and_arguments_are_refused():
    with pytest.raises(durable.ConfigurationError, match="concurrency"):
        durable.Queue("q", concurrency=0)
    with pytest.raises(durable.ConfigurationError, match="rate_limit"):
        durable.Queue("q", rate_limit=(3, 0))
    with pytest.raises(durable.ConfigurationError, match="rate_limit"):
        durable.Queue("q", rate_limit=(True, 1.0))  # type: ignore[arg-type]
    with pytest.raises(durable.ConfigurationError, match="queue name"):
        durable.Queue("")
    app = durable.App("sqlite:///unused.db", queues=[durable.Queue("q", concurrency=1)])
    assert app.queue("q", concurrency=1) is app.queues["q"]
    with pytest.raises(durable.ConfigurationError, match="already declared"):
        app.queue("q", concurrency=2)
    with pytest.raises(durable.ConfigurationError, match="non-empty list"):
        app.worker(queues=[])
    with pytest.raises(durable.ConfigurationError, match="non-empty list"):
        app.worker(queues="default")  # type: ignore[arg-type]
    with pytest.raises(durable.ConfigurationError, match="served by the worker"):
        app.worker(queues=["default", None])  # type: ignore[list-item]
    with pytest.raises(durable.ConfigurationError, match="other limits"):
        app.worker(queues=[durable.Queue("q", concurrency=9)])
    assert durable.Queue("p", rate_limit=(2, 1)).rate_limit == (2, 1.0)


async def test_bad_start_options_are_refused(qapp):
    for bad in (True, "1", 1.5, 2**40):
        with pytest.raises(durable.ConfigurationError, match="priority"):
            await qapp.start(hold_flow, "x", 0.0, priority=bad)
    with pytest.raises(durable.ConfigurationError, match="queue"):
        await qapp.start(hold_flow, "x", 0.0, queue="")
    assert await qapp.list_runs() == []


# -- real worker processes (Postgres) ------------------------------------------------------
def spawn_workers(count: int, env: dict[str, str], folder: Path) -> list[subprocess.Popen[bytes]]:
    """Start ``durable worker queue_app:app`` processes, each logging to a file."""
    command = [sys.executable, "-m", "durable.cli", "worker", "queue_app:app",
               "--poll-interval", "0.2", "--lease-seconds", "5"]  # fmt: skip
    procs = []
    for n in range(count):
        with open(folder / f"worker-{n}.log", "wb") as out:
            procs.append(
                subprocess.Popen(command, env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
            )
    return procs


async def test_a_global_limit_holds_across_worker_processes(pg_dsn, tmp_path):
    log = tmp_path / "spans.log"
    env = {**os.environ, "DURABLE_DSN": pg_dsn, "QUEUE_LOG": str(log), "PYTHONPATH": str(HERE)}
    procs = spawn_workers(4, env, tmp_path)
    try:
        async with durable.App(pg_dsn) as app:
            handles = [await app.start("queue-fleet", 0.2) for _ in range(10)]
            for handle in handles:
                await handle.result(timeout=120)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    lines = [line.split() for line in log.read_text().splitlines()]
    starts = {run: float(t) for run, what, t in lines if what == "start"}
    ends = {run: float(t) for run, what, t in lines if what == "end"}
    assert len(ends) == 10
    assert peak((starts[run], ends[run]) for run in ends) <= 2


# -- activities in a limited queue, end to end ------------------------------------------------
@durable.activity(name="q-gpu-render", queue=GPU)
async def render(label: str) -> str:
    start = time.monotonic()
    await asyncio.sleep(0.05)
    spans.append((label, start, time.monotonic()))
    return label


@durable.workflow(name="q-render-all")
async def render_all(ctx: durable.Context, count: int) -> list[str]:
    return await ctx.gather(*(render(f"{ctx.info.run_id}-{n}") for n in range(count)))


async def test_activities_of_a_limited_queue_respect_its_global_limit(dsn):
    async with AsyncExitStack() as stack:
        fleet = await apps(dsn, stack, 4)
        for app in fleet:
            await stack.enter_async_context(app.worker(poll_interval=0.05))
        handles = [await fleet[0].start(render_all, 3, id=f"render-{i}") for i in range(4)]
        results = [await h.result(timeout=60) for h in handles]
    assert [len(r) for r in results] == [3, 3, 3, 3]
    assert len(spans) == 12
    assert peak((s, e) for _, s, e in spans) <= 2


@durable.workflow(name="q-child-report", queue=REPORTS)
async def child_report(ctx: durable.Context) -> str:
    return "reported"


@durable.workflow(name="q-parent")
async def parent_of_report(ctx: durable.Context) -> str:
    return await ctx.child(child_report, id=f"{ctx.info.run_id}-child")


async def test_a_child_run_waits_in_its_workflows_queue(qapp, wait_status):
    handle = await qapp.start(parent_of_report, id="q-parent-1", priority=5)
    async with qapp.worker(queues=["default"], poll_interval=0.05):
        await wait_status(handle, durable.Status.WAITING)
        child = qapp.handle("q-parent-1-child")
        assert (await child.describe()).status is durable.Status.PENDING
    stored = await qapp.store.get_run("q-parent-1-child")
    assert stored is not None and (stored.queue, stored.priority) == ("q-reports", 5)
    async with qapp.worker(queues=["default", "q-reports"], poll_interval=0.05):
        assert await handle.result(timeout=10) == "reported"
