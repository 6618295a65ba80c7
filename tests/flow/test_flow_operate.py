"""JSON flows pause, resume, retry and fork like code-first runs, on both stores."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest

import durable

pytestmark = pytest.mark.anyio

calls: Counter[str] = Counter()
fixed = {"ok": False}


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    fixed["ok"] = False


@durable.activity(name="flow-op.mark")
async def mark(task: dict[str, Any]) -> dict[str, Any]:
    calls[task["stepId"]] += 1
    return {task["stepId"]: True}


@durable.activity(name="flow-op.charge", retry=durable.RetryPolicy(max_attempts=1))
async def charge(task: dict[str, Any]) -> dict[str, Any]:
    calls["charge"] += 1
    if not fixed["ok"]:
        raise ConnectionError("the card service is down")
    return {"charged": True}


def step(step_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "type": kind, **fields}


async def upload(app: durable.App, flow_id: str, *steps: dict[str, Any]) -> None:
    await app.definitions.upload({"id": flow_id, "name": flow_id, "steps": list(steps)})


async def wait_for(handle: durable.Handle[Any], status: durable.Status) -> None:
    with anyio.fail_after(15):
        while (await handle.describe()).status is not status:
            await anyio.sleep(0.02)


async def test_a_flow_retried_runs_the_failed_step_again_and_not_the_ones_before(app):
    await upload(
        app,
        "OP::charge",
        step("first", "SERVICE_TASK", jobType="flow-op.mark", nextStep="pay"),
        step("pay", "SERVICE_TASK", jobType="flow-op.charge", nextStep="done"),
        step("done", "END"),
    )
    async with app.worker():
        h = await app.start_flow("OP::charge", id="op-flow-retry")
        with pytest.raises(durable.WorkflowFailed, match="card service"):
            await h.result(timeout=15)
        fixed["ok"] = True
        await h.retry()
        result = await h.result(timeout=15)
    assert result["charged"] is True and result["first"] is True
    assert calls == {"first": 1, "charge": 2}
    assert [(s.step_id, s.status) for s in await h.steps()][-2:] == [
        ("pay", "COMPLETED"),
        ("done", "COMPLETED"),
    ]


async def test_a_flow_whose_external_job_failed_gets_the_job_again_on_retry(app):
    await upload(
        app,
        "OP::external",
        step("ship", "SERVICE_TASK", jobType="op-external-ship", nextStep="done"),
        step("done", "END"),
    )
    async with app.worker():
        h = await app.start_flow("OP::external", id="op-flow-job")
        with anyio.fail_after(15):
            while not (jobs := await app.jobs.poll("w1", ["op-external-ship"])):
                await anyio.sleep(0.05)
        await app.jobs.fail(jobs[0].id, "w1", "no truck", retryable=False)
        with pytest.raises(durable.WorkflowFailed, match="no truck"):
            await h.result(timeout=15)
        await h.retry()
        with anyio.fail_after(15):
            while not (jobs := await app.jobs.poll("w2", ["op-external-ship"])):
                await anyio.sleep(0.05)
        await app.jobs.complete(jobs[0].id, "w2", {"tracking": "T-1"})
        assert (await h.result(timeout=15))["tracking"] == "T-1"


async def test_a_flow_paused_at_a_user_task_takes_the_completion_after_resume(app):
    await upload(
        app,
        "OP::approve",
        step("approve", "USER_TASK", nextStep="after"),
        step("after", "SERVICE_TASK", jobType="flow-op.mark", nextStep="done"),
        step("done", "END"),
    )
    async with app.worker():
        h = await app.start_flow("OP::approve", id="op-flow-pause")
        await wait_for(h, durable.Status.WAITING)
        await h.pause("audit")
        assert (await h.describe()).status is durable.Status.PAUSED
        await h.complete_user_task("approve", {"approved": True})
        await anyio.sleep(0.5)
        assert (await h.describe()).status is durable.Status.PAUSED
        assert calls["after"] == 0
        await h.resume()
        result = await h.result(timeout=15)
    assert result["approved"] is True and result["after"] is True
    assert calls == {"after": 1}
