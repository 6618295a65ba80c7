"""JSON flows in a TestEnv: boundary timers of days pass at once, user tasks, mocked jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

import durable
from durable.testing import TestEnv

pytestmark = pytest.mark.anyio


@durable.activity(name="testing.flow.notify")
async def notify(task: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError("mocked in these tests")


def step(step_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "type": kind, **fields}


REVIEW = {
    "id": "TESTING::review",
    "name": "Review with an escalation after three days",
    "steps": [
        step(
            "review",
            "USER_TASK",
            nextStep="done",
            boundaryEvents=[
                {
                    "type": "TIMER",
                    "duration": "P3D",
                    "interrupting": True,
                    "targetStepId": "escalate",
                }
            ],
        ),
        step("escalate", "SERVICE_TASK", jobType="testing.flow.notify", nextStep="done"),
        step("done", "END"),
    ],
}


@pytest.fixture
async def env() -> AsyncIterator[TestEnv]:
    async with TestEnv() as env:
        yield env


async def test_the_boundary_timer_fires_after_three_virtual_days(env: TestEnv):
    mocked = env.mock_activity("testing.flow.notify", lambda task: {"escalated": task["stepId"]})
    started = env.now()
    handle = await env.start_flow(REVIEW, variables={"amount": 5})
    assert await handle.result() == {"amount": 5, "escalated": "escalate"}
    assert env.now() - started >= timedelta(days=3)
    assert mocked.calls[0][0][0]["variables"] == {"amount": 5}
    steps = {s.step_id: s.status for s in await handle.steps()}
    assert steps == {"review": "CANCELLED", "escalate": "COMPLETED", "done": "COMPLETED"}


async def test_a_user_task_completed_in_time_beats_the_timer(env: TestEnv):
    mocked = env.mock_activity("testing.flow.notify", {"escalated": True})
    handle = await env.start_flow(REVIEW, variables={"amount": 5})
    assert (await handle.describe()).current_steps == ("review",)
    await env.sleep(timedelta(days=2, hours=23))
    await env.complete_user_task(handle, "review", {"decision": "APPROVED"})
    assert await handle.result() == {"amount": 5, "decision": "APPROVED"}
    assert mocked.calls == []
    # the withdrawn timer does not fire later
    await env.sleep(timedelta(days=1))
    assert (await handle.describe()).status is durable.Status.COMPLETED
