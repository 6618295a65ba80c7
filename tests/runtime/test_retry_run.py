"""Handle.retry(): a FAILED run goes on where it failed, under its id, on both stores."""

from __future__ import annotations

from collections import Counter

import pytest

import durable

pytestmark = pytest.mark.anyio

calls: Counter[str] = Counter()
fixed = {"activity": False, "workflow": False}


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    fixed.update(activity=False, workflow=False)


@durable.activity
async def rr_step(label: str) -> str:
    calls[label] += 1
    return label


@durable.activity(retry=durable.RetryPolicy(max_attempts=2, initial_interval=0.01))
async def rr_charge(label: str) -> str:
    calls[label] += 1
    if not fixed["activity"]:
        raise ConnectionError("the card service is down")
    return label


@durable.workflow(name="rr-activity")
async def failing_activity(ctx: durable.Context) -> list[str]:
    return [await rr_step("before"), await rr_charge("charge"), await rr_step("after")]


@durable.workflow(name="rr-code")
async def failing_code(ctx: durable.Context) -> str:
    first = await rr_step("one")
    if not fixed["workflow"]:  # the bug; the "deployed fix" flips it
        raise KeyError("total")
    return first + await rr_step("two")


@durable.workflow(name="rr-timeout", execution_timeout=1.5)
async def times_out(ctx: durable.Context) -> str:
    await rr_step("started")
    return str(await ctx.wait_signal("go"))


async def test_retry_runs_the_failed_activity_again_and_nothing_before_it(app):
    async with app.worker():
        h = await app.start(failing_activity, id="rr-1")
        with pytest.raises(durable.WorkflowFailed, match="card service"):
            await h.result(timeout=15)
        assert calls == {"before": 1, "charge": 2}
        fixed["activity"] = True
        await h.retry()
        assert await h.result(timeout=15) == ["before", "charge", "after"]
    assert calls == {"before": 1, "charge": 3, "after": 1}
    history = await h.history()
    errors = [e for e in history if e.event == "error"]
    assert errors and all(e.superseded for e in errors)  # the failure stays, superseded
    retried = [e for e in history if e.event == "retried"]
    assert len(retried) == 1 and retried[0].kind == "run"
    assert "card service" in retried[0].payload["message"]
    assert not [e for e in history if e.event == "result" and e.superseded]
    assert (await h.describe()).error is None


async def test_the_failed_activity_gets_a_fresh_budget_of_attempts(app):
    async with app.worker():
        h = await app.start(failing_activity, id="rr-budget")
        with pytest.raises(durable.WorkflowFailed):
            await h.result(timeout=15)
        await h.retry()  # not fixed: two more attempts, and it fails again
        with pytest.raises(durable.WorkflowFailed, match="card service"):
            await h.result(timeout=15)
    assert calls == {"before": 1, "charge": 4}


async def test_retry_after_a_fix_of_the_workflow_code(app):
    async with app.worker():
        h = await app.start(failing_code, id="rr-code")
        with pytest.raises(durable.WorkflowFailed, match="KeyError"):
            await h.result(timeout=15)
        fixed["workflow"] = True
        await h.retry()
        assert await h.result(timeout=15) == "onetwo"
    assert calls == {"one": 1, "two": 1}


async def test_a_run_that_timed_out_gets_its_execution_timeout_anew(app):
    async with app.worker():
        h = await app.start(times_out, id="rr-timeout")
        with pytest.raises(durable.WorkflowFailed, match="timed out"):
            await h.result(timeout=15)
        await h.retry()
        await h.signal("go", "now")
        assert await h.result(timeout=15) == "now"
    assert calls == {"started": 1}


async def test_only_a_failed_run_can_be_retried(app):
    async with app.worker():
        h = await app.start(failing_code, id="rr-ok")
        fixed["workflow"] = True
        await h.result(timeout=15)
    with pytest.raises(durable.RunStateError, match="only a FAILED run"):
        await h.retry()
    with pytest.raises(durable.RunNotFoundError):
        await app.handle("rr-missing").retry()


async def test_bulk_retry_reopens_exactly_the_failed_runs_of_the_filter(app):
    async with app.worker():
        failed = [await app.start(failing_code, id=f"rb{i}", tags={"t": "a"}) for i in range(3)]
        other = await app.start(failing_code, id="rb-other", tags={"t": "b"})
        for h in [*failed, other]:
            with pytest.raises(durable.WorkflowFailed):
                await h.result(timeout=15)
        fixed["workflow"] = True
        flt = durable.RunFilter(tags={"t": "a"})
        assert await app.bulk("retry", flt, dry_run=True) == 3
        assert await app.bulk("retry", flt) == 3
        for h in failed:
            assert await h.result(timeout=15) == "onetwo"
        assert await app.bulk("retry", flt) == 0
    assert (await other.describe()).status is durable.Status.FAILED
