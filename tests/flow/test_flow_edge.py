"""Edge cases of JSON flows: replay, parallel sections, timers, cancellation, END, jobs."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

import durable
from durable.runtime import _dispatch

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _suspend_on_short_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests restart workers around sub-second timers: runs must suspend on them."""
    monkeypatch.setattr(_dispatch, "SHORT_WAIT", 0.0)


calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    calls.clear()


@durable.activity(name="edge.mark")
async def mark(task: dict[str, Any]) -> dict[str, Any]:
    calls[task["stepId"]] += 1
    return {task["stepId"]: True}


@durable.activity(name="edge.slow")
async def slow(task: dict[str, Any]) -> dict[str, Any]:
    calls["slow-start"] += 1
    await asyncio.sleep(float(task["variables"].get("slowFor", 1.0)))
    calls["slow-end"] += 1
    return {"slow": "done"}


@durable.activity(name="edge.boom")
async def boom(task: dict[str, Any]) -> dict[str, Any]:
    raise durable.NonRetryableError("boom in " + task["stepId"])


def step(step_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "type": kind, **fields}


def timer(duration: str, target: str, *, interrupting: bool) -> dict[str, Any]:
    return {
        "type": "TIMER",
        "duration": duration,
        "interrupting": interrupting,
        "targetStepId": target,
    }


END = step("done", "END")


async def upload(app: durable.App, *steps: dict[str, Any], **top: Any) -> str:
    definition = {"id": top.pop("id", "EDGE::flow"), "name": "Edge flow", "steps": list(steps)}
    ref = await app.definitions.upload({**definition, **top})
    return ref.id


async def wait_for(handle: durable.Handle[Any], check: Any, what: str) -> durable.RunDescription:
    desc = None
    for _ in range(150):
        desc = await handle.describe()
        if check(desc):
            return desc
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} never happened: {desc}")


def waiting_at(*steps: str) -> Any:
    def check(desc: durable.RunDescription) -> bool:
        return desc.status is durable.Status.WAITING and sorted(desc.current_steps) == sorted(steps)

    return check


