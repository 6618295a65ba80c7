"""W9: failover. Four worker processes run runs of 20 short steps (0.1 s each); one worker
is SIGKILLed mid-run, 20 times (a fresh worker replaces it each time). Measured: for each
run the killed worker was executing, the time from the kill to that run's next step
beginning on another worker. The lease is 30 s: only the liveness lock explains a
faster takeover.

Each step logs ``run:index:pid:time`` as it begins (``bench_app.failover_step``).

DBOS: four ``dbos_worker.py`` processes serving one queue, each under an executor id of
its own; DBOS recovers a dead executor's workflows only when a process with the same
executor id launches, so the killed process is started again at once under its id (what
a supervisor restarting it would do) and the figure includes that restart.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from _harness import median, percentile

from . import Row, row
from ._procs import spawn, stop, wait_ready

STORES = ("sqlite", "postgres")
SIZE = {"full": 20, "quick": 5}  # kills
WORKERS = 4
RUNS = 12  # started before each kill
STEPS = 20
LEASE = 30.0

Steps = dict[str, list[tuple[int, int, float]]]


def _read(log: Path) -> Steps:
    """run -> its steps as (index, pid, began)."""
    found: Steps = defaultdict(list)
    if log.exists():
        for line in log.read_text().splitlines():
            run, index, pid, began = line.rsplit(":", 3)
            found[run].append((int(index), int(pid), float(began)))
    return found


async def _worker(config: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    args = (config["dsn"], "--lease", str(LEASE), "--concurrency", "100")
    proc, ready = spawn("worker_proc.py", *args, tmp=config["tmp"], BENCH_STEP_LOG=str(log))
    await wait_ready(ready, proc)
    return proc


async def durable(config: dict[str, Any]) -> dict[str, Any]:
    from bench_app import failover

    import durable as d

    log = Path(config["tmp"]) / f"w9-{uuid.uuid4().hex[:6]}.log"
    waits: list[float] = []
    workers = [await _worker(config, log) for _ in range(WORKERS)]
    try:
        async with d.App(config["dsn"]) as app:
            for kill in range(config["n"]):
                runs = [f"k{kill}-{n}" for n in range(RUNS)]
                handles = [await app.start(failover, STEPS, id=run) for run in runs]
                await _started(log, runs, workers, 30)
                victim = max(workers, key=lambda w: _held(_read(log), runs, w.pid))
                killed_at = time.time()
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                for handle in handles:
                    await handle.result(timeout=120)
                steps = _read(log)
                waits += _waits(steps, runs, victim.pid, killed_at)
                workers[workers.index(victim)] = await _worker(config, log)
    finally:
        for proc in workers:
            stop(proc)
        log.unlink(missing_ok=True)
    return {
        "p50_s": median(waits),
        "p99_s": percentile(waits, 0.99),
        "max_s": max(waits),
        "runs": len(waits),
        "kills": config["n"],
    }


async def _started(
    log: Path, runs: list[str], workers: list[subprocess.Popen[bytes]], timeout: float
) -> None:
    """Wait until one worker executes at least two of ``runs``."""
    deadline = time.monotonic() + timeout
    while _in_flight(_read(log), runs, workers) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the runs did not start")
        await asyncio.sleep(0.02)


def _held(steps: Steps, runs: list[str], pid: int) -> int:
    """How many of ``runs`` ``pid`` is executing now (its step is their last, not the end)."""
    return sum(
        1 for r in runs if steps.get(r) and steps[r][-1][1] == pid and steps[r][-1][0] < STEPS - 2
    )


def _in_flight(steps: Steps, runs: list[str], workers: list[subprocess.Popen[bytes]]) -> int:
    return max(_held(steps, runs, w.pid) for w in workers)


def _waits(steps: Steps, runs: list[str], victim: int, killed_at: float) -> list[float]:
    """For each run the victim held at the kill: from the kill to its next step elsewhere."""
    waits = []
    for run in runs:
        before = [s for s in steps[run] if s[2] <= killed_at]
        if not before or before[-1][1] != victim:
            continue
        after = [s for s in steps[run] if s[2] > killed_at and s[1] != victim]
        if after:
            waits.append(after[0][2] - killed_at)
    return waits


async def dbos(config: dict[str, Any]) -> dict[str, Any]:
    from dbos import DBOSClient

    log = Path(config["tmp"]) / f"w9-dbos-{uuid.uuid4().hex[:6]}.log"
    waits: list[float] = []
    workers = {f"w9-{n}": await _dbos_worker(config, log, f"w9-{n}") for n in range(WORKERS)}
    client = DBOSClient(
        system_database_url=config["dbos_url"],
        dbos_system_schema=config["dbos_schema"] or "dbos",
    )
    options: Any = {"workflow_name": "bench_failover", "queue_name": "bench"}
    try:
        for _ in range(config["n"]):
            handles = [await client.enqueue_async(options, STEPS) for _ in range(RUNS)]
            runs = [h.get_workflow_id() for h in handles]
            procs = list(workers.values())
            await _started(log, runs, procs, 60)
            victim = max(procs, key=lambda w: _held(_read(log), runs, w.pid))
            executor = next(e for e, w in workers.items() if w is victim)
            killed_at = time.time()
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            workers[executor] = await _dbos_worker(config, log, executor)
            for handle in handles:
                await handle.get_result()
            waits += _waits(_read(log), runs, victim.pid, killed_at)
    finally:
        client.destroy()
        for proc in workers.values():
            stop(proc)
        log.unlink(missing_ok=True)
    return {
        "p50_s": median(waits),
        "p99_s": percentile(waits, 0.99),
        "max_s": max(waits),
        "runs": len(waits),
        "kills": config["n"],
    }


async def _dbos_worker(config: dict[str, Any], log: Path, executor: str) -> Any:
    schema = config["dbos_schema"] or "-"
    args = (config["dbos_url"], schema, f"--executor={executor}")
    proc, ready = spawn("dbos_worker.py", *args, tmp=config["tmp"], BENCH_STEP_LOG=str(log))
    await wait_ready(ready, proc)
    return proc


def rows(store: str, ours: dict[str, Any], peer: dict[str, Any] | None, ctx: Any) -> list[Row]:
    p50, p99 = ours["p50_s"], ours["p99_s"]
    return [
        row(
            "W9",
            store,
            f"kill → next step p50 / p99 s ({ours['runs']} runs, {ours['kills']} kills)",
            f"{p50:.2f} / {p99:.2f}",
            (
                f"{peer['p50_s']:.2f} / {peer['p99_s']:.2f} (restarted under its id)"
                if peer
                else "recovers only when an executor with the same id restarts"
            ),
            f"{peer['p50_s'] / p50:.1f}x faster (p50)" if peer and p50 else "",
            "p50 ≤ 2 s, p99 ≤ 5 s",
            p50 <= 2 and p99 <= 5,
        )
    ]
