"""Several workers share a per-second schedule: every tick starts exactly one run."""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import UTC, datetime

import anyio
import crash_app
import pytest
from procs import log_lines, wait_until, worker_log

import durable

pytestmark = pytest.mark.anyio

SCHEDULED = re.compile(r"run=(\S+) worker=(\S+) state=SCHEDULED")


@durable.workflow(name="sched-pair")
async def pair(ctx: durable.Context, label: str) -> str:
    return label


def tick_of(run_id: str) -> int:
    stamp = datetime.strptime(run_id.split("@", 1)[1], "%Y-%m-%dT%H:%M:%SZ")
    return int(stamp.replace(tzinfo=UTC).timestamp())


async def settled_runs(
    app: durable.App, workflow: str, schedule_id: str, count: int
) -> list[durable.RunDescription]:
    """Wait for ``count`` finished runs, pause the schedule, wait for the rest to finish."""

    async def runs() -> list[durable.RunDescription]:
        found = await app.list_runs(workflow=workflow, limit=10_000)
        return [r for r in found if r.run_id.startswith(f"{schedule_id}@")]

    with anyio.fail_after(120):
        while sum(r.status.is_terminal for r in await runs()) < count:
            await anyio.sleep(0.2)
        await app.schedules.pause(schedule_id)
        while not all(r.status.is_terminal for r in await runs()):
            await anyio.sleep(0.1)
    return sorted(await runs(), key=lambda r: r.run_id)


def assert_one_run_per_tick_without_gaps(runs: list[durable.RunDescription], count: int) -> None:
    ticks = sorted(tick_of(r.run_id) for r in runs)
    assert len(ticks) >= count
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))  # every second, once each
    assert {r.status for r in runs} == {durable.Status.COMPLETED}


async def test_two_worker_processes_start_each_of_20_ticks_exactly_once(app, env, spawn):
    workers = [spawn(), spawn()]
    await wait_until(lambda: all("started" in worker_log(w) for w in workers), timeout=60)
    await app.schedule(
        crash_app.steps, cron="* * * * * *", id="every-second", args=(1,), missed="catch_up"
    )
    runs = await settled_runs(app, "crash-steps", "every-second", 20)

    assert_one_run_per_tick_without_gaps(runs, 20)
    assert {r.result for r in runs} == {0}
    # each run's one activity ran once: no tick was executed twice
    assert Counter(log_lines(env)) == {f"{r.run_id}:0": 1 for r in runs}
    # and each tick's run was created by exactly one of the two workers
    created = [m for w in workers for m in SCHEDULED.findall(worker_log(w))]
    assert Counter(run_id for run_id, _ in created) == {r.run_id: 1 for r in runs}
    lag = [r.created_at.timestamp() - tick_of(r.run_id) for r in runs]
    print(f"ticks started per worker: {Counter(w.split(':')[1] for _, w in created)}")
    print(f"tick to run created: mean {sum(lag) / len(lag):.3f} s, max {max(lag):.3f} s")
    for proc in workers:
        assert proc.poll() is None


async def test_two_workers_on_separate_connections_start_each_tick_once(dsn, caplog):
    caplog.set_level(logging.INFO, logger="durable.worker")
    async with (
        durable.App(dsn) as first,
        durable.App(dsn) as second,
        durable.Worker(first, name="w1"),
        durable.Worker(second, name="w2"),
    ):
        await first.schedule(pair, cron="* * * * * *", id="pair", args=("p",), missed="catch_up")
        runs = await settled_runs(second, "sched-pair", "pair", 10)
    assert_one_run_per_tick_without_gaps(runs, 10)
    found = [SCHEDULED.search(record.getMessage()) for record in caplog.records]
    created = [(m[1], m[2]) for m in found if m]
    assert Counter(run_id for run_id, _ in created) == {r.run_id: 1 for r in runs}
    print(f"ticks started: {Counter(worker for _, worker in created)}")
