"""A JSON flow survives a worker SIGKILL in the middle, like a code-first run."""

from __future__ import annotations

import signal
from collections import Counter

import pytest
from procs import log_lines, wait_until

pytestmark = pytest.mark.anyio

STEPS = 12


def definition() -> dict[str, object]:
    ids = [f"s{i}" for i in range(STEPS)]
    steps: list[dict[str, object]] = [
        {"id": step, "name": step, "type": "SERVICE_TASK", "jobType": "crash-flow-step",
         "nextStep": ids[i + 1] if i + 1 < STEPS else "done"}
        for i, step in enumerate(ids)
    ]  # fmt: skip
    steps.append({"id": "done", "name": "Done", "type": "END"})
    return {"id": "CRASH::flow", "name": "Crash flow", "steps": steps}


async def test_sigkill_mid_flow_second_worker_finishes_each_step_once(app, env, spawn):
    await app.definitions.upload(definition())
    handle = await app.start_flow("CRASH::flow", id="flow-crash")
    first = spawn()
    await wait_until(lambda: len(log_lines(env)) >= 5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before_kill = len(log_lines(env))
    assert done_before_kill < STEPS, "the worker must die in the middle of the flow"

    spawn()
    result = await handle.result(timeout=60)
    assert result == {f"s{i}": True for i in range(STEPS)}

    counts = Counter(log_lines(env))
    assert set(counts) == {f"flow-crash:s{i}" for i in range(STEPS)}
    repeated = [line for line, n in counts.items() if n > 1]
    assert len(repeated) <= 1 and all(counts[line] == 2 for line in repeated)
    if repeated:
        assert repeated[0] == f"flow-crash:s{done_before_kill - 1}"
    history = await handle.steps()
    assert [(s.step_id, s.status) for s in history] == [
        *((f"s{i}", "COMPLETED") for i in range(STEPS)),
        ("done", "COMPLETED"),
    ]
