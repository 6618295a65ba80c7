"""A result awaited in the process whose worker completed the run needs no database read."""

from __future__ import annotations

import pytest

import durable
from durable.store._completed import MAX_RESULT_CHARS, MAX_RUNS, CompletedResults

pytestmark = pytest.mark.anyio

attempts: list[int] = []


@durable.activity
async def cr_double(n: int) -> int:
    return 2 * n


@durable.activity(retry=durable.RetryPolicy(max_attempts=1))
async def cr_flaky() -> str:
    attempts.append(1)
    if len(attempts) == 1:
        raise ConnectionError("down")
    return "fixed"


@durable.workflow(name="cr-double")
async def double(ctx: durable.Context, n: int) -> int:
    return await cr_double(n)


@durable.workflow(name="cr-flaky")
async def flaky(ctx: durable.Context) -> str:
    return await cr_flaky()


async def test_a_result_completed_here_is_served_without_a_read(
    app: durable.App, monkeypatch: pytest.MonkeyPatch
):
    async with app.worker():
        handle = await app.start(double, 21)
        assert await handle.result(timeout=15) == 42
        by_id = app.handle(handle.run_id)  # a handle that does not know the workflow

        async def unreachable(run_id: str) -> None:
            raise AssertionError("the database was read")

        monkeypatch.setattr(app.store, "get_run", unreachable)
        assert await handle.result(timeout=1) == 42
        assert await by_id.result(timeout=1) == 42


async def test_a_failed_result_is_not_kept_a_retried_run_gives_its_new_result(app: durable.App):
    attempts.clear()
    async with app.worker():
        handle = await app.start(flaky)
        with pytest.raises(durable.WorkflowFailed):
            await handle.result(timeout=15)
        await handle.retry()
        assert await handle.result(timeout=15) == "fixed"


def test_the_memory_is_bounded():
    results = CompletedResults()
    results.add("big", "wf", '"' + "x" * MAX_RESULT_CHARS + '"')
    assert results.get("big") is None
    for i in range(MAX_RUNS + 1):
        results.add(f"r{i}", "wf", str(i))
    assert results.get("r0") is None
    assert results.get(f"r{MAX_RUNS}") == ("wf", str(MAX_RUNS))
    results.add("none", "wf", None)
    assert results.get("none") == ("wf", "null")


def test_a_result_is_served_from_memory_for_a_while_only(monkeypatch: pytest.MonkeyPatch):
    import time

    from durable.store import _completed

    results = CompletedResults()
    results.add("r", "wf", "1")
    later = time.monotonic() + _completed.MAX_AGE + 1
    monkeypatch.setattr(_completed.time, "monotonic", lambda: later)
    assert results.get("r") is None


async def test_a_run_started_under_a_pruned_runs_id_gives_its_own_result(app: durable.App):
    from datetime import timedelta

    async with app.worker():
        first = await app.start(double, 1, id="cr-reused")
        assert await first.result(timeout=15) == 2
        assert await app.prune(timedelta(0)) >= 1
        again = await app.start(double, 5, id="cr-reused")
        assert await again.result(timeout=15) == 10
