"""Liveness with real processes: a dead worker's runs are taken over at once by a live
peer, not when their lease expires; a cut connection or a frozen process runs no step twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import anyio
import asyncpg
import crash_app
import pytest
from procs import log_lines, wait_until, worker_log

from durable.store._sqlite_workers import lock_path
from durable.store.postgres import parse_dsn

pytestmark = pytest.mark.anyio
STEPS = 20
LONG_LEASE = 60.0  # far longer than any bound below: only liveness can explain a takeover


def executions(env: dict[str, str]) -> dict[str, list[int]]:
    """step -> the pids that executed it, in order (``run:step:pid`` lines)."""
    found: defaultdict[str, list[int]] = defaultdict(list)
    for line in log_lines(env):
        _, step, pid = line.rsplit(":", 2)
        found[step].append(int(pid))
    return found


def workers_ls(env: dict[str, str]) -> list[dict[str, object]]:
    command = [sys.executable, "-m", "durable.cli", "workers", "ls", "--json"]
    done = subprocess.run(
        [*command, "--dsn", env["DURABLE_DSN"]],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


async def test_sigkill_a_worker_mid_run_and_a_live_peer_continues_within_seconds(app, env, spawn):
    handle = await app.start(crash_app.chaos, STEPS, 0.4, id="failover")
    first = spawn(lease=LONG_LEASE)
    await wait_until(lambda: len(log_lines(env)) >= 3)
    peer = spawn(lease=LONG_LEASE)
    await wait_until(lambda: "started" in worker_log(peer))
    await wait_until(lambda: {r["pid"] for r in workers_ls(env)} == {first.pid, peer.pid})
    await wait_until(lambda: len(log_lines(env)) >= 6)
    first.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    first.wait()
    done_before_kill = len(log_lines(env))
    await wait_until(lambda: peer.pid in {p for ps in executions(env).values() for p in ps})
    took = time.monotonic() - killed_at
    assert took < 10.0, f"the peer continued {took:.1f} s after the kill"
    assert await handle.result(timeout=60) == sum(i * i for i in range(STEPS))

    runs = executions(env)
    assert set(runs) == {str(i) for i in range(STEPS)}
    twice = {step for step, pids in runs.items() if len(pids) > 1}
    assert twice <= {str(done_before_kill - 1)}  # only the step in flight at the kill
    assert all(pids[-1] == peer.pid for step, pids in runs.items() if int(step) >= done_before_kill)
    assert "died (its liveness lock is free); 1 run(s) taken over" in worker_log(peer)
    # the killed worker's row is gone; the live one is listed
    rows = workers_ls(env)
    assert [(r["pid"], r["live"]) for r in rows] == [(peer.pid, True)]


async def test_frozen_worker_woken_past_its_lease_starts_no_activity_of_a_lost_run(app, env, spawn):
    handle = await app.start(crash_app.retried, id="frozen")
    zombie = spawn(lease=1.0)
    await wait_until(lambda: len(log_lines(env)) >= 1)  # attempt 1 failed; 2 is due in 2.5 s
    await anyio.sleep(0.5)  # its retry record is committed
    zombie.send_signal(signal.SIGSTOP)
    try:
        successor = spawn(lease=1.0)  # takes the run once the frozen worker's lease expires
        await wait_until(lambda: f"frozen:2:{successor.pid}" in log_lines(env))
        assert await handle.result(timeout=30) == 2
    finally:
        zombie.send_signal(signal.SIGCONT)  # its timer for attempt 2 is long due
    await wait_until(lambda: "state=LEASE_LOST" in worker_log(zombie), timeout=15)
    await anyio.sleep(0.5)
    assert log_lines(env) == [f"frozen:1:{zombie.pid}", f"frozen:2:{successor.pid}"]
    zombie.send_signal(signal.SIGTERM)
    assert zombie.wait(timeout=20) == 0


async def _terminate_lock_connection(dsn: str, pid: int) -> int:
    conn = await asyncpg.connect(parse_dsn(dsn)[0])
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name LIKE $1",
                f"durable-worker %:{pid}:%",
            )
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("dsn", ["postgres"], indirect=True)
async def test_a_worker_whose_connection_is_cut_runs_no_step_twice(app, dsn, env, spawn):
    peer = spawn(lease=LONG_LEASE)  # looks for dead peers every second
    await wait_until(lambda: "started" in worker_log(peer))
    worker = spawn(lease=LONG_LEASE)
    await wait_until(lambda: "started" in worker_log(worker))
    peer.send_signal(signal.SIGSTOP)  # the run goes to the worker, not to the peer
    try:
        handle = await app.start(crash_app.chaos, STEPS, 0.5, id="cut")
        await wait_until(lambda: len(log_lines(env)) >= 1)
    finally:
        peer.send_signal(signal.SIGCONT)
    for cut in range(1, 4):  # the worker's lock connection, cut while its process lives
        assert await _terminate_lock_connection(dsn, worker.pid) == 1
        await wait_until(lambda n=cut: worker_log(worker).count("liveness lock held again") == n)
        await anyio.sleep(1.2)  # the peer looks at least once meanwhile
        assert len(log_lines(env)) < STEPS, "the cuts must come while the run steps"
    assert await handle.result(timeout=60) == sum(i * i for i in range(STEPS))
    runs = executions(env)
    assert {step: pids for step, pids in runs.items()} == {
        str(i): [worker.pid] for i in range(STEPS)
    }


def lock_files(dsn: str) -> list[str] | None:
    """The files in the database's lock folder; None when there is no folder."""
    folder = f"{dsn.removeprefix('sqlite:///')}-workers"
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else None


def lock_file(dsn: str, worker_id: str) -> str:
    return os.path.basename(lock_path(dsn.removeprefix("sqlite:///"), worker_id))


@pytest.mark.parametrize("dsn", ["sqlite"], indirect=True)
async def test_clean_stops_leave_no_lock_files_and_spare_a_live_peers(app, dsn, env, spawn):
    first, second = spawn(lease=LONG_LEASE), spawn(lease=LONG_LEASE)
    await wait_until(lambda: {r["pid"] for r in workers_ls(env)} == {first.pid, second.pid})
    files = {r["pid"]: lock_file(dsn, str(r["id"])) for r in workers_ls(env)}
    assert lock_files(dsn) == sorted(files.values())
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=20) == 0
    assert lock_files(dsn) == [files[second.pid]]
    probe = app.store.liveness_lock("probe")
    assert await probe.acquire(lambda: None)
    try:
        assert await probe.dead_peers() == []  # the live peer's lock is still held
    finally:
        await probe.release()
    handle = await app.start(crash_app.chaos, 2, 0.0, id="after")
    assert await handle.result(timeout=30) == 1
    assert [r["pid"] for r in workers_ls(env)] == [second.pid]
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0
    assert lock_files(dsn) is None  # neither a file nor the folder is left
