"""A worker killed during a retry backoff: the next worker resumes the backoff."""

from __future__ import annotations

import signal

import anyio
import crash_app
import pytest
from procs import log_lines, wait_until

pytestmark = pytest.mark.anyio


async def test_sigkill_during_a_10s_backoff_resumes_it_with_the_next_attempt(app, env, spawn):
    handle = await app.start(crash_app.backoff, id="crash-backoff")
    first = spawn()
    await wait_until(lambda: len(log_lines(env)) >= 1)

    with anyio.fail_after(30):  # the failed attempt and its backoff are durable
        while not any(e.event == "retry" for e in await handle.history()):
            await anyio.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    spawn()

    assert await handle.result(timeout=60) == 2
    attempts = [line.split(":") for line in log_lines(env)]
    assert [int(a[1]) for a in attempts] == [1, 2], "a fresh attempt 1 would mean a reset budget"
    waited = float(attempts[1][2]) - float(attempts[0][2])
    assert waited >= 10.0, f"attempt 2 started {waited:.2f} s after attempt 1, before the backoff"
    retry = next(e for e in await handle.history() if e.event == "retry")
    assert retry.payload["attempt"] == 2
    assert retry.payload["error"]["message"] == "the first attempt always fails"
