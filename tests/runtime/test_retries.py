"""Retries: policies, durable attempt counts and backoffs, and the error the workflow sees."""

from __future__ import annotations

import logging

import pytest

import durable
from durable.runtime import _dispatch

pytestmark = pytest.mark.anyio

attempts: list[tuple[str, int]] = []


@pytest.fixture(autouse=True)
def _fresh() -> None:
    attempts.clear()


FAST = durable.RetryPolicy(max_attempts=4, initial_interval=0.01, max_interval=0.05)


@durable.activity(retry=FAST)
async def fails_twice(label: str) -> str:
    attempt = durable.activity_info().attempt
    attempts.append((label, attempt))
    if attempt <= 2:
        raise ConnectionError(f"attempt {attempt} of {label} failed")
    return f"{label} ok on {attempt}"


@durable.workflow(name="retry-fails-twice")
async def retried(ctx: durable.Context, label: str) -> str:
    return await fails_twice(label)


async def test_failed_attempts_are_retried_and_journaled(app):
    async with app.worker():
        handle = await app.start(retried, "a", id="retry-a")
        assert await handle.result(timeout=10) == "a ok on 3"
    assert attempts == [("a", 1), ("a", 2), ("a", 3)]
    retries = [e.payload for e in await handle.history() if e.event == "retry"]
    assert [r["attempt"] for r in retries] == [2, 3]
    assert retries[0]["error"]["type"] == "ConnectionError"
    assert retries[1]["at"] > retries[0]["at"]


async def test_every_failed_attempt_logs_a_warning(app, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="durable.runtime")
    async with app.worker():
        handle = await app.start(retried, "b", id="retry-logged")
        assert await handle.result(timeout=10) == "b ok on 3"
    lines = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert len(lines) == 2, lines
    first, second = lines
    assert first.startswith("run retry-logged: activity ")
    assert "fails_twice attempt 1/4 failed: ConnectionError: attempt 1 of b failed" in first
    assert "; next attempt at 20" in first and first.endswith("Z")
    assert "attempt 2/4 failed" in second
    assert all(r.levelno == logging.WARNING for r in caplog.records if "attempt" in r.getMessage())


async def test_a_last_failed_attempt_logs_that_it_is_not_retried(
    app, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="durable.runtime")
    async with app.worker():
        handle = await app.start(catches, id="retry-last-logged")
        await handle.result(timeout=10)
    last = [r.getMessage() for r in caplog.records if "attempt 4/4" in r.getMessage()]
    assert last and last[0].endswith("ValueError: lookup failed; not retried"), last


@durable.activity(retry=FAST)
def wrapped_failure() -> None:
    attempts.append(("wrapped", durable.activity_info().attempt))
    try:
        {}["missing"]
    except KeyError as exc:
        raise ValueError("lookup failed") from exc


@durable.workflow(name="retry-catches")
async def catches(ctx: durable.Context) -> dict[str, object]:
    try:
        await wrapped_failure()
    except durable.ActivityError as exc:
        return {"attempts": exc.attempts, "type": exc.error_type, "causes": list(exc.causes)}
    return {}


async def test_the_final_error_is_catchable_with_attempts_and_cause_chain(app):
    async with app.worker():
        handle = await app.start(catches, id="retry-catch")
        result = await handle.result(timeout=10)
    assert result == {"attempts": 4, "type": "ValueError", "causes": [["KeyError", "'missing'"]]}
    assert [a for _, a in attempts] == [1, 2, 3, 4]


class Declined(durable.NonRetryableError):
    pass


@durable.activity(retry=FAST)
async def declines(kind: str) -> None:
    attempts.append((kind, durable.activity_info().attempt))
    if kind == "non-retryable":
        raise Declined("card declined")
    raise PermissionError("no access")


@durable.workflow(name="retry-declines")
async def declined(ctx: durable.Context, kind: str) -> int:
    policy = durable.RetryPolicy(
        max_attempts=5, initial_interval=0.01, non_retryable=(PermissionError,)
    )
    try:
        await ctx.run(declines, kind, retry=policy)
    except durable.ActivityError as exc:
        return exc.attempts
    return 0


@pytest.mark.parametrize("kind", ["non-retryable", "listed-type"])
async def test_non_retryable_errors_fail_at_once(app, kind):
    async with app.worker():
        handle = await app.start(declined, kind, id=f"retry-{kind}")
        assert await handle.result(timeout=10) == 1
    assert attempts == [(kind, 1)]
    assert not [e for e in await handle.history() if e.event == "retry"]


@durable.workflow(name="retry-override")
async def overridden(ctx: durable.Context) -> int:
    try:
        await ctx.run(
            fails_twice, "o", retry=durable.RetryPolicy(max_attempts=2, initial_interval=0)
        )
    except durable.ActivityError as exc:
        return exc.attempts
    return 0


async def test_a_per_call_policy_overrides_the_decorator(app):
    async with app.worker():
        handle = await app.start(overridden, id="retry-override")
        assert await handle.result(timeout=10) == 2
    assert attempts == [("o", 1), ("o", 2)]


@durable.activity(retry=durable.RetryPolicy(max_attempts=2, initial_interval=1.0))
async def slow_retry() -> int:
    attempt = durable.activity_info().attempt
    attempts.append(("slow", attempt))
    if attempt == 1:
        raise RuntimeError("first attempt fails")
    return attempt


@durable.workflow(name="retry-long-backoff")
async def long_backoff(ctx: durable.Context) -> int:
    return await slow_retry()


async def test_a_long_backoff_suspends_the_run_and_a_new_worker_resumes_it(
    app, wait_status, monkeypatch
):
    monkeypatch.setattr(_dispatch, "KEEP_LOADED_FOR", 0.0)  # every backoff counts as long
    async with app.worker():
        handle = await app.start(long_backoff, id="retry-long")
        await wait_status(handle, durable.Status.WAITING)
    assert attempts == [("slow", 1)]
    async with app.worker():  # another worker: the attempt count comes from the journal
        assert await handle.result(timeout=10) == 2
    assert attempts == [("slow", 1), ("slow", 2)]
    [retry] = [e for e in await handle.history() if e.event == "retry"]
    second = next(e for e in await handle.history() if e.event == "result")
    assert second.at.timestamp() >= retry.payload["at"]
