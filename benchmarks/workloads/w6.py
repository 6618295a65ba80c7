"""W6: N runs parked in ``ctx.sleep(3600)``: worker memory and claim-query time.

A worker process parks them (claims each, journals its timer, suspends it). Measured:
that worker's RSS before and after; the RSS of a fresh worker process started with them
present; and the time of the claim query (which finds nothing due) with none and with
them present, as the store runs it (median of 200 round trips from this process).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from _harness import median, plain_dsn, rss_mb

from . import Row, row
from ._procs import spawn, stop, wait_ready

STORES = ("postgres",)
SIZE = {"full": 10_000, "quick": 2_000}
SETTLE = 2.0


async def _claim_ms(store: Any) -> float:
    from durable.store import QueueClaim

    samples = []
    for _ in range(200):
        start = time.perf_counter()
        claimed = await store.claim("w6-probe", 64, 30.0, [QueueClaim("default", 64)])
        samples.append((time.perf_counter() - start) * 1000)
        assert not claimed, "the probe claimed a run"
    return median(samples)


async def _count_parked(dsn: str, schema: str) -> int:
    conn = await asyncpg.connect(plain_dsn(dsn), server_settings={"search_path": schema})
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM runs WHERE status = 'WAITING' AND lease_owner IS NULL"
            )
        )
    finally:
        await conn.close()


async def durable(config: dict[str, Any]) -> dict[str, Any]:
    from bench_app import parked

    import durable as d

    n, dsn, tmp = config["n"], config["dsn"], config["tmp"]
    schema = dsn.rsplit("schema=", 1)[1]
    first, ready = spawn("worker_proc.py", dsn, "--concurrency", "1000", tmp=tmp)
    second = None
    try:
        await wait_ready(ready, first)
        await asyncio.sleep(SETTLE)
        rss_idle = rss_mb(first.pid)
        async with d.App(dsn) as app:
            claim_empty = await _claim_ms(app.store)
            for start in range(0, n, 100):
                await asyncio.gather(*(app.start(parked) for _ in range(min(100, n - start))))
            deadline = time.monotonic() + 600
            while await _count_parked(dsn, schema) < n:
                if time.monotonic() > deadline:
                    raise TimeoutError("the runs did not all park")
                await asyncio.sleep(0.2)
            await asyncio.sleep(SETTLE)
            rss_after = rss_mb(first.pid)
            second, ready2 = spawn("worker_proc.py", dsn, "--concurrency", "1000", tmp=tmp)
            await wait_ready(ready2, second)
            await asyncio.sleep(SETTLE)
            rss_fresh = rss_mb(second.pid)
            claim_full = await _claim_ms(app.store)
    finally:
        stop(first)
        if second is not None:
            stop(second)
    return {
        "parked": n,
        "rss_idle_mb": rss_idle,
        "rss_after_mb": rss_after,
        "rss_fresh_mb": rss_fresh,
        "claim_ms_empty": claim_empty,
        "claim_ms_parked": claim_full,
    }


def rows(store: str, ours: dict[str, Any], peer: dict[str, Any] | None, ctx: Any) -> list[Row]:
    n = ours["parked"]
    idle, after, fresh = ours["rss_idle_mb"], ours["rss_after_mb"], ours["rss_fresh_mb"]
    empty, full = ours["claim_ms_empty"], ours["claim_ms_parked"]
    return [
        row(
            "W6",
            store,
            f"worker RSS MiB: idle / after parking {n:,} / fresh with them",
            f"{idle:.0f} / {after:.0f} / {fresh:.0f}",
            target="no growth with parked runs",
            holds=fresh <= idle * 1.1 + 2,
        ),
        row(
            "W6",
            store,
            f"claim query ms: none / {n:,} parked",
            f"{empty:.2f} / {full:.2f}",
            target="< 2 ms",
            holds=full < 2,
        ),
    ]
