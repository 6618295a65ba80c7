"""Workflows measured by ``quick.py``; also served by a worker subprocess for W4."""

from __future__ import annotations

import time

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
    total = 0
    for i in range(10):
        total += await noop(i)
    return total


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
    return await first_step_time()
