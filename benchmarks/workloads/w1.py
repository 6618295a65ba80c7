"""W1: one run at a time, start -> result of a workflow with 10 no-op activities."""

from __future__ import annotations

import time
from typing import Any

from . import Row, row, times

STORES = ("sqlite", "postgres")
SIZE = {"full": 200, "quick": 40}
WARM_UP = 5


async def durable(config: dict[str, Any]) -> dict[str, Any]:
    from bench_app import ten_steps

    import durable as d

    n = config["n"]
    async with d.App(config["dsn"]) as app, app.worker():
        for _ in range(WARM_UP):
            await (await app.start(ten_steps)).result(timeout=60)
        start = time.perf_counter()
        for _ in range(n):
            await (await app.start(ten_steps)).result(timeout=60)
        elapsed = time.perf_counter() - start
    return {"ms_per_step": elapsed / (n * 10) * 1000, "runs": n}


async def dbos(config: dict[str, Any]) -> dict[str, Any]:
    import dbos_app
    from dbos import DBOS

    n = config["n"]
    dbos_app.launch(config["dbos_url"], config["dbos_schema"])
    try:
        for _ in range(WARM_UP):
            await (await DBOS.start_workflow_async(dbos_app.ten_steps)).get_result()
        start = time.perf_counter()
        for _ in range(n):
            await (await DBOS.start_workflow_async(dbos_app.ten_steps)).get_result()
        elapsed = time.perf_counter() - start
    finally:
        DBOS.destroy()
    return {"ms_per_step": elapsed / (n * 10) * 1000, "runs": n}


def rows(store: str, ours: dict[str, Any], peer: dict[str, Any] | None, ctx: Any) -> list[Row]:
    ms = ours["ms_per_step"]
    peer_ms = peer["ms_per_step"] if peer else None
    ratio = f"{times(peer_ms, ms)} faster" if peer_ms else ""
    target, holds = "", None
    if store == "postgres":
        floor_ms = 1000 / ctx["floors"]["postgres_1"]
        target = f"≤ 0.5 ms, ≥ 6x DBOS, ≤ 2.5x floor ({floor_ms:.3f} ms): {ms / floor_ms:.1f}x"
        holds = ms <= 0.5 and (peer_ms is None or peer_ms / ms >= 6) and ms <= 2.5 * floor_ms
    return [
        row(
            "W1",
            store,
            "ms per step",
            f"{ms:.3f}",
            f"{peer_ms:.3f}" if peer_ms else "n/a",
            ratio,
            target,
            holds,
        )
    ]
