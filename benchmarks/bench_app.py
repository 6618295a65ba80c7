"""The durable workflows of the benchmark; also served by worker subprocesses (W4, W5, W7).

``app`` is what ``durable worker bench_app:app`` serves (its store: ``$DURABLE_DSN``).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import durable

app = durable.App()


@durable.activity
async def noop(i: int) -> int:
    return i


@durable.activity
async def first_step_time() -> float:
    return time.time()


@durable.workflow(name="bench-ten-steps")
async def ten_steps(ctx: durable.Context) -> int:
    """W1, W2, W7: ten no-op activities in a row."""
    total = 0
    for i in range(10):
        total += await noop(i)
    return total


@durable.workflow(name="bench-fan-out")
async def fan_out(ctx: durable.Context, n: int) -> int:
    """W3: one workflow gathering ``n`` no-op activities."""
    results = await ctx.gather(*(noop(i) for i in range(n)))
    return sum(results)


@durable.activity(name="bench-noop")
async def noop_task(task: dict[str, object]) -> dict[str, object]:
    return {}


def ten_step_flow() -> dict[str, object]:
    """W8: the JSON flow equivalent of ``ten_steps`` (10 SERVICE_TASKs, in-process)."""
    steps: list[dict[str, object]] = [
        {"id": f"s{i}", "name": f"Step {i}", "type": "SERVICE_TASK", "jobType": "bench-noop",
         "nextStep": f"s{i + 1}" if i < 9 else "end"}
        for i in range(10)
    ]  # fmt: skip
    steps.append({"id": "end", "name": "End", "type": "END"})
    return {"id": "BENCH::ten-steps", "name": "Ten steps", "steps": steps}


@durable.workflow(name="bench-first-step")
async def first_step(ctx: durable.Context) -> float:
    """W4: the time its first activity began."""
    return await first_step_time()


@durable.activity(name="bench-resume-point")
async def resume_point() -> float:
    """W5: in a process with ``BENCH_HANG_AT`` set, say so in that file and hang (the
    process is killed there); elsewhere return the time the step began."""
    began = time.time()
    marker = os.environ.get("BENCH_HANG_AT")
    if marker:
        Path(marker).write_text(str(began))  # noqa: ASYNC240
        await asyncio.sleep(3600)
    return began


@durable.workflow(name="bench-long-journal")
async def long_journal(ctx: durable.Context, n: int) -> float:
    """W5: ``n`` completed steps, then the step where the first worker dies."""
    for i in range(n):
        await noop(i)
    return await resume_point()


@durable.workflow(name="bench-parked")
async def parked(ctx: durable.Context) -> None:
    """W6: a run that sleeps for an hour."""
    await ctx.sleep(3600)


@durable.activity(name="bench-failover-step")
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


@durable.workflow(name="bench-failover")
async def failover(ctx: durable.Context, steps: int) -> int:
    """W9: ``steps`` short steps, each logged where and when it began."""
    total = 0
    for i in range(steps):
        total += await failover_step(ctx.info.run_id, i)
    return total
