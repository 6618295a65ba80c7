"""W3: one workflow gathering 1,000 no-op activities: seconds from start to result."""

from __future__ import annotations

import time
from typing import Any

from . import Row, row, times

STORES = ("sqlite", "postgres")
SIZE = {"full": 1000, "quick": 1000}


async def durable(config: dict[str, Any]) -> dict[str, Any]:
    from bench_app import fan_out

    import durable as d

    n = config["n"]
    async with d.App(config["dsn"]) as app, app.worker():
        await (await app.start(fan_out, 10)).result(timeout=60)  # warm up
        start = time.perf_counter()
        await (await app.start(fan_out, n)).result(timeout=600)
        elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "activities": n}


async def dbos(config: dict[str, Any]) -> dict[str, Any]:
    import dbos_app
    from dbos import DBOS

    n = config["n"]
    dbos_app.launch(config["dbos_url"], config["dbos_schema"])
    try:
        await (await DBOS.start_workflow_async(dbos_app.fan_out, 10)).get_result()
        start = time.perf_counter()
        await (await DBOS.start_workflow_async(dbos_app.fan_out, n)).get_result()
        elapsed = time.perf_counter() - start
    finally:
        DBOS.destroy()
    return {"seconds": elapsed, "activities": n}


def rows(store: str, ours: dict[str, Any], peer: dict[str, Any] | None, ctx: Any) -> list[Row]:
    seconds = ours["seconds"]
    return [
        row(
            "W3",
            store,
            f"s for {ours['activities']:,} gathered",
            f"{seconds:.3f}",
            f"{peer['seconds']:.3f}" if peer else "n/a",
            f"{times(peer['seconds'], seconds)} faster" if peer else "",
            "≤ 1 s",
            seconds <= 1.0,
        )
    ]
