"""W4: start in one process, worker idle in another: start -> first activity begins.

durable: ``worker_proc.py`` (woken by Postgres LISTEN/NOTIFY). DBOS: ``dbos_worker.py``
serving a queue, the client enqueuing through ``DBOSClient`` (DBOS dequeues by polling,
every ``polling_interval_sec``: 1 s by default, the figure measured here).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from _harness import median, percentile

from . import Row, row, times
from ._procs import spawn, stop, wait_ready

STORES = ("postgres",)
SIZE = {"full": 200, "quick": 40}
PEER_SIZE = {"full": 50, "quick": 12}  # DBOS answers in about a second each
PAUSE = 0.02  # the worker is idle again before each start


async def durable(config: dict[str, Any]) -> dict[str, Any]:
    from bench_app import first_step

    import durable as d

    proc, ready = spawn("worker_proc.py", config["dsn"], "--concurrency", "100", tmp=config["tmp"])
    latencies = []
    try:
        await wait_ready(ready, proc)
        async with d.App(config["dsn"]) as app:
            for _ in range(3):
                await (await app.start(first_step)).result(timeout=60)
            for _ in range(config["n"]):
                await asyncio.sleep(PAUSE)
                started = time.time()
                began = await (await app.start(first_step)).result(timeout=30)
                latencies.append((began - started) * 1000)
    finally:
        stop(proc)
    return _figures(latencies)


async def dbos(config: dict[str, Any]) -> dict[str, Any]:
    from dbos import DBOSClient

    schema = config["dbos_schema"] or "-"
    proc, ready = spawn("dbos_worker.py", config["dbos_url"], schema, tmp=config["tmp"])
    latencies = []
    try:
        await wait_ready(ready, proc)
        client = DBOSClient(
            system_database_url=config["dbos_url"],
            dbos_system_schema=config["dbos_schema"] or "dbos",
        )
        options: Any = {"workflow_name": "bench_first_step", "queue_name": "bench"}
        try:
            for _ in range(2):
                await (await client.enqueue_async(options)).get_result()
            for _ in range(config["n"]):
                await asyncio.sleep(PAUSE)
                started = time.time()
                began = await (await client.enqueue_async(options)).get_result()
                latencies.append((began - started) * 1000)
        finally:
            client.destroy()
    finally:
        stop(proc)
    return _figures(latencies)


def _figures(latencies: list[float]) -> dict[str, Any]:
    return {"p50_ms": median(latencies), "p99_ms": percentile(latencies, 0.99), "n": len(latencies)}


def rows(store: str, ours: dict[str, Any], peer: dict[str, Any] | None, ctx: Any) -> list[Row]:
    p50, p99 = ours["p50_ms"], ours["p99_ms"]
    return [
        row(
            "W4",
            store,
            "p50 / p99 ms",
            f"{p50:.2f} / {p99:.2f}",
            f"{peer['p50_ms']:.1f} / {peer['p99_ms']:.1f}" if peer else "n/a",
            f"{times(peer['p50_ms'], p50)} faster (p50)" if peer else "",
            "≤ 2 ms / ≤ 20 ms",
            p50 <= 2 and p99 <= 20,
        )
    ]
