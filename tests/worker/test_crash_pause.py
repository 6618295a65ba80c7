"""A pause survives a worker killed with SIGKILL: real processes, both stores."""

from __future__ import annotations

import signal
from collections import Counter

import anyio
import crash_app
import pytest
from procs import log_lines, wait_until

import durable

pytestmark = pytest.mark.anyio


async def test_pause_survives_sigkill_and_resume_runs_every_step_once(app, env, spawn, wait_status):
    handle = await app.start(crash_app.steps, 20, id="pause-20")
    first = spawn()
    await wait_until(lambda: len(log_lines(env)) >= 5)
    await handle.pause("maintenance")
    await wait_status(handle, durable.Status.PAUSED, timeout=30)
    ran = len(log_lines(env))
    assert ran < 20
    first.send_signal(signal.SIGKILL)
    first.wait()

    spawn()  # a new worker does not take the paused run
    await anyio.sleep(2.0)
    desc = await handle.describe()
    assert desc.status is durable.Status.PAUSED
    assert desc.paused_reason == "maintenance"
    assert len(log_lines(env)) == ran

    await handle.resume()
    assert await handle.result(timeout=60) == sum(i * i for i in range(20))
    counts = Counter(log_lines(env))
    assert counts == Counter({f"pause-20:{i}": 1 for i in range(20)})  # each step once
