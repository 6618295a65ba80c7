"""W2: N runs x 10 no-op activities started at once, one worker (this process).

The clock runs from the starts to the last result, for both sides: all N starts are
made at once (``asyncio.gather``), durable's worker running (idle) when they begin,
DBOS running each workflow as it starts it; then the results are awaited in order.

``DURABLE_BENCH_CODEC=fernet`` or ``=compress`` runs durable's side with that payload
codec (``docs/performance.md``, payload codecs).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from . import Row, row, times

STORES = ("sqlite", "postgres")
SIZE = {"full": 1000, "quick": 200}


async def durable(config: dict[str, Any]) -> dict[str, Any]:
    from bench_app import ten_steps

    import durable as d

    n = config["n"]
    async with d.App(config["dsn"], **_codec()) as app, app.worker(concurrency=n):
        await (await app.start(ten_steps)).result(timeout=60)  # warm up
        start = time.perf_counter()
        handles = await asyncio.gather(*(app.start(ten_steps) for _ in range(n)))
        for handle in handles:
            await handle.result(timeout=600)
        elapsed = time.perf_counter() - start
    return {"steps_per_s": n * 10 / elapsed, "runs_per_s": n / elapsed, "runs": n}


def _codec() -> dict[str, Any]:
    """The App's ``codec=`` that ``$DURABLE_BENCH_CODEC`` asks for (none when unset)."""
    name = os.environ.get("DURABLE_BENCH_CODEC", "")
    if not name:
        return {}
    from durable import codecs

    if name == "fernet":
        return {"codec": codecs.Fernet(b"q8pMd1lC2cMfA1-7tYt2oU0uCzBv8Xg3Lh5y5w4kH0s=")}
    if name == "compress":
        return {"codec": codecs.Compress()}
    raise ValueError(f"DURABLE_BENCH_CODEC must be fernet or compress, not {name!r}")


async def dbos(config: dict[str, Any]) -> dict[str, Any]:
    import dbos_app
    from dbos import DBOS

    n = config["n"]
    dbos_app.launch(config["dbos_url"], config["dbos_schema"])
    try:
        await (await DBOS.start_workflow_async(dbos_app.ten_steps)).get_result()
        start = time.perf_counter()
        starts = (DBOS.start_workflow_async(dbos_app.ten_steps) for _ in range(n))
        handles = await asyncio.gather(*starts)
        for handle in handles:
            await handle.get_result()
        elapsed = time.perf_counter() - start
    finally:
        DBOS.destroy()
    return {"steps_per_s": n * 10 / elapsed, "runs_per_s": n / elapsed, "runs": n}


def rows(store: str, ours: dict[str, Any], peer: dict[str, Any] | None, ctx: Any) -> list[Row]:
    rate = ours["steps_per_s"]
    peer_rate = peer["steps_per_s"] if peer else None
    if store == "postgres":  # BENCHMARKS.md: the 16-connection commit floor and 40x DBOS
        floor = ctx["floors"]["postgres_16"]
        target = f"≥ 16-connection floor ({floor:,.0f}/s): {rate / floor:.2f}x; ≥ 40x DBOS"
        holds = rate >= floor and (peer_rate is None or rate >= 40 * peer_rate)
    else:
        target, holds = "≥ 3,000 steps/s", rate >= 3000
    return [
        row(
            "W2",
            store,
            "steps/s (runs/s)",
            f"{rate:,.0f} ({ours['runs_per_s']:,.0f})",
            f"{peer_rate:,.0f} ({peer['runs_per_s']:,.0f})" if peer else "n/a",
            f"{times(rate, peer_rate)} faster" if peer_rate else "",
            target,
            holds,
        )
    ]
