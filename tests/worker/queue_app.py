"""The App served by real worker processes in the queue tests.

Its activity appends ``run start|end time`` lines to the file named by $QUEUE_LOG, so
the test can measure how many ran at once across processes.
"""

from __future__ import annotations

import asyncio
import os
import time

import durable

FLEET = durable.Queue("fleet-limited", concurrency=2)
app = durable.App(queues=[FLEET])


def _log(line: str) -> None:
    with open(os.environ["QUEUE_LOG"], "a") as f:
        f.write(line + "\n")
        f.flush()


@durable.activity(name="queue-fleet-hold")
async def hold(run: str, seconds: float) -> str:
    _log(f"{run} start {time.time()!r}")
    await asyncio.sleep(seconds)
    _log(f"{run} end {time.time()!r}")
    return run


@durable.workflow(name="queue-fleet", queue=FLEET)
async def fleet(ctx: durable.Context, seconds: float) -> str:
    return await hold(ctx.info.run_id, seconds)
