"""The DBOS Transact equivalents of ``bench_app``, and launching DBOS for one process.

DBOS is configured once per process (``launch``): its system tables live in a schema of
their own on the same Postgres server as durable's (``dbos_system_schema``), or in a
SQLite file of their own.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSConfig, SetWorkflowID

QUEUE = "bench"
__all__ = ["DBOS", "QUEUE", "SetWorkflowID", "launch"]


def launch(url: str, schema: str | None, *, queue: bool = False, **extra: Any) -> None:
    """Configure and launch DBOS on ``url`` (tables in ``schema`` on Postgres); with
    ``queue``, serve the benchmark's queue (from a process without a running loop)."""
    config: DBOSConfig = {"name": "bench", "system_database_url": url, "log_level": "WARNING"}
    if schema is not None:
        config["dbos_system_schema"] = schema
    config.update(extra)  # type: ignore[typeddict-item]
    DBOS(config=config)
    DBOS.launch()
    if queue:  # a queue is registered in the system database, so after launch
        poll = float(os.environ.get("BENCH_DBOS_POLL", 1.0))
        DBOS.register_queue(QUEUE, polling_interval_sec=poll)


@DBOS.step()
async def noop(i: int) -> int:
    return i


@DBOS.step()
async def first_step_time() -> float:
    return time.time()


@DBOS.workflow(name="bench_ten_steps")
async def ten_steps() -> int:
    total = 0
    for i in range(10):
        total += await noop(i)
    return total


@DBOS.workflow(name="bench_fan_out")
async def fan_out(n: int) -> int:
    return sum(await asyncio.gather(*(noop(i) for i in range(n))))


@DBOS.workflow(name="bench_first_step")
async def first_step() -> float:
    return await first_step_time()


@DBOS.step()
async def resume_point() -> float:
    began = time.time()
    marker = os.environ.get("BENCH_HANG_AT")
    if marker:
        Path(marker).write_text(str(began))  # noqa: ASYNC240
        await asyncio.sleep(3600)
    return began


@DBOS.workflow(name="bench_long_journal")
async def long_journal(n: int) -> float:
    for i in range(n):
        await noop(i)
    return await resume_point()


@DBOS.workflow(name="bench_parked")
async def parked() -> None:
    await DBOS.sleep_async(3600)


@DBOS.step()
async def failover_step(run: str, index: int) -> int:
    """W9: log ``run:index:pid:time`` to ``$BENCH_STEP_LOG`` as the step begins."""
    line = f"{run}:{index}:{os.getpid()}:{time.time()}\n"
    fd = os.open(os.environ["BENCH_STEP_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    await asyncio.sleep(0.1)
    return index


@DBOS.workflow(name="bench_failover")
async def failover(steps: int) -> int:
    total = 0
    for i in range(steps):
        total += await failover_step(DBOS.workflow_id or "", i)
    return total
