"""Running one activity call: attempts, retries, timeouts, and the info it can read."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, replace
from typing import Any

import anyio.to_thread

from .. import _current
from ..errors import SerializationError, describe_exception
from ..policy import DEFAULT_RETRY, RetryPolicy
from ..registry import Activity


@dataclass(frozen=True, slots=True)
class ActivityInfo:
    """What a running activity knows about its call (``durable.activity_info()``)."""

    run_id: str
    workflow: str
    activity: str
    seq: int
    attempt: int

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and re-executions: pass it to external systems."""
        return f"{self.run_id}:{self.seq}"


def activity_info() -> ActivityInfo:
    """The info of the activity running in this task or thread.

    Raises:
        RuntimeError: when called outside an activity run by a worker.
    """
    info = _current.activity_info.get()
    if info is None:
        raise RuntimeError("durable.activity_info() is only available inside a running activity")
    return info


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of an activity call: the result's JSON text, or the stored error."""

    attempts: int
    result: str | None = None
    error: dict[str, Any] | None = None


async def execute(
    act: Activity[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    info: ActivityInfo,
    retry: RetryPolicy | None,
    timeout: float | None,
) -> Outcome:
    """Run an activity until it succeeds or its retry policy gives up."""
    policy = retry or act.retry or DEFAULT_RETRY
    limit = timeout if timeout is not None else act.timeout
    attempt = 1
    while True:
        token = _current.activity_info.set(replace(info, attempt=attempt))
        try:
            value = await _attempt(act, args, kwargs, limit)
            return Outcome(attempts=attempt, result=act.codec.encode_result(value))
        except SerializationError as exc:
            return Outcome(attempts=attempt, error=describe_exception(exc))
        except Exception as exc:
            if not policy.retries(exc, attempt):
                return Outcome(attempts=attempt, error=describe_exception(exc))
        finally:
            _current.activity_info.reset(token)
        attempt += 1
        await asyncio.sleep(policy.delay_before(attempt))


async def _attempt(
    act: Activity[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], limit: float | None
) -> Any:
    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            if act.is_async:
                return await act.fn(*args, **kwargs)
            call = functools.partial(act.fn, *args, **kwargs)
            return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    except TimeoutError:
        if deadline.expired():
            raise TimeoutError(f"activity {act.name!r} timed out after {limit} s") from None
        raise
