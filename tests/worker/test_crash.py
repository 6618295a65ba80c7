"""Crash recovery with real processes: workers are SIGKILLed and others take over."""

from __future__ import annotations

import signal
import time
from collections import Counter

import anyio
import crash_app
import pytest
from procs import log_lines, wait_until

import durable

pytestmark = pytest.mark.anyio


async def test_sigkill_mid_workflow_second_worker_finishes_each_step_once(app, env, spawn):
    handle = await app.start(crash_app.steps, 20, id="crash-20")
    first = spawn()
    await wait_until(lambda: len(log_lines(env)) >= 8)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before_kill = len(log_lines(env))
    assert done_before_kill < 20, "the worker must die in the middle of the run"

    spawn()
    assert await handle.result(timeout=60) == sum(i * i for i in range(20))

    counts = Counter(log_lines(env))
    assert set(counts) == {f"crash-20:{i}" for i in range(20)}
    repeated = [line for line, n in counts.items() if n > 1]
    assert len(repeated) <= 1 and all(counts[line] == 2 for line in repeated)
    # only the step in flight at the kill may have run twice
    if repeated:
        assert repeated[0] == f"crash-20:{done_before_kill - 1}"
    history = await handle.history()
    activity_results = [e for e in history if e.kind == "activity" and e.event == "result"]
    assert [e.seq for e in activity_results] == list(range(1, 21))


async def test_sigkill_during_durable_sleep_completes_on_time_after_restart(
    app, env, spawn, wait_status
):
    handle = await app.start(crash_app.sleeper, 3.0, id="crash-sleep")
    first = spawn()
    await wait_status(handle, durable.Status.WAITING, timeout=30)
    first.send_signal(signal.SIGKILL)
    first.wait()
    spawn()
    before, after = await handle.result(timeout=30)
    slept = after - before
    assert 3.0 <= slept < 4.5, f"slept {slept:.2f} s for a 3 s durable sleep"
    assert log_lines(env) == ["before", "after"]


async def test_timer_due_while_no_worker_runs_fires_at_restart(app, env, spawn, wait_status):
    # 2.5 s: longer than a wait the worker keeps loaded (SHORT_WAIT), so the run suspends
    handle = await app.start(crash_app.sleeper, 2.5, id="crash-late")
    first = spawn()
    await wait_status(handle, durable.Status.WAITING, timeout=30)
    first.send_signal(signal.SIGKILL)
    first.wait()
    await anyio.sleep(3.0)  # the timer comes due while no worker runs
    restarted = time.time()
    spawn()
    _, after = await handle.result(timeout=30)
    assert after >= restarted and after - restarted < 3.0
    assert log_lines(env) == ["before", "after"]


async def test_sigterm_drains_and_hands_the_run_over_without_repeating_a_step(app, env, spawn):
    handle = await app.start(crash_app.steps, 20, id="drain-20")
    first = spawn()
    await wait_until(lambda: len(log_lines(env)) >= 5)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=20) == 0  # a clean exit, after the step in flight finished
    desc = await handle.describe()
    assert desc.status is durable.Status.PENDING  # released, not left to a lease expiry
    spawn()
    assert await handle.result(timeout=60) == sum(i * i for i in range(20))
    counts = Counter(log_lines(env))
    assert len(counts) == 20 and set(counts.values()) == {1}


async def test_sigkill_after_a_typed_failure_the_next_worker_catches_it_by_type(app, env, spawn):
    handle = await app.start(crash_app.typed, 20, id="crash-typed")
    first = spawn()
    await wait_until(lambda: len(log_lines(env)) >= 6)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert len(log_lines(env)) < 21, "the worker must die in the middle of the run"

    spawn()
    assert await handle.result(timeout=60) == "stolen-card"
    # the failure was replayed from the journal, not raised again
    assert log_lines(env).count("crash-typed:decline") == 1
