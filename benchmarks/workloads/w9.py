"""W9: failover. Four worker processes run runs of 20 short steps (0.1 s each); one worker
is SIGKILLed mid-run, 20 times (a fresh worker replaces it each time). Measured: for each
run the killed worker was executing, the time from the kill to that run's next step
beginning on another worker. The lease is 30 s: only the liveness lock explains a
faster takeover.

Each step logs ``run:index:pid:time`` as it begins (``bench_app.failover_step``).
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
    if log.exists():  # noqa: ASYNC240
        for line in log.read_text().splitlines():  # noqa: ASYNC240
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
                await _until(lambda: _in_flight(_read(log), runs, workers) >= 2, 30)
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


async def _until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
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


def rows(store: str, ours: dict[str, Any], peer: dict[str, Any] | None, ctx: Any) -> list[Row]:
    p50, p99 = ours["p50_s"], ours["p99_s"]
    return [
        row(
            "W9",
            store,
            f"kill → next step p50 / p99 s ({ours['runs']} runs, {ours['kills']} kills)",
            f"{p50:.2f} / {p99:.2f}",
            "recovers only when an executor with the same id restarts",
            "",
            "p50 ≤ 2 s, p99 ≤ 5 s",
            p50 <= 2 and p99 <= 5,
        )
    ]