async def poll_job(app: durable.App, worker: str, job_type: str) -> durable.flow.Job:
    for _ in range(150):
        jobs = await app.jobs.poll(worker, [job_type])
        if jobs:
            return jobs[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {job_type} job was queued")


async def statuses(handle: durable.Handle[Any]) -> list[tuple[str, str]]:
    return [(s.step_id, s.status) for s in await handle.steps()]


async def outcome(handle: durable.Handle[Any]) -> str:
    try:
        await handle.result(timeout=5)
    except durable.WorkflowFailed as failed:
        return str(failed.status)
    return "COMPLETED"


# -- replay across suspensions and worker restarts ----------------------------------------
async def test_nested_parallel_user_tasks_replay_and_merge_in_declaration_order(
    app: durable.App,
):
    await upload(
        app,
        step("split", "PARALLEL_GATEWAY", parallelNextSteps=["inner", "c"], joinStep="join"),
        step("inner", "PARALLEL_GATEWAY", parallelNextSteps=["a", "b"], joinStep="ijoin"),
        step("a", "USER_TASK", nextStep="ijoin"),
        step("b", "USER_TASK", nextStep="ijoin"),
        step("ijoin", "JOIN_GATEWAY", nextStep="after"),
        step("after", "SERVICE_TASK", jobType="edge.mark", nextStep="join"),
        step("c", "USER_TASK", nextStep="join"),
        step("join", "JOIN_GATEWAY", nextStep="done"),
        END,
    )
    handle = await app.start_flow("EDGE::flow", variables={"who": "start", "keep": 1})
    async with app.worker(poll_interval=0.2):
        await wait_for(handle, waiting_at("a", "b", "c"), "waiting at a, b, c")
        await handle.complete_user_task("c", {"who": "c", "fromC": 1})
        await wait_for(handle, waiting_at("a", "b"), "c completed")
    async with app.worker(poll_interval=0.2):  # a fresh worker replays the journal
        await handle.complete_user_task("b", {"who": "b", "fromB": 1})
        await wait_for(handle, waiting_at("a"), "b completed")
        await handle.complete_user_task("a", {"who": "a", "fromA": 1})
        result = await handle.result(timeout=5)
    # declaration order: inner (a then b) before c, whatever finished first
    assert result == {"who": "c", "keep": 1, "fromA": 1, "fromB": 1, "fromC": 1, "after": True}
    assert calls["after"] == 1
    assert sorted(await statuses(handle)) == sorted(
        [
            ("split", "COMPLETED"),
            ("inner", "COMPLETED"),
            ("a", "COMPLETED"),
            ("b", "COMPLETED"),
            ("c", "COMPLETED"),
            ("ijoin", "COMPLETED"),
            ("after", "COMPLETED"),
            ("join", "COMPLETED"),
            ("done", "COMPLETED"),
        ]
    )


# -- END ----------------------------------------------------------------------------------
async def test_end_with_chaining_never_runs_a_step_it_cancelled(app: durable.App):
    await upload(app, step("t", "TRANSFORMATION", transformations={"n": 1}, nextStep="done"),
                 END, id="EDGE::next")  # fmt: skip
    await upload(
        app,
        # the first branch opens a step with a boundary timer: its body starts a round later
        step("split", "PARALLEL_GATEWAY", parallelNextSteps=["work", "quick"], joinStep="join"),
        step(
            "work",
            "SERVICE_TASK",
            jobType="edge.mark",
            nextStep="join",
            boundaryEvents=[timer("PT30S", "join", interrupting=True)],
        ),
        step("quick", "TRANSFORMATION", transformations={"q": 1}, nextStep="stop"),
        step("join", "JOIN_GATEWAY", nextStep="done"),
        step("stop", "END"),
        END,
        autoStartNextWorkflow=True,
        nextWorkflowId="EDGE::next",
    )
    handle = await app.start_flow("EDGE::flow")
    async with app.worker(poll_interval=0.2):
        assert await handle.result(timeout=5) == {"q": 1}
        await asyncio.sleep(0.1)
    steps = dict(await statuses(handle))
    assert steps["work"] == "CANCELLED" and steps["stop"] == "COMPLETED"
    assert calls["work"] == 0, (
        "END cancelled step 'work' before its body started, yet its SERVICE_TASK handler "
        "ran anyway while END was starting the chained run"
    )


async def test_cancel_while_end_starts_the_chained_run(app: durable.App, monkeypatch):
    await upload(app, step("t", "TRANSFORMATION", transformations={"n": 1}, nextStep="done"),
                 END, id="EDGE::next")  # fmt: skip
    await upload(
        app,
        step("t", "TRANSFORMATION", transformations={"x": 1}, nextStep="done"),
        END,
        autoStartNextWorkflow=True,
        nextWorkflowId="EDGE::next",
    )
    store = app.store
    original = store.get_definition
    entered = asyncio.Event()

    async def slow_lookup(definition_id: str, version: int | None = None) -> Any:
        if definition_id == "EDGE::next" and version is None:  # only start_next asks this way
            entered.set()
            await asyncio.sleep(0.8)
        return await original(definition_id, version)

    monkeypatch.setattr(store, "get_definition", slow_lookup)
    handle = await app.start_flow("EDGE::flow")
    async with app.worker(poll_interval=0.2):
        await asyncio.wait_for(entered.wait(), 3)
        await handle.cancel()
        status = await outcome(handle)
    steps = await statuses(handle)
    chained = await app.list_runs(workflow="EDGE::next")
    assert ("done", "RUNNING") not in steps, (
        f"the run ended {status} but its END step is still RUNNING in the history: {steps}"
    )
    assert status == "CANCELLED" or chained, (
        f"the run ended {status} after a cancellation swallowed at END, "
        f"and the chained run was never started: {steps}"
    )


async def test_missing_next_definition_fails_the_end_step(app: durable.App):
    await upload(
        app,
        step("t", "TRANSFORMATION", transformations={"x": 1}, nextStep="done"),
        END,
        autoStartNextWorkflow=True,
        nextWorkflowId="EDGE::missing",
    )
    handle = await app.start_flow("EDGE::flow")
    async with app.worker(poll_interval=0.2):
        with pytest.raises(durable.WorkflowFailed) as failed:
            await handle.result(timeout=5)
    steps = dict(await statuses(handle))
    # docs/flows.md: "If the next definition does not exist, the END step fails and so does
    # the run."
    assert steps.get("done") == "FAILED", (
        f"END whose chained definition is missing is recorded {steps.get('done')}, not FAILED"
    )
    assert "'done'" in failed.value.error_message, (
        f"the run's failure does not name the END step: {failed.value.error_message}"
    )


# -- visibility of waiting steps ------------------------------------------------------------
async def test_user_task_in_a_branch_is_completable_while_a_sibling_activity_runs(
    app: durable.App,
):
    await upload(
        app,
        step("split", "PARALLEL_GATEWAY", parallelNextSteps=["work", "review"], joinStep="join"),
        step("work", "SERVICE_TASK", jobType="edge.slow", nextStep="join"),
        step("review", "USER_TASK", nextStep="join"),
        step("join", "JOIN_GATEWAY", nextStep="done"),
        END,
    )
    handle = await app.start_flow("EDGE::flow", variables={"slowFor": 1.2})
    async with app.worker(poll_interval=0.2):
        for _ in range(50):
            if calls["slow-start"]:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # the user task has been waiting for a while now
        assert calls["slow-end"] == 0
        desc = await handle.describe()
        try:
            await handle.complete_user_task("review", {"ok": True})
        except durable.StepNotWaitingError as exc:
            raise AssertionError(
                "USER_TASK 'review' waits (its sibling branch runs an activity), but its start "
                f"record is still in the executor's buffer: current_steps={desc.current_steps}, "
                f"complete_user_task raised {exc}"
            ) from None
        assert await handle.result(timeout=5) == {"slowFor": 1.2, "slow": "done", "ok": True}


# -- loops ----------------------------------------------------------------------------------
async def test_loop_back_to_the_same_user_task_gets_a_fresh_activation(app: durable.App):
    await upload(
        app,
        step("review", "USER_TASK", nextStep="count"),
        step("count", "TRANSFORMATION", transformations={"n": "${n + 1}"}, nextStep="route"),
        step("route", "DECISION", conditionalNextSteps={"n < 2": "review", "true": "done"}),
        END,
    )
    handle = await app.start_flow("EDGE::flow", variables={"n": 0})
    async with app.worker(poll_interval=0.2):
        await wait_for(handle, waiting_at("review"), "first review")
    # no worker: both completions are meant for the first activation
    await handle.complete_user_task("review", {"pass": 1})
    await handle.complete_user_task("review", {"pass": "repeat"})
    async with app.worker(poll_interval=0.2):
        await wait_for(
            handle,
            lambda d: waiting_at("review")(d) and d.variables.get("n") == 1,
            "second review",
        )
        desc = await handle.describe()
        assert desc.variables == {"n": 1, "pass": 1}
        await handle.complete_user_task("review", {"pass": 2})
        assert await handle.result(timeout=5) == {"n": 2, "pass": 2}
    reviews = [s for s in await handle.steps() if s.step_id == "review"]
    assert [s.status for s in reviews] == ["COMPLETED", "COMPLETED"]
    assert reviews[0].id != reviews[1].id


# -- external jobs --------------------------------------------------------------------------
async def test_interrupting_timer_withdraws_an_external_job_across_a_restart(app: durable.App):
    await upload(
        app,
        step(
            "remote",
            "SERVICE_TASK",
            jobType="edge-remote",
            nextStep="done",
            boundaryEvents=[timer("PT0.5S", "review", interrupting=True)],
        ),
        step("review", "USER_TASK", nextStep="done"),
        END,
    )
    handle = await app.start_flow("EDGE::flow", variables={"v": 1})
    async with app.worker(poll_interval=0.2):
        job = await poll_job(app, "w1", "edge-remote")
        await wait_for(handle, waiting_at("remote"), "waiting on the job")
    async with app.worker(poll_interval=0.2):  # the timer fires in a replayed run
        await wait_for(handle, waiting_at("review"), "timer fired")
        record = await app.store.get_job(job.id)
        assert record is not None and record.status == "CANCELLED"
        # the timer closed the job: the late completion is a no-op that changes nothing
        await app.jobs.complete(job.id, "w1", {"late": True})
        await app.jobs.fail(job.id, "w1", "late", retryable=False)
        assert await app.store.get_job(job.id) == record
        assert await app.jobs.poll("w2", ["edge-remote"]) == []
        await handle.complete_user_task("review", {"r": 1})
        assert await handle.result(timeout=5) == {"v": 1, "r": 1}
    assert await statuses(handle) == [
        ("remote", "CANCELLED"),
        ("review", "COMPLETED"),
        ("done", "COMPLETED"),
    ]


async def test_end_in_a_branch_cancels_the_sibling_external_job(app: durable.App):
    await upload(
        app,
        step("split", "PARALLEL_GATEWAY", parallelNextSteps=["remote", "gate"], joinStep="join"),
        step("remote", "SERVICE_TASK", jobType="edge-remote", nextStep="join"),
        step("gate", "WAIT", nextStep="stop"),
        step("join", "JOIN_GATEWAY", nextStep="done"),
        step("stop", "END"),
        END,
    )
    handle = await app.start_flow("EDGE::flow")
    async with app.worker(poll_interval=0.2):
        job = await poll_job(app, "w1", "edge-remote")
        await wait_for(handle, waiting_at("remote", "gate"), "both branches waiting")
        await handle.signal("gate", {"g": 1})
        assert await handle.result(timeout=5) == {"g": 1}
        record = await app.store.get_job(job.id)
        assert record is not None and record.status == "CANCELLED"
        await app.jobs.complete(job.id, "w1", {"late": True})  # the END closed it: a no-op
        assert await app.store.get_job(job.id) == record
        assert await handle.result(timeout=5) == {"g": 1}
    steps = dict(await statuses(handle))
    assert steps["remote"] == "CANCELLED" and steps["stop"] == "COMPLETED"


# -- cancellation ---------------------------------------------------------------------------
async def test_cancel_in_a_parallel_section_with_an_armed_timer_and_a_job(app: durable.App):
    await upload(
        app,
        step("split", "PARALLEL_GATEWAY", parallelNextSteps=["review", "remote"], joinStep="join"),
        step(
            "review",
            "USER_TASK",
            nextStep="join",
            boundaryEvents=[
                timer("PT30S", "done", interrupting=True),
                timer("PT0.2S", "nudge", interrupting=False),
            ],
        ),
        step("nudge", "USER_TASK", nextStep="join"),
        step("remote", "SERVICE_TASK", jobType="edge-remote", nextStep="join"),
        step("join", "JOIN_GATEWAY", nextStep="done"),
        END,
    )
    handle = await app.start_flow("EDGE::flow")
    async with app.worker(poll_interval=0.2):
        job = await poll_job(app, "w1", "edge-remote")
        await wait_for(handle, waiting_at("review", "nudge", "remote"), "non-interrupting fired")
    async with app.worker(poll_interval=0.2):  # the cancellation unwinds a replayed run
        await handle.cancel()
        assert await outcome(handle) == "CANCELLED"
    steps = await statuses(handle)
    assert sorted(steps) == sorted(
        [
            ("split", "COMPLETED"),
            ("review", "CANCELLED"),
            ("remote", "CANCELLED"),
            ("nudge", "CANCELLED"),
        ]
    ), steps
    record = await app.store.get_job(job.id)
    assert record is not None and record.status == "CANCELLED"


async def test_cancel_of_a_released_flow_run_closes_its_steps_and_jobs(app: durable.App):
    await upload(
        app,
        step("split", "PARALLEL_GATEWAY", parallelNextSteps=["remote", "work"], joinStep="join"),
        step("remote", "SERVICE_TASK", jobType="edge-remote", nextStep="join"),
        step("work", "SERVICE_TASK", jobType="edge.slow", nextStep="more"),
        step("more", "SERVICE_TASK", jobType="edge.mark", nextStep="join"),
        step("join", "JOIN_GATEWAY", nextStep="done"),
        END,
    )
    handle = await app.start_flow("EDGE::flow", variables={"slowFor": 0.4})
    async with app.worker(poll_interval=0.2):
        job = await poll_job(app, "w1", "edge-remote")
        while not calls["slow-start"]:
            await asyncio.sleep(0.02)
    # the stopping worker let 'work' finish, did not start 'more' and released the run
    desc = await handle.describe()
    assert desc.status is durable.Status.PENDING and calls["more"] == 0
    await handle.cancel()  # it ran once: a worker replays it to unwind its steps
    async with app.worker(poll_interval=0.2):
        assert await outcome(handle) == "CANCELLED"
    assert calls["more"] == 0
    record = await app.store.get_job(job.id)
    steps = await statuses(handle)
    assert record is not None and record.status == "CANCELLED", (
        "a released flow run was cancelled without unwinding: its external job is still "
        f"{record.status if record else None}; steps {steps}"
    )
    assert ("remote", "RUNNING") not in steps, f"cancelled run still shows RUNNING steps: {steps}"


# -- failures -------------------------------------------------------------------------------
async def test_failure_in_one_branch_ends_the_run_and_cancels_the_others(app: durable.App):
    await upload(
        app,
        step(
            "split",
            "PARALLEL_GATEWAY",
            parallelNextSteps=["review", "gate", "bad"],
            joinStep="join",
        ),
        step(
            "review",
            "USER_TASK",
            nextStep="join",
            boundaryEvents=[timer("PT30S", "join", interrupting=True)],
        ),
        step("gate", "WAIT", nextStep="bad2"),
        step("bad2", "SERVICE_TASK", jobType="edge.boom", nextStep="join"),
        step("bad", "SERVICE_TASK", jobType="edge-remote", nextStep="join"),
        step("join", "JOIN_GATEWAY", nextStep="done"),
        END,
    )
    handle = await app.start_flow("EDGE::flow")
    async with app.worker(poll_interval=0.2):
        job = await poll_job(app, "w1", "edge-remote")
        await wait_for(handle, waiting_at("review", "gate", "bad"), "three branches waiting")
        await handle.signal("gate")
        with pytest.raises(durable.WorkflowFailed) as failed:
            await handle.result(timeout=5)
    assert failed.value.status == "FAILED" and "'bad2'" in failed.value.error_message
    steps = dict(await statuses(handle))
    assert steps == {
        "split": "COMPLETED",
        "review": "CANCELLED",
        "gate": "COMPLETED",
        "bad2": "FAILED",
        "bad": "CANCELLED",
    }, steps
    record = await app.store.get_job(job.id)
    assert record is not None and record.status == "CANCELLED"


# -- boundary timers and replay -------------------------------------------------------------
async def test_non_interrupting_timer_path_survives_restarts(app: durable.App):
    await upload(
        app,
        step(
            "review",
            "USER_TASK",
            nextStep="after",
            boundaryEvents=[timer("PT0.2S", "remind", interrupting=False)],
        ),
        step("remind", "SERVICE_TASK", jobType="edge.mark", nextStep="ack"),
        step("ack", "WAIT", nextStep="noted"),
        step("noted", "SERVICE_TASK", jobType="edge.mark"),  # a dead end
        step("after", "SERVICE_TASK", jobType="edge.mark", nextStep="done"),
        END,
    )
    handle = await app.start_flow("EDGE::flow")
    async with app.worker(poll_interval=0.2):
        await wait_for(handle, waiting_at("review", "ack"), "the timer path waits")
    async with app.worker(poll_interval=0.2):
        await handle.signal("ack", {"acked": 1})
        await wait_for(
            handle, lambda d: waiting_at("review")(d) and d.variables.get("noted"), "ack taken"
        )
    async with app.worker(poll_interval=0.2):
        await handle.complete_user_task("review", {"ok": 1})
        result = await handle.result(timeout=5)
    assert result == {"remind": True, "acked": 1, "noted": True, "ok": 1, "after": True}
    assert dict(calls) == {"remind": 1, "noted": 1, "after": 1}
    assert sorted(await statuses(handle)) == sorted(
        [
            ("review", "COMPLETED"),
            ("remind", "COMPLETED"),
            ("ack", "COMPLETED"),
            ("noted", "COMPLETED"),
            ("after", "COMPLETED"),
            ("done", "COMPLETED"),
        ]
    )


async def test_completion_sent_before_the_deadline_beats_a_timer_due_during_downtime(
    app: durable.App,
):
    await upload(
        app,
        step(
            "review",
            "USER_TASK",
            nextStep="done",
            boundaryEvents=[timer("PT0.6S", "escalate", interrupting=True)],
        ),
        step("escalate", "SERVICE_TASK", jobType="edge.mark", nextStep="done"),
        END,
    )
    handle = await app.start_flow("EDGE::flow")
    async with app.worker(poll_interval=0.2):
        await wait_for(handle, waiting_at("review"), "review waiting")
    # no worker for a moment: the user completes in time, the deadline passes after that
    await handle.complete_user_task("review", {"approved": True})
    await asyncio.sleep(0.7)
    async with app.worker(poll_interval=0.2):
        result = await handle.result(timeout=5)
    assert result == {"approved": True}, (
        "the task was completed before its interrupting timer was due, but the timer won "
        f"because the worker was down when both were pending: result {result}, "
        f"steps {await statuses(handle)}"
    )


# -- a definition that loops without ever waiting --------------------------------------------
_BUSY_LOOP = r"""
import asyncio, resource, sys
import durable

resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

async def main(dsn):
    async with durable.App(dsn) as app:
        await app.definitions.upload({"id": "EDGE::spin", "name": "Spin", "steps": [
            {"id": "inc", "name": "Inc", "type": "TRANSFORMATION",
             "transformations": {"n": "${n + 0}"}, "nextStep": "route"},
            {"id": "route", "name": "Route", "type": "DECISION",
             "conditionalNextSteps": {"n < 10": "inc", "true": "done"}},
            {"id": "done", "name": "Done", "type": "END"}]})
        await app.definitions.upload({"id": "EDGE::other", "name": "Other", "steps": [
            {"id": "t", "name": "T", "type": "TRANSFORMATION",
             "transformations": {"ok": True}, "nextStep": "done"},
            {"id": "done", "name": "Done", "type": "END"}]})
        spin = await app.start_flow("EDGE::spin", variables={"n": 0})
        other = await app.start_flow("EDGE::other")
        async with app.worker(poll_interval=0.1):
            print("other:", await other.result(timeout=1), flush=True)
            print("spin:", (await spin.describe()).status, flush=True)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_loop_that_never_waits_does_not_freeze_the_worker(tmp_path):
    import subprocess
    import sys

    import anyio.to_thread

    command = [sys.executable, "-c", _BUSY_LOOP, f"sqlite:///{tmp_path / 'spin.db'}"]

    def run() -> subprocess.CompletedProcess[str] | str:
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=1.8)
        except subprocess.TimeoutExpired as exc:  # the child is killed
            return exc.stdout.decode() if isinstance(exc.stdout, bytes) else str(exc.stdout)

    done = await anyio.to_thread.run_sync(run)
    assert not isinstance(done, str), (
        "a flow looping through TRANSFORMATION/DECISION steps never yields: the worker's "
        "event loop is blocked for good (no other run progresses, no heartbeat, memory "
        f"grows); output so far: {done!r}"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "other: {'ok': True}" in done.stdout
