"""``describe().blocked_on``: what an open run waits for, each kind, on both stores."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

import durable
from durable.runtime import _dispatch

pytestmark = pytest.mark.anyio

gate: dict[str, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def _suspend_on_short_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_dispatch, "SHORT_WAIT", 0.0)


@durable.workflow(name="bo-signal")
async def wait_go(ctx: durable.Context) -> str:
    return str(await ctx.wait_signal("approve"))


@durable.workflow(name="bo-signal-timeout")
async def wait_go_timeout(ctx: durable.Context) -> str:
    return str(await ctx.wait_signal("approve", timeout=3600))


@durable.workflow(name="bo-sleep")
async def sleeper(ctx: durable.Context) -> None:
    await ctx.sleep(3600)


@durable.activity(retry=durable.RetryPolicy(max_attempts=3, initial_interval=3600))
async def bo_flaky() -> None:
    raise ConnectionError("the bank is down")


@durable.workflow(name="bo-retry")
async def retrying(ctx: durable.Context) -> None:
    await bo_flaky()


@durable.workflow(name="bo-parent")
async def parent(ctx: durable.Context) -> str:
    return str(await ctx.child(wait_go))


@durable.activity
async def bo_hold() -> str:
    await gate["release"].wait()
    return "held"


@durable.workflow(name="bo-hold", queue="bo-one")
async def holder(ctx: durable.Context) -> str:
    return await bo_hold()


async def until_blocked(handle: durable.Handle[Any], kind: str) -> durable.BlockedOn:
    with anyio.fail_after(15):
        while True:
            blocked = (await handle.describe()).blocked_on
            if blocked is not None and blocked.kind == kind:
                return blocked
            await anyio.sleep(0.05)


async def test_a_signal_wait_names_the_signal_and_its_timeout(app):
    async with app.worker():
        h = await app.start(wait_go, id="s1")
        blocked = await until_blocked(h, "signal")
        assert "waiting for signal 'approve' since" in blocked.message
        assert "times out" not in blocked.message and blocked.since is not None
        t = await app.start(wait_go_timeout, id="s2")
        assert "times out at" in (await until_blocked(t, "signal")).message
        await h.signal("approve", "yes")
        assert await h.result(timeout=15) == "yes"
    assert (await h.describe()).blocked_on is None  # ended


async def test_a_sleep_is_a_timer_and_a_backoff_names_the_error(app):
    async with app.worker():
        s = await app.start(sleeper, id="t1")
        assert "sleeping until" in (await until_blocked(s, "timer")).message
        r = await app.start(retrying, id="r1")
        blocked = await until_blocked(r, "retry_backoff")
        assert "'bo_flaky' failed (ConnectionError: the bank is down); attempt 2 at" in (
            blocked.message
        ), blocked.message


async def test_a_parent_waits_for_its_child_which_waits_for_a_signal(app):
    async with app.worker():
        p = await app.start(parent, id="p1")
        blocked = await until_blocked(p, "child")
        [kid] = (await p.describe()).children
        assert f"waiting for child run '{kid}' to end" in blocked.message
        assert "'approve'" in (await until_blocked(app.handle(kid), "signal")).message


async def test_no_worker_then_a_busy_queue_at_its_limit(dsn):
    gate["release"] = asyncio.Event()
    async with durable.App(dsn, queues=[durable.Queue("bo-one", concurrency=1)]) as app:
        first = await app.start(holder, id="q1")
        blocked = await until_blocked(first, "no_worker")
        assert blocked.message == "no live worker serves queue 'bo-one'"
        async with app.worker(queues=["bo-one"]):
            running = await until_blocked(first, "lease")
            assert "running on worker" in running.message
            second = await app.start(holder, id="q2")
            third = await app.start(holder, id="q3")
            assert (await until_blocked(second, "queue_limit")).message == (
                "queue 'bo-one' at its limit of 1: 0 runs ahead"
            )
            assert "1 run ahead" in (await until_blocked(third, "queue_limit")).message
            gate["release"].set()
            for h in (first, second, third):
                assert await h.result(timeout=15) == "held"


async def test_a_run_held_by_a_dead_worker_is_a_lease(app):
    await app.start(wait_go, id="ghosted")
    [run] = await app.store.claim("ghost-worker", 1, 60)
    blocked = await until_blocked(app.handle(run.id), "lease")
    assert "held by worker 'ghost-worker', which is not alive" in blocked.message
    assert "its lease runs out at" in blocked.message


async def test_an_unknown_workflow_is_parked(app):
    await app.store.create_run("unknown-1", "no-such-workflow", "[]")
    async with app.worker():
        blocked = await until_blocked(app.handle("unknown-1"), "parked")
    assert "no-such-workflow" in blocked.message


def _flow(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "BO::flow",
        "name": "Blocked",
        "steps": [*steps, {"id": "done", "name": "Done", "type": "END"}],
    }


async def test_a_user_task_and_an_external_job_are_named(app):
    await app.definitions.upload(
        _flow({"id": "review", "name": "Review", "type": "USER_TASK", "nextStep": "done"})
    )
    async with app.worker():
        h = await app.start_flow("BO::flow")
        blocked = await until_blocked(h, "user_task")
        assert "waiting for user task 'review' to be completed since" in blocked.message
    job_flow = _flow(
        {"id": "charge", "name": "Charge", "type": "SERVICE_TASK", "jobType": "bo.external",
         "nextStep": "done"}
    )  # fmt: skip
    await app.definitions.upload({**job_flow, "id": "BO::job"})
    async with app.worker():
        j = await app.start_flow("BO::job")
        blocked = await until_blocked(j, "job")
        assert "job 'bo.external' of step 'charge' (queued for a job worker)" in blocked.message
        [_job] = await app.jobs.poll("job-worker-1", ["bo.external"])
        taken = await until_blocked(j, "job")
        assert "taken by job worker 'job-worker-1'" in taken.message


async def test_a_paused_run_says_why_until_it_is_resumed(app):
    async with app.worker():
        h = await app.start(wait_go, id="pz")
        await until_blocked(h, "signal")
        await h.pause("bank down: ConnectionError")
        paused = await until_blocked(h, "paused")
        assert paused.message == "paused: bank down: ConnectionError (resume it to go on)"
        await h.resume()
        await until_blocked(h, "signal")


async def test_a_park_names_the_divergence():
    """The words of a park for code that diverged from its journal (replay parks the run
    so; the facts are those the store reads)."""
    from durable._blocked import blocked_on
    from durable._wire import StoredError
    from durable.store import Diagnosis, RunRecord

    reason = StoredError.nondeterminism(
        durable.NonDeterminismError("r", 4, "activity 'charge'", "activity 'ship'")
    ).dumps_reason()
    parked = RunRecord("r", "wf", durable.Status.WAITING, "[]", None, None, reason, 1, False, 0,
                       0.0, 100.0)  # fmt: skip
    found = blocked_on(Diagnosis(parked, 200.0))
    assert found is not None and found.kind == "parked"
    assert found.message.startswith(
        "parked: the code asks for activity 'ship' where the journal holds activity 'charge'"
        " at seq 4"
    )


@durable.workflow(name="bo-rated", queue="bo-rated")
async def rated(ctx: durable.Context) -> str:
    return "ok"


async def test_a_queue_at_its_rate_limit(dsn):
    limited = durable.Queue("bo-rated", rate_limit=(1, 3600))
    async with durable.App(dsn, queues=[limited]) as app, app.worker(queues=["bo-rated"]):
        first = await app.start(rated, id="rate-1")
        assert await first.result(timeout=15) == "ok"
        second = await app.start(rated, id="rate-2")
        blocked = await until_blocked(second, "queue_limit")
    assert blocked.message == "queue 'bo-rated' at its rate limit of 1 per 1 h: 0 runs ahead"
