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


@durable.workflow(name="bench-first-step")
async def first_step(ctx: durable.Context) -> float:
    return await first_step_time()
