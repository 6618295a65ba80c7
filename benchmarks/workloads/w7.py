"""W7: W2 with 1, 2 and 4 worker processes on Postgres: the scaling ratio.

The runs are created first in a queue no worker serves, the worker processes started
and ready, then one UPDATE moves every run to the served queue and notifies the workers:
the clock runs from that moment to the last run COMPLETED (polled every 20 ms).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from _harness import plain_dsn

from . import Row, row
from ._procs import spawn, stop, wait_ready

STORES = ("postgres",)
SIZE = {"full": 1000, "quick": 200}
WORKERS = (1, 2, 4)


async def _one(config: dict[str, Any], workers: int, batch: str) -> float:
    from bench_app import ten_steps

    import durable as d

    n, dsn = config["n"], config["dsn"]
    schema = dsn.rsplit("schema=", 1)[1]
    async with d.App(dsn) as app:
        for start in range(0, n, 100):
            count = min(100, n - start)
            await asyncio.gather(*(app.start(ten_steps, queue=batch) for _ in range(count)))
    procs = [spawn("worker_proc.py", dsn, tmp=config["tmp"]) for _ in range(workers)]
    conn = await asyncpg.connect(plain_dsn(dsn), server_settings={"search_path": schema})
    try:
        for proc, ready in procs:
            await wait_ready(ready, proc)
        await asyncio.sleep(0.5)
        start = time.perf_counter()
        async with conn.transaction():
            await conn.execute("UPDATE runs SET queue = 'default' WHERE queue = $1", batch)
            await conn.execute("SELECT pg_notify($1, 'work')", f"durable_{schema}")
        sql = "SELECT count(*) FROM runs WHERE status = 'COMPLETED' AND workflow = $1"
        target = n * (WORKERS.index(workers) + 1)
        while await conn.fetchval(sql, ten_steps.name) < target:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return time.perf_counter() - start
    finally:
        await conn.close()
        for proc, _ in procs:
            stop(proc)


async def durable(config: dict[str, Any]) -> dict[str, Any]:
    rates = {}
    for workers in WORKERS:
        elapsed = await _one(config, workers, f"w7-{workers}")
        rates[str(workers)] = config["n"] * 10 / elapsed
    return {"steps_per_s": rates, "runs": config["n"]}


def rows(store: str, ours: dict[str, Any], peer: dict[str, Any] | None, ctx: Any) -> list[Row]:
    rates = ours["steps_per_s"]
    one = rates["1"]
    text = " / ".join(f"{rates[str(w)]:,.0f}" for w in WORKERS)
    scaling = " / ".join(f"{rates[str(w)] / one:.2f}x" for w in WORKERS)
    return [
        row(
            "W7",
            store,
            "steps/s with 1 / 2 / 4 workers",
            text,
            ratio=f"scaling {scaling}",
            target="2 workers ≥ 1.6x one (until the database saturates)",
            holds=rates["2"] >= 1.6 * one,
        )
    ]
