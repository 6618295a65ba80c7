"""Workflows run by real worker subprocesses in the crash tests.

Each activity appends a line to the file named by $CRASH_LOG before it returns, so the
test can count how often every step really ran.
"""

from __future__ import annotations

import asyncio
import os
import time

import durable

app = durable.App()


def _log(line: str) -> None:
    with open(os.environ["CRASH_LOG"], "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


@durable.activity
async def step(run: str, index: int) -> int:
    _log(f"{run}:{index}")
    await asyncio.sleep(0.1)
    return index * index


@durable.workflow(name="crash-steps")
async def steps(ctx: durable.Context, count: int) -> int:
    total = 0
    for index in range(count):
        total += await step(ctx.info.run_id, index)
    return total


@durable.activity
def stamp(label: str) -> float:
    _log(label)
    return time.time()


@durable.workflow(name="crash-sleep")
async def sleeper(ctx: durable.Context, seconds: float) -> list[float]:
    before = await stamp("before")
    await ctx.sleep(seconds)
    after = await stamp("after")
    return [before, after]


@durable.activity
async def chaos_step(run: str, index: int, delay: float) -> int:
    _log(f"{run}:{index}:{os.getpid()}")
    await asyncio.sleep(delay)
    return index * index


@durable.workflow(name="chaos-steps")
async def chaos(ctx: durable.Context, steps: int, delay: float) -> int:
    total = 0
    for index in range(steps):
        total += await chaos_step(ctx.info.run_id, index, delay)
    return total


@durable.activity(name="crash-flow-step")
async def flow_step(task: dict[str, object]) -> dict[str, object]:
    _log(f"{task['instanceId']}:{task['stepId']}")
    await asyncio.sleep(0.1)
    return {str(task["stepId"]): True}


@durable.activity(retry=durable.RetryPolicy(max_attempts=3, initial_interval=10.0))
async def flaky(run: str) -> int:
    """Fails its first attempt; logs ``run:attempt:time`` for every attempt."""
    attempt = durable.activity_info().attempt
    _log(f"{run}:{attempt}:{time.time()}")
    if attempt == 1:
        raise RuntimeError("the first attempt always fails")
    return attempt


@durable.workflow(name="crash-backoff")
async def backoff(ctx: durable.Context) -> int:
    return await flaky(ctx.info.run_id)


class CardDeclined(Exception):
    """An activity's own exception, caught by type in the workflow (tests/worker)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@durable.activity(retry=durable.RetryPolicy(max_attempts=1))
def decline(run: str) -> None:
    _log(f"{run}:decline")
    raise CardDeclined("stolen-card", f"card of {run} declined")


@durable.workflow(name="crash-typed")
async def typed(ctx: durable.Context, count: int) -> str:
    """Catches ``CardDeclined`` by type, then runs ``count`` steps: killed among them, the
    next worker replays the journaled failure and must catch it by type again."""
    try:
        await decline(ctx.info.run_id)
        code = "none"
    except CardDeclined as e:
        code = e.code
    for index in range(count):
        await step(ctx.info.run_id, index)
    return code


@durable.activity(retry=durable.RetryPolicy(max_attempts=3, initial_interval=2.5))
async def flaky_pid(run: str) -> int:
    """Fails its first attempt; logs ``run:attempt:pid`` for every attempt."""
    attempt = durable.activity_info().attempt
    _log(f"{run}:{attempt}:{os.getpid()}")
    if attempt == 1:
        raise RuntimeError("the first attempt always fails")
    return attempt


@durable.workflow(name="crash-retry")
async def retried(ctx: durable.Context) -> int:
    return await flaky_pid(ctx.info.run_id)
