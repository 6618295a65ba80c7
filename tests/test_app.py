"""The client API: idempotent start, handles, listing, and clear errors for bad input."""

from __future__ import annotations

from collections import Counter

import pytest

import durable

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    bodies.clear()


bodies: Counter[str] = Counter()


@durable.activity
async def mark(label: str) -> str:
    bodies[label] += 1
    return label


@durable.workflow(name="app-once")
async def once(ctx: durable.Context, label: str) -> str:
    return await mark(label)


@durable.workflow(name="app-other")
async def other(ctx: durable.Context, label: str) -> str:
    return label


async def test_second_start_with_same_id_returns_same_run_and_runs_once(app):
    async with app.worker():
        first = await app.start(once, "idem", id="same-id")
        second = await app.start(once, "idem", id="same-id")
        assert first.run_id == second.run_id == "same-id"
        assert await first.result(timeout=10) == "idem"
        third = await app.start(once, "idem", id="same-id")  # after completion too
        assert await third.result(timeout=10) == "idem"
    assert bodies["idem"] == 1
    assert len(await app.list_runs(workflow="app-once")) == 1


async def test_start_by_name_and_generated_ids(app):
    async with app.worker():
        a = await app.start("app-once", "by-name")
        b = await app.start(once, "by-name-2")
        assert a.run_id != b.run_id
        assert await a.result(timeout=10) == "by-name"


async def test_same_id_for_another_workflow_is_a_conflict(app):
    await app.start(once, "x", id="taken")
    with pytest.raises(durable.RunConflictError, match="taken.*app-once"):
        await app.start(other, "x", id="taken")


async def test_unregistered_workflow_name(app):
    with pytest.raises(durable.NotRegisteredError, match="no workflow named 'nope'.*app-once"):
        await app.start("nope")


async def test_wrong_argument_types_name_the_workflow_and_argument(app):
    with pytest.raises(durable.SerializationError, match="workflow 'app-once': argument 'label'"):
        await app.start(once, ["not", "a", "string"])
    with pytest.raises(durable.SerializationError, match="workflow 'app-once'.*takes"):
        await app.start(once, "a", "b")
    with pytest.raises(durable.SerializationError, match="workflow 'app-once'.*label"):
        await app.start(once)
    assert await app.list_runs() == []  # nothing was stored


async def test_unknown_run_id(app):
    handle = app.handle("missing")
    with pytest.raises(durable.RunNotFoundError, match="'missing'"):
        await handle.describe()
    with pytest.raises(durable.RunNotFoundError):
        await handle.result(timeout=1)
    with pytest.raises(durable.RunNotFoundError):
        await handle.cancel()
    with pytest.raises(durable.RunNotFoundError):
        await handle.history()


async def test_list_runs_filters(app):
    async with app.worker():
        await (await app.start(once, "l1", id="l1")).result(timeout=10)
        await (await app.start(other, "l2", id="l2")).result(timeout=10)
    waiting = await app.start(other, "l3", id="l3")  # no worker: stays PENDING
    assert {r.run_id for r in await app.list_runs()} == {"l1", "l2", "l3"}
    assert [r.run_id for r in await app.list_runs(workflow="app-other", status="COMPLETED")] == [
        "l2"
    ]
    pending = await app.list_runs(status=durable.Status.PENDING)
    assert [r.run_id for r in pending] == [waiting.run_id]


@durable.workflow(name="app-fails")
async def fails(ctx: durable.Context) -> None:
    await mark("before-failure")
    raise RuntimeError("broken on purpose")


async def test_failed_run_reports_cause(app):
    async with app.worker():
        handle = await app.start(fails, id="f1")
        with pytest.raises(durable.WorkflowFailed) as info:
            await handle.result(timeout=10)
    assert info.value.status == "FAILED" and info.value.error_type == "RuntimeError"
    assert "broken on purpose" in str(info.value) and "Traceback" in info.value.traceback
    desc = await handle.describe()
    assert desc.status is durable.Status.FAILED and desc.error["type"] == "RuntimeError"


@durable.workflow(name="app-bad-await")
async def bad_await(ctx: durable.Context) -> None:
    import asyncio

    await asyncio.sleep(0.01)


async def test_non_durable_await_fails_with_the_replacement_named(app):
    async with app.worker():
        handle = await app.start(bad_await, id="bad-await")
        with pytest.raises(durable.WorkflowFailed, match="ctx.sleep instead of asyncio.sleep"):
            await handle.result(timeout=10)


def test_activity_outside_a_workflow_is_a_plain_call():
    assert durable.activity(lambda x: x * 2)(21) == 42


async def test_result_timeout(app):
    handle = await app.start(once, "no-worker", id="t1")
    with pytest.raises(TimeoutError, match="t1.*PENDING"):
        await handle.result(timeout=0.2)


def test_bad_dsn():
    with pytest.raises(durable.ConfigurationError, match="unsupported DSN"):
        durable.App("mysql://x")
    with pytest.raises(durable.ConfigurationError, match="not open"):
        durable.App("sqlite:///x.db").store  # noqa: B018


@durable.activity
async def with_option_names(timeout: int, retry: str) -> str:
    return f"{timeout}-{retry}"


@durable.workflow(name="app-option-names")
async def option_names(ctx: durable.Context) -> str:
    return await with_option_names(timeout=5, retry="yes")  # the activity's own arguments


async def test_activity_arguments_named_like_run_options_reach_the_activity(app):
    async with app.worker():
        assert await (await app.start(option_names)).result(timeout=10) == "5-yes"
