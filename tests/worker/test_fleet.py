"""A fleet of worker processes on Postgres: chaos, zombies, restarts, concurrent start-up."""

from __future__ import annotations

import asyncio
import functools
import signal
import subprocess
import tempfile
import time
from collections import defaultdict

import anyio
import asyncpg
import crash_app
import pytest
from procs import log_lines, wait_until, worker_log

import durable
from durable.store import _migrate
from durable.store.postgres import parse_dsn

pytestmark = pytest.mark.anyio
STEPS = 10
TOTAL = sum(i * i for i in range(STEPS))


@pytest.fixture
def dsn(pg_dsn: str) -> str:  # these tests are about Postgres only
    return pg_dsn


def executions(env: dict[str, str]) -> dict[tuple[str, str], list[int]]:
    """(run, step) -> the pids that executed it, in order."""
    found: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for line in log_lines(env):
        run, step, pid = line.rsplit(":", 2)
        found[(run, step)].append(int(pid))
    return found


async def completed(app: durable.App) -> int:
    return len(await app.list_runs(status=durable.Status.COMPLETED, limit=10_000))


async def check_journals(app: durable.App, run_ids: list[str]) -> None:
    for run_id in run_ids:
        history = await app.handle(run_id).history()
        activities = [e for e in history if e.kind == "activity"]
        assert [e.seq for e in activities] == list(range(1, STEPS + 1)), run_id
        assert [e.position for e in history] == list(range(len(history))), run_id


async def test_chaos_kill_a_worker_every_two_seconds(app, env, spawn):
    run_ids = [f"chaos-{n}" for n in range(200)]
    for run_id in run_ids:
        await app.start(crash_app.chaos, STEPS, 0.1, id=run_id)
    # 4 workers x 5 runs at a time: the batch takes many kill periods to finish
    slots = [spawn("--concurrency", "5", lease=3.0) for _ in range(4)]
    killed: set[int] = set()
    kills = 0
    with anyio.fail_after(240):
        while await completed(app) < len(run_ids):
            await anyio.sleep(2.0)
            victim = slots[kills % 4]
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed.add(victim.pid)
            slots[kills % 4] = spawn("--concurrency", "5", lease=3.0)
            kills += 1
    assert kills >= 5, "the fleet must have been killed repeatedly while it worked"

    for run_id in run_ids:
        assert await app.handle(run_id).result(timeout=5) == TOTAL
    await check_journals(app, run_ids)
    runs = executions(env)
    assert set(runs) == {(r, str(i)) for r in run_ids for i in range(STEPS)}
    for key, pids in runs.items():
        # every execution but the recorded one was cut short by a kill
        assert all(pid in killed for pid in pids[:-1]), (key, pids)


async def test_zombie_worker_writes_are_refused(app, env, spawn):
    handle = await app.start(crash_app.chaos, 6, 0.6, id="zombie")
    zombie = spawn(lease=1.0)
    await wait_until(lambda: len(log_lines(env)) >= 3)  # the third step is in flight
    zombie.send_signal(signal.SIGSTOP)
    try:
        await anyio.sleep(2.5)  # well past its lease
        successor = spawn(lease=1.0)
        await wait_until(lambda: len(log_lines(env)) >= 5)  # the successor took over
    finally:
        zombie.send_signal(signal.SIGCONT)
    assert await handle.result(timeout=30) == sum(i * i for i in range(6))
    await anyio.sleep(1.0)  # the zombie's late write has been tried and refused
    zombie.send_signal(signal.SIGTERM)
    zombie.wait(timeout=20)

    assert "state=LEASE_LOST" in worker_log(zombie)
    history = await handle.history()
    activities = [e for e in history if e.kind == "activity"]
    assert [e.seq for e in activities] == list(range(1, 7))
    assert [e.position for e in history] == list(range(len(history)))
    runs = executions(env)
    stepped_twice = {step for (_, step), pids in runs.items() if len(pids) > 1}
    assert stepped_twice == {"2"}  # only the step the zombie froze in
    assert runs[("zombie", "2")] == [zombie.pid, successor.pid]


async def test_ten_workers_starting_at_once_migrate_once_and_all_work(app, env, spawn, dsn):
    # a fresh schema, migrated by whichever of ten simultaneous processes gets there first
    fresh = f"{dsn.rsplit('schema=', 1)[0]}schema=fresh_{int(time.time() * 1000)}"
    env["DURABLE_DSN"] = fresh
    workers = [spawn(lease=5.0) for _ in range(10)]
    await wait_until(lambda: all("started" in worker_log(w) for w in workers), timeout=60)
    async with durable.App(fresh) as fresh_app:
        run_ids = [f"m-{n}" for n in range(40)]
        for run_id in run_ids:
            await fresh_app.start(crash_app.chaos, STEPS, 0.02, id=run_id)
        for run_id in run_ids:
            assert await fresh_app.handle(run_id).result(timeout=60) == TOTAL
    conn = await asyncpg.connect(parse_dsn(fresh)[0])
    try:
        schema = parse_dsn(fresh)[1]
        versions = await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()
    assert [r[0] for r in versions] == [v for v, _ in _migrate.migrations("postgres")]
    applied = sum("applied migration" in worker_log(w) for w in workers)
    assert applied <= 1  # the test's own App may have been first
    assert all(w.poll() is None for w in workers)


async def test_database_restart_mid_batch(env, spawn):
    import pgserver
    from pgserver._commands import POSTGRES_BIN_PATH

    server = pgserver.get_server(tempfile.mkdtemp(prefix="durable-restart-"), cleanup_mode="delete")
    try:
        dsn = server.get_uri()
        env["DURABLE_DSN"] = dsn
        async with durable.App(dsn) as app:
            run_ids = [f"r-{n}" for n in range(40)]
            for run_id in run_ids:
                await app.start(crash_app.chaos, STEPS, 0.1, id=run_id)
            workers = [spawn(lease=2.0), spawn(lease=2.0)]
            await wait_until(lambda: len(log_lines(env)) >= 40)
            # the restarted postmaster must not inherit a pipe we wait on: log to a file
            restart = await anyio.to_thread.run_sync(
                functools.partial(
                    subprocess.run,
                    [str(POSTGRES_BIN_PATH / "pg_ctl"), "-w", "-D", str(server.pgdata),
                     "-l", str(server.log), "restart", "-m", "fast"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    user=server.system_user, check=False, timeout=60,
                )
            )  # fmt: skip
            assert restart.returncode == 0
            with anyio.fail_after(120):
                while True:
                    try:
                        if await completed(app) == len(run_ids):
                            break
                    except durable.StoreError:
                        pass  # the test's own pool reconnects too
                    await asyncio.sleep(0.2)
            await check_journals(app, run_ids)
            for run_id in run_ids:
                assert await app.handle(run_id).result(timeout=5) == TOTAL
            assert any("state=DROPPED" in worker_log(w) for w in workers)  # it hit mid-batch
            assert all(w.poll() is None for w in workers)  # they carried on
    finally:
        server.cleanup()
