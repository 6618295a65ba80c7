"""JSON flows run on the real runtime: every step type, timers, parallel, chaining, failures."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

import durable

pytestmark = pytest.mark.anyio

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    calls.clear()


@durable.activity(name="flow-test.score")
async def score(task: dict[str, Any]) -> dict[str, Any]:
    calls["score"] += 1
    return {"creditScore": task["variables"]["base"] + 100, "seenStep": task["stepId"]}


@durable.activity(name="flow-test.flaky", retry=durable.RetryPolicy(initial_interval=0.01))
def flaky(task: dict[str, Any]) -> dict[str, Any]:
    calls["flaky"] += 1
    if task["attempt"] < task["variables"]["succeedOn"]:
        raise ConnectionError(f"attempt {task['attempt']} failed")
    return {"attempts": task["attempt"], "left": task["retriesRemaining"]}


@durable.activity(name="flow-test.slow")
async def slow(task: dict[str, Any]) -> dict[str, Any]:
    calls["slow-start"] += 1
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        calls["slow-cancelled"] += 1
        raise
    return {"slow": "done"}


@durable.activity(name="flow-test.mark")
async def mark(task: dict[str, Any]) -> dict[str, Any]:
    calls[task["stepId"]] += 1
    return {task["stepId"]: True}


@durable.activity(name="flow-test.whoami")
async def whoami(task: dict[str, Any]) -> dict[str, Any]:
    info = durable.activity_info()
    return {"workflow": info.workflow, "run": info.run_id}


@pytest.fixture
async def running(app: durable.App) -> AsyncIterator[durable.App]:
    async with app.worker(poll_interval=0.2):
        yield app


def step(step_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "type": kind, **fields}


END = step("done", "END")


async def upload(app: durable.App, *steps: dict[str, Any], **top: Any) -> str:
    definition = {"id": top.pop("id", "TEST::flow"), "name": "Test flow", "steps": list(steps)}
    ref = await app.definitions.upload({**definition, **top})
    return ref.id


async def test_service_transformation_decision_end(running: durable.App):
    await upload(
        running,
        step("score", "SERVICE_TASK", jobType="flow-test.score", nextStep="double"),
        step(
            "double",
            "TRANSFORMATION",
            transformations={"limit": "${creditScore * 2}", "tag": "x"},
            nextStep="route",
        ),
        step(
            "route",
            "DECISION",
            conditionalNextSteps={"#creditScore >= 700 && limit > 0": "done", "true": "low"},
        ),
        step("low", "END"),
        END,
    )
    handle = await running.start_flow("TEST::flow", variables={"base": 650}, business_key="B-1")
    result = await handle.result(timeout=15)
    assert result == {
        "base": 650,
        "creditScore": 750,
        "seenStep": "score",
        "limit": 1500,
        "tag": "x",
    }
    steps = await handle.steps()
    assert [(s.step_id, s.step_type, s.status) for s in steps] == [
        ("score", "SERVICE_TASK", "COMPLETED"),
        ("double", "TRANSFORMATION", "COMPLETED"),
        ("route", "DECISION", "COMPLETED"),
        ("done", "END", "COMPLETED"),
    ]
    desc = await handle.describe()
    assert desc.business_key == "B-1" and desc.flow_version == 1 and desc.workflow == "TEST::flow"
    assert desc.variables == result and desc.current_steps == ()
    [listed] = await running.list_runs(business_key="B-1")
    assert listed.run_id == handle.run_id


async def test_user_task_completion_merges_and_is_idempotent(running: durable.App, wait_status):
    await upload(
        running,
        step("review", "USER_TASK", nextStep="after"),
        step("after", "SERVICE_TASK", jobType="flow-test.mark", nextStep="done"),
        END,
    )
    handle = await running.start_flow("TEST::flow", variables={"amount": 5})
    with pytest.raises(durable.StepNotWaitingError):
        await handle.complete_user_task("after", {})
    desc = await _wait_for_steps(handle, ("review",))
    assert desc.status is durable.Status.WAITING and desc.variables == {"amount": 5}
    await handle.complete_user_task("review", {"decision": "APPROVED"})
    await handle.complete_user_task("review", {"decision": "REJECTED"})  # a no-op
    result = await handle.result(timeout=15)
    assert result == {"amount": 5, "decision": "APPROVED", "after": True}
    await handle.complete_user_task("review", {"decision": "late"})  # completed before: no-op
    assert calls["after"] == 1


async def test_wait_step_takes_a_signal_named_after_it(running: durable.App):
    await upload(running, step("kyc", "WAIT", nextStep="done"), END)
    handle = await running.start_flow("TEST::flow")
    await _wait_for_steps(handle, ("kyc",))
    await handle.signal("kyc", {"kycStatus": "OK"})
    assert await handle.result(timeout=15) == {"kycStatus": "OK"}


async def test_decision_without_a_match_fails_the_run_naming_the_step(running: durable.App):
    await upload(
        running,
        step("route", "DECISION", conditionalNextSteps={"amount > 10": "done"}),
        END,
    )
    handle = await running.start_flow("TEST::flow", variables={"amount": 1})
    with pytest.raises(durable.WorkflowFailed) as failed:
        await handle.result(timeout=15)
    assert failed.value.error_type == "FlowError"
    assert (
        "'route'" in failed.value.error_message
        and "no branch matched" in failed.value.error_message
    )
    desc = await handle.describe()
    assert desc.status is durable.Status.FAILED and "no branch matched" in (
        desc.failure_reason or ""
    )
    [record] = await handle.steps()
    assert record.status == "FAILED" and record.failure_reason == "no branch matched"


async def test_expression_errors_fail_the_step_clearly(running: durable.App):
    await upload(
        running, step("route", "DECISION", conditionalNextSteps={"missing > 1": "done"}), END
    )
    handle = await running.start_flow("TEST::flow")
    with pytest.raises(durable.WorkflowFailed) as failed:
        await handle.result(timeout=15)
    assert "missing" in failed.value.error_message and "'route'" in failed.value.error_message


async def test_decision_table_writes_outputs(running: durable.App):
    table = step(
        "risk",
        "DECISION_TABLE",
        hitPolicy="FIRST",
        inputs=[{"expression": "creditScore"}, {"expression": "loanAmount"}],
        outputs=[{"name": "riskBand"}, {"name": "limit"}],
        rules=[
            {"when": [">= 700", "<= 100000"], "then": ["LOW", 100000]},
            {"when": ["[500..700)", "-"], "then": ["MEDIUM", "${loanAmount / 2}"]},
            {"when": ["< 500", "-"], "then": ["HIGH", 0]},
        ],
        nextStep="done",
    )
    await upload(running, table, END)
    handle = await running.start_flow(
        "TEST::flow", variables={"creditScore": 600, "loanAmount": 5000}
    )
    result = await handle.result(timeout=15)
    assert result["riskBand"] == "MEDIUM" and result["limit"] == 2500


async def test_retry_then_success_and_retry_exhausted(running: durable.App):
    await upload(
        running,
        step("charge", "SERVICE_TASK", jobType="flow-test.flaky", retryCount=2, nextStep="done"),
        END,
    )
    ok = await running.start_flow("TEST::flow", variables={"succeedOn": 3})
    assert (await ok.result(timeout=15))["attempts"] == 3
    [charge, _] = await ok.steps()
    assert charge.status == "COMPLETED" and charge.attempt == 3
    calls.clear()
    bad = await running.start_flow("TEST::flow", variables={"succeedOn": 9})
    with pytest.raises(durable.WorkflowFailed) as failed:
        await bad.result(timeout=15)
    assert calls["flaky"] == 3  # one attempt and retryCount=2 retries
    assert (
        "'charge'" in failed.value.error_message and "ConnectionError" in failed.value.error_message
    )
    [charge] = await bad.steps()
    assert charge.status == "FAILED" and charge.attempt == 3


async def test_interrupting_timer_cancels_the_user_task(running: durable.App):
    timer = {
        "type": "TIMER",
        "duration": "PT0.3S",
        "interrupting": True,
        "targetStepId": "escalate",
    }
    await upload(
        running,
        step("review", "USER_TASK", nextStep="done", boundaryEvents=[timer]),
        step("escalate", "SERVICE_TASK", jobType="flow-test.mark", nextStep="done"),
        END,
    )
    handle = await running.start_flow("TEST::flow")
    assert await handle.result(timeout=15) == {"escalate": True}
    steps = {s.step_id: s for s in await handle.steps()}
    assert steps["review"].status == "CANCELLED" and "PT0.3S" in (
        steps["review"].failure_reason or ""
    )
    with pytest.raises(durable.StepNotWaitingError):  # it was withdrawn, not completed
        await handle.complete_user_task("review", {})


async def test_interrupting_timer_cancels_a_running_activity(running: durable.App):
    timer = {
        "type": "TIMER",
        "duration": "PT0.3S",
        "interrupting": True,
        "targetStepId": "fallback",
    }
    await upload(
        running,
        step(
            "call",
            "SERVICE_TASK",
            jobType="flow-test.slow",
            nextStep="done",
            boundaryEvents=[timer],
        ),
        step("fallback", "SERVICE_TASK", jobType="flow-test.mark", nextStep="done"),
        END,
    )
    handle = await running.start_flow("TEST::flow")
    assert await handle.result(timeout=15) == {"fallback": True}
    assert calls["slow-start"] == 1 and calls["slow-cancelled"] == 1


async def test_non_interrupting_timer_keeps_the_step_active(running: durable.App):
    timer = {"type": "TIMER", "duration": "PT0.2S", "interrupting": False, "targetStepId": "remind"}
    await upload(
        running,
        step("review", "USER_TASK", nextStep="done", boundaryEvents=[timer]),
        step("remind", "SERVICE_TASK", jobType="flow-test.mark"),  # a dead end
        END,
    )
    handle = await running.start_flow("TEST::flow")
    desc = await _wait_for_steps(handle, ("review",), lambda: calls["remind"] == 1)
    assert desc.variables == {"remind": True}
    await handle.complete_user_task("review", {"ok": 1})
    assert await handle.result(timeout=15) == {"remind": True, "ok": 1}
    steps = [(s.step_id, s.status) for s in await handle.steps()]
    assert ("review", "COMPLETED") in steps and ("remind", "COMPLETED") in steps


async def test_parallel_with_a_user_task_merges_in_declaration_order(running: durable.App):
    await upload(
        running,
        step("split", "PARALLEL_GATEWAY", parallelNextSteps=["a", "b"], joinStep="join"),
        step("a", "USER_TASK", nextStep="join"),
        step("b", "TRANSFORMATION", transformations={"who": "b", "fromB": 1}, nextStep="join"),
        step("join", "JOIN_GATEWAY", nextStep="done"),
        END,
    )
    handle = await running.start_flow("TEST::flow", variables={"who": "start"})
    desc = await _wait_for_steps(handle, ("a",))
    assert desc.variables is not None and desc.variables["fromB"] == 1
    await handle.complete_user_task("a", {"who": "a", "fromA": 1})
    # b finished first, but a is declared first: b's write wins at the join
    assert await handle.result(timeout=15) == {"who": "b", "fromA": 1, "fromB": 1}


async def test_end_cancels_what_is_still_active(running: durable.App):
    await upload(
        running,
        step("split", "PARALLEL_GATEWAY", parallelNextSteps=["a", "quick"], joinStep="join"),
        step("a", "USER_TASK", nextStep="join"),
        step("quick", "TRANSFORMATION", transformations={"q": 1}, nextStep="stop"),
        step("join", "JOIN_GATEWAY", nextStep="done"),
        step("stop", "END"),
        END,
    )
    handle = await running.start_flow("TEST::flow")
    assert await handle.result(timeout=15) == {"q": 1}
    steps = {s.step_id: s.status for s in await handle.steps()}
    assert steps["a"] == "CANCELLED" and steps["stop"] == "COMPLETED" and "done" not in steps


async def test_cancel_while_waiting(running: durable.App):
    await upload(running, step("review", "USER_TASK", nextStep="done"), END)
    handle = await running.start_flow("TEST::flow")
    await _wait_for_steps(handle, ("review",))
    await handle.cancel()
    with pytest.raises(durable.WorkflowFailed) as failed:
        await handle.result(timeout=15)
    assert failed.value.status == "CANCELLED"
    [review] = await handle.steps()
    assert review.status == "CANCELLED"


async def test_chaining_starts_the_next_definition_with_the_final_variables(running: durable.App):
    await upload(
        running,
        step("t", "TRANSFORMATION", transformations={"n": "${n + 1}"}, nextStep="done"),
        END,
        id="TEST::second",
    )
    await upload(
        running,
        step("t", "TRANSFORMATION", transformations={"n": "${n * 10}"}, nextStep="done"),
        END,
        id="TEST::first",
        autoStartNextWorkflow=True,
        nextWorkflowId="TEST::second",
    )
    first = await running.start_flow("TEST::first", variables={"n": 4})
    assert await first.result(timeout=15) == {"n": 40}
    [second] = await running.list_runs(workflow="TEST::second")
    assert await running.handle(second.run_id).result(timeout=15) == {"n": 41}


async def test_runs_stay_pinned_to_their_version(app: durable.App):
    await upload(app, step("t", "TRANSFORMATION", transformations={"v": 1}, nextStep="done"), END)
    old = await app.start_flow("TEST::flow")
    await upload(app, step("t", "TRANSFORMATION", transformations={"v": 2}, nextStep="done"), END)
    new = await app.start_flow("TEST::flow")
    pinned = await app.start_flow("TEST::flow", version=1)
    async with app.worker():
        assert (await old.result(timeout=15))["v"] == 1
        assert (await new.result(timeout=15))["v"] == 2
        assert (await pinned.result(timeout=15))["v"] == 1
    with pytest.raises(durable.DefinitionNotFoundError):
        await app.start_flow("TEST::flow", version=3)
    with pytest.raises(durable.DefinitionNotFoundError):
        await app.start_flow("TEST::nope")


async def test_external_job_poll_complete_and_fail(running: durable.App):
    await upload(
        running,
        step("remote", "SERVICE_TASK", jobType="remote-only", retryCount=1, nextStep="done"),
        END,
    )
    handle = await running.start_flow("TEST::flow", variables={"order": "o-1"})
    job = await _poll(running, "w1")
    assert job.instance_id == handle.run_id and job.step_id == "remote"
    assert job.variables == {"order": "o-1"} and job.retries_remaining == 1
    assert await running.jobs.poll("w2", ["remote-only"]) == []  # held by w1
    await running.jobs.complete(job.id, "w1", {"shipped": True})
    await running.jobs.complete(job.id, "w1", {"shipped": True})  # repeated: a no-op
    with pytest.raises(durable.JobConflictError):
        await running.jobs.complete(job.id, "w2", {})
    assert await handle.result(timeout=15) == {"order": "o-1", "shipped": True}

    failing = await running.start_flow("TEST::flow")
    job = await _poll(running, "w1")
    await running.jobs.fail(job.id, "w1", "try again", retryable=True)
    again = await _poll(running, "w2")
    assert again.id == job.id and again.attempt == 2 and again.retries_remaining == 0
    await running.jobs.fail(again.id, "w2", "card declined", retryable=True)
    with pytest.raises(durable.WorkflowFailed) as failed:
        await failing.result(timeout=15)
    assert (
        "card declined" in failed.value.error_message and "'remote'" in failed.value.error_message
    )
    with pytest.raises(durable.JobNotFoundError):
        await running.jobs.complete("nope", "w1", {})


async def _poll(app: durable.App, worker: str) -> durable.flow.Job:
    for _ in range(300):
        jobs = await app.jobs.poll(worker, ["remote-only"])
        if jobs:
            return jobs[0]
        await asyncio.sleep(0.02)
    raise AssertionError("no job was queued")


async def _wait_for_steps(
    handle: durable.Handle[Any], steps: tuple[str, ...], also: Any = None
) -> durable.RunDescription:
    for _ in range(500):
        desc = await handle.describe()
        waiting = desc.current_steps == steps and desc.status is durable.Status.WAITING
        if waiting and (also is None or also()):
            return desc
        await asyncio.sleep(0.02)
    raise AssertionError(f"the run never waited at {steps}: {desc}")


async def test_a_handler_sees_the_flows_definition_id_as_its_workflow(running: durable.App):
    await upload(
        running, step("who", "SERVICE_TASK", jobType="flow-test.whoami", nextStep="done"), END
    )
    handle = await running.start_flow("TEST::flow")
    result = await handle.result(timeout=15)
    assert result == {"workflow": "TEST::flow", "run": handle.run_id}
