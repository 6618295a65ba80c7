"""W8: the JSON flow equivalent of W2 (10 SERVICE_TASKs with in-process handlers).

Measured like W2 (N starts at once to the last result, the worker running); its ratio is to
durable's own W2 figure on the same store in the same invocation (DBOS has no JSON flows).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from . import Row, row

STORES = ("sqlite", "postgres")
SIZE = {"full": 1000, "quick": 200}


async def durable(config: dict[str, Any]) -> dict[str, Any]:
    from bench_app import ten_step_flow

    import durable as d

    n = config["n"]
    async with d.App(config["dsn"]) as app, app.worker(concurrency=n):
        ref = await app.definitions.upload(ten_step_flow())
        await (await app.start_flow(ref.id)).result(timeout=60)  # warm up
        start = time.perf_counter()
        handles = await asyncio.gather(*(app.start_flow(ref.id) for _ in range(n)))
        for handle in handles:
            await handle.result(timeout=600)
        elapsed = time.perf_counter() - start
    return {"steps_per_s": n * 10 / elapsed, "runs": n}


def rows(store: str, ours: dict[str, Any], peer: dict[str, Any] | None, ctx: Any) -> list[Row]:
    rate = ours["steps_per_s"]
    w2 = ctx["results"].get(("W2", store), (None, None))[0]
    base = w2.get("steps_per_s") if w2 else None
    return [
        row(
            "W8",
            store,
            "steps/s (JSON flow)",
            f"{rate:,.0f}",
            "n/a (no JSON flows)",
            f"{rate / base:.0%} of W2 ({base:,.0f})" if base else "",
            "≥ 75% of W2",
            rate >= 0.75 * base if base else None,
        )
    ]
