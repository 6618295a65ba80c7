"""Payload size limits and the journal length warning of an App."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import durable

pytestmark = pytest.mark.anyio

LIMIT = 1_000
ran: list[int] = []


@pytest.fixture(autouse=True)
def _fresh() -> None:
    ran.clear()


@durable.activity(
    name="limits.big", retry=durable.RetryPolicy(max_attempts=5, initial_interval=0.01)
)
async def big(size: int) -> str:
    ran.append(size)
    return "x" * size


@durable.workflow(name="limits.echo")
async def echo(ctx: durable.Context, text: str) -> int:
    await ctx.wait_signal("go")
    return len(text)


@durable.workflow(name="limits.result")
async def result_of(ctx: durable.Context, size: int) -> dict[str, Any]:
    try:
        return {"length": len(await big(size))}
    except durable.PayloadTooLargeError as e:
        assert isinstance(e, durable.ActivityError)
        return {"size": e.size, "limit": e.limit, "attempts": e.attempts, "message": str(e)}


@durable.workflow(name="limits.event")
async def publishes(ctx: durable.Context, size: int) -> None:
    ctx.set_event("progress", "y" * size)


@durable.workflow(name="limits.steps")
async def steps(ctx: durable.Context, count: int) -> int:
    for index in range(count):
        await big(index)
    return count


@pytest.fixture
async def small(dsn: str) -> Any:
    async with durable.App(dsn, max_payload_bytes=LIMIT) as app:
        yield app


async def test_a_start_over_the_limit_fails_at_once_and_stores_nothing(small: durable.App) -> None:
    with pytest.raises(durable.PayloadTooLargeError) as caught:
        await small.start(echo, "é" * 600, id="too-big")
    error = caught.value
    assert isinstance(error, durable.InvalidInputError)
    assert (error.run_id, error.operation, error.limit) == ("too-big", "start arguments", LIMIT)
    assert error.size == len('{"text":""}') + 1200  # UTF-8 bytes, not characters
    assert str(error).startswith(
        f"run 'too-big': the start arguments is {error.size:,} bytes, over the limit of 1,000"
    )
    with pytest.raises(durable.RunNotFoundError):
        await small.handle("too-big").describe()
    await small.start(echo, "é" * 400, id="fits")  # 811 bytes


async def test_a_signal_over_the_limit_fails_and_is_not_delivered(small: durable.App) -> None:
    handle = await small.start(echo, "short", id="sig-limit")
    with pytest.raises(durable.PayloadTooLargeError, match=r"run 'sig-limit': the signal 'go'"):
        await handle.signal("go", {"blob": "z" * 2_000})
    async with small.worker():
        await handle.signal("go", {"blob": "small"})
        assert await handle.result(timeout=20) == 5


async def test_an_activity_result_over_the_limit_fails_its_attempt_without_retry(
    small: durable.App,
) -> None:
    async with small.worker():
        handle = await small.start(result_of, 5_000, id="result-limit")
        outcome = await handle.result(timeout=20)
    assert ran == [5_000]  # one attempt, though the policy allows five
    assert outcome["size"] == 5_002 and outcome["limit"] == LIMIT and outcome["attempts"] == 1
    assert (
        "run 'result-limit': the result of activity 'limits.big' is 5,002 bytes"
        in (outcome["message"])
    )
    history = await handle.history()
    assert not [e for e in history if e.event == "retry"]
    [error] = [e.payload for e in history if e.event == "error"]
    assert error["type"] == "PayloadTooLargeError"


async def test_an_event_over_the_limit_fails_the_run(small: durable.App) -> None:
    async with small.worker():
        handle = await small.start(publishes, 3_000, id="event-limit")
        with pytest.raises(durable.WorkflowFailed) as caught:
            await handle.result(timeout=20)
    assert caught.value.error_type == "PayloadTooLargeError"
    assert "run 'event-limit': the event 'progress' value is 3,002 bytes" in str(caught.value)
    assert await handle.get_event("progress") is None


async def test_none_means_no_limit(dsn: str) -> None:
    async with durable.App(dsn, max_payload_bytes=None) as app, app.worker():
        handle = await app.start(result_of, 3 * 1024 * 1024, id="unbounded")
        assert await handle.result(timeout=30) == {"length": 3 * 1024 * 1024}


async def test_the_default_limit_is_two_mib(app: durable.App) -> None:
    assert app.services.values.max_payload_bytes == 2 * 1024 * 1024
    with pytest.raises(durable.PayloadTooLargeError, match="over the limit of 2,097,152 bytes"):
        await app.start(echo, "a" * (2 * 1024 * 1024), id="default-limit")


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(durable.ConfigurationError, match=r"max_payload_bytes=\) must be"):
        durable.App("sqlite:///:memory:", max_payload_bytes=0)
    with pytest.raises(durable.ConfigurationError, match=r"history_warning=\) must be"):
        durable.App("sqlite:///:memory:", history_warning=-1)


async def test_a_long_journal_logs_a_warning_naming_continue_as_new(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="durable.runtime")
    async with durable.App(dsn, history_warning=4) as app, app.worker():
        handle = await app.start(steps, 6, id="long-journal")
        assert await handle.result(timeout=20) == 6
    warnings = [r.getMessage() for r in caplog.records if "continue_as_new" in r.getMessage()]
    assert warnings == [
        "run long-journal: its journal has reached 4 records; a long-lived workflow should "
        "call ctx.continue_as_new to start a fresh journal (App(history_warning=))"
    ]


@durable.workflow(name="limits.parent")
async def parent(ctx: durable.Context, size: int) -> str:
    try:
        await ctx.child(echo, "z" * size)
    except durable.PayloadTooLargeError as e:
        return str(e)
    return "started"


async def test_a_child_start_over_the_limit_fails_at_once_in_the_parent(
    small: durable.App,
) -> None:
    async with small.worker():
        handle = await small.start(parent, 3_000, id="child-limit")
        message = await handle.result(timeout=20)
    assert "run 'child-limit': the start arguments of child workflow 'limits.echo'" in message
    assert "3,0" in message and "1,000" in message
    assert await handle.describe() is not None
    assert (await handle.describe()).children == ()
