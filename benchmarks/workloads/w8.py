"""W8: the JSON flow equivalent of W2 (10 SERVICE_TASKs with in-process handlers).

Measured like W2 (N starts at once to the last result, the worker running). Its ratio is
to the code-first W2 workload measured in the same process, alternating with it (flow,
code, flow, code), so that both see the same load of a shared machine; DBOS has no JSON
flows.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from . import Row, row

STORES = ("sqlite", "postgres")
SIZE = {"full": 1000, "quick": 200}
ROUNDS = 2


async def _measure(app: Any, start: Any, n: int) -> float:
    started = time.perf_counter()
    handles = await asyncio.gather(*(start() for _ in range(n)))
    for handle in handles:
        await handle.result(timeout=600)
    return n * 10 / (time.perf_counter() - started)


async def durable(config: dict[str, Any]) -> dict[str, Any]:
    from bench_app import ten_step_flow, ten_steps

    import durable as d

    n = config["n"]
    flow: list[float] = []
    code: list[float] = []
    async with d.App(config["dsn"]) as app, app.worker(concurrency=n):
        ref = await app.definitions.upload(ten_step_flow())
        await (await app.start_flow(ref.id)).result(timeout=60)  # warm up
        await (await app.start(ten_steps)).result(timeout=60)
        for _ in range(ROUNDS):
            flow.append(await _measure(app, lambda: app.start_flow(ref.id), n))
            code.append(await _measure(app, lambda: app.start(ten_steps), n))
    return {
        "steps_per_s": statistics.median(flow),
        "code_first_steps_per_s": statistics.median(code),
        "runs": n,
    }


def rows(store: str, ours: dict[str, Any], peer: dict[str, Any] | None, ctx: Any) -> list[Row]:
    rate, base = ours["steps_per_s"], ours["code_first_steps_per_s"]
    return [
        row(
            "W8",
            store,
            "steps/s (JSON flow)",
            f"{rate:,.0f}",
            "n/a (no JSON flows)",
            f"{rate / base:.0%} of code-first ({base:,.0f}, same process)",
            "≥ 75% of W2",
            rate >= 0.75 * base,
        )
    ]
