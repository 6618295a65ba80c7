"""W5: recovery. A run with 1,000 completed steps; its worker process is killed (SIGKILL)
at step 1,001. Measured: from opening the store in a fresh process to step 1,001 beginning
again (claim, journal read, replay of 1,000 steps, resume).

durable: the lease of the dead worker (1 s) has expired before the clock starts. DBOS: the
workflow ran in the killed process; ``DBOS.launch()`` in this one recovers it (same
executor id), so its figure includes the launch.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from . import Row, row, times
from ._procs import spawn, stop, wait_ready

STORES = ("postgres",)
SIZE = {"full": 1000, "quick": 1000}
LEASE = 1.0


async def _hang(marker: Path, proc: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():  # noqa: ASYNC240
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the first worker did not reach the last step")
        await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


async def durable(config: dict[str, Any]) -> dict[str, Any]:
    from bench_app import long_journal

    import durable as d

    marker = Path(config["tmp"]) / f"w5-{uuid.uuid4().hex[:6]}"
    args = (config["dsn"], "--lease", str(LEASE))
    proc, ready = spawn("worker_proc.py", *args, tmp=config["tmp"], BENCH_HANG_AT=str(marker))
    try:
        await wait_ready(ready, proc)
        async with d.App(config["dsn"]) as app:
            handle = await app.start(long_journal, config["n"])
            await _hang(marker, proc)
    finally:
        stop(proc)
    await asyncio.sleep(LEASE + 0.5)  # the dead worker's lease runs out
    start = time.time()
    async with d.App(config["dsn"]) as app, app.worker():
        began = await app.handle(handle.run_id).result(timeout=120)
    return {"ms": (began - start) * 1000, "steps": config["n"]}


async def dbos(config: dict[str, Any]) -> dict[str, Any]:
    import dbos_app
    from dbos import DBOS

    marker = Path(config["tmp"]) / f"w5-{uuid.uuid4().hex[:6]}"
    schema = config["dbos_schema"] or "-"
    workflow_id = f"w5-{uuid.uuid4().hex[:8]}"
    proc, ready = spawn(
        "dbos_worker.py",
        config["dbos_url"],
        schema,
        f"--w5={workflow_id}:{config['n']}",
        tmp=config["tmp"],
        BENCH_HANG_AT=str(marker),
    )
    try:
        await wait_ready(ready, proc)
        await _hang(marker, proc)
    finally:
        stop(proc)
    start = time.time()
    dbos_app.launch(config["dbos_url"], config["dbos_schema"])
    launched = time.time()
    try:
        began = await (await DBOS.retrieve_workflow_async(workflow_id)).get_result()
    finally:
        DBOS.destroy()
    return {
        "ms": (began - start) * 1000,
        "launch_ms": (launched - start) * 1000,
        "steps": config["n"],
    }


def rows(store: str, ours: dict[str, Any], peer: dict[str, Any] | None, ctx: Any) -> list[Row]:
    ms = ours["ms"]
    return [
        row(
            "W5",
            store,
            f"ms to replay {ours['steps']:,} steps and resume",
            f"{ms:.0f}",
            f"{peer['ms']:.0f} (launch {peer['launch_ms']:.0f})" if peer else "n/a",
            f"{times(peer['ms'], ms)} faster" if peer else "",
            "≤ 100 ms",
            ms <= 100,
        )
    ]
