"""Running one attempt of an activity call: timeouts, heartbeats, cancellation, retry advice.

The executor runs one attempt at a time and journals the outcome of each failed attempt
that will be retried, with the time of the next one: the attempt count and the backoff
survive a crash (a ``retry`` record: ``durable._wire.RetryRecord``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from .. import _current
from .._current import ActivityInfo, AttemptState
from .._values import Values
from .._wire import StoredError
from ..errors import Cancelled, PayloadTooLargeError, SerializationError
from ..policy import RetryPolicy
from ..registry import Activity


def activity_info() -> ActivityInfo:
    """The info of the activity running in this task or thread.

    Raises:
        RuntimeError: when called outside an activity run by a worker.
    """
    info = _current.activity_info.get()
    if info is None:
        raise RuntimeError("durable.activity_info() is only available inside a running activity")
    return info


def heartbeat() -> None:
    """Report that a long activity is alive; call it more often than its heartbeat timeout.

    An activity declared with ``heartbeat_timeout`` whose attempt goes that long without a
    heartbeat is abandoned and counted as a failed attempt (retried by its policy).
    Outside an activity this does nothing, so the function stays callable in unit tests.

    Raises:
        durable.Cancelled: the run was cancelled or the attempt was abandoned; the work
            is no longer wanted. Sync activities use this to stop their thread.
    """
    info = _current.activity_info.get()
    if info is None:
        return
    if info._state.cancelled.is_set():
        raise Cancelled(f"activity {info.activity!r} of run {info.run_id!r} was cancelled")
    info._state.last_beat = time.monotonic()


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended: the result's JSON text, or the stored error.

    ``retry_in`` is set when the retry policy wants another attempt after that many
    seconds; ``pause`` when it pauses the run instead of failing the activity.
    """

    attempt: int
    result: str | None = None
    error: StoredError | None = None
    retry_in: float | None = None
    pause: bool = False
    """The attempts ran out and the retry policy pauses the run (``on_exhausted``)."""


async def run_attempt(
    act: Activity[Any, Any],
    args_text: str,
    info: ActivityInfo,
    policy: RetryPolicy,
    limit: float | None,
    values: Values,
) -> Outcome:
    """Run attempt ``info.attempt`` of an activity call and judge its failure.

    A result that cannot be stored (no JSON form, over ``values.max_payload_bytes``) fails
    the attempt without a retry: the next attempt would return the same value.
    """
    token = _current.activity_info.set(info)
    try:
        args, kwargs = act.codec.decode_args(args_text)
        if limit is None and act.heartbeat_timeout is None and act.is_async:  # the lean path
            value = await act.fn(*args, **kwargs)
        else:
            value = await _attempt(act, args, kwargs, info, limit)
        result = act.codec.encode_result(value)
        if not values.fits(result):
            values.check(result, info.run_id, f"result of activity {act.name!r}")
        return Outcome(info.attempt, result=result)
    except (SerializationError, PayloadTooLargeError) as exc:  # the same value again
        return Outcome(info.attempt, error=StoredError.from_exception(exc))
    except Exception as exc:
        return _judge(exc, info.attempt, policy)
    except (asyncio.CancelledError, Cancelled, SystemExit) as exc:
        task = asyncio.current_task()
        if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
            info._state.cancelled.set()  # a sync activity's thread learns it at its next check
            raise
        # The activity itself raised it (sys.exit in a thread, a stray cancellation): a
        # failed attempt like any other, never the end of the worker or a stuck run.
        return _judge(exc, info.attempt, policy)
    finally:
        _current.activity_info.reset(token)


def _judge(exc: BaseException, attempt: int, policy: RetryPolicy) -> Outcome:
    error = StoredError.from_exception(exc)
    if policy.retries(exc, attempt):
        return Outcome(attempt, error=error, retry_in=policy.delay_before(attempt + 1))
    return Outcome(attempt, error=error, pause=policy.pauses(exc, attempt))


async def _attempt(
    act: Activity[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    info: ActivityInfo,
    limit: float | None,
) -> Any:
    if limit is None and act.heartbeat_timeout is None:  # a sync activity: in a thread
        return await _invoke(act, args, kwargs)
    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            if act.heartbeat_timeout is None:
                return await _invoke(act, args, kwargs)
            return await _watched(act, args, kwargs, info._state, act.heartbeat_timeout)
    except TimeoutError:
        if deadline.expired():
            info._state.cancelled.set()
            raise TimeoutError(f"activity {act.name!r} timed out after {limit} s") from None
        raise


async def _invoke(act: Activity[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if act.is_async:
        return await act.fn(*args, **kwargs)
    call = functools.partial(act.fn, *args, **kwargs)
    return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)


async def _watched(
    act: Activity[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    state: AttemptState,
    timeout: float,
) -> Any:
    """Run the attempt; abandon it when no heartbeat came within ``timeout`` seconds."""
    state.last_beat = time.monotonic()  # not before: the wait for a queue slot
    task = asyncio.ensure_future(_invoke(act, args, kwargs))
    try:
        while True:
            left = state.last_beat + timeout - time.monotonic()
            if left <= 0:
                state.cancelled.set()
                raise TimeoutError(f"activity {act.name!r} sent no heartbeat for {timeout} s")
            done, _ = await asyncio.wait({task}, timeout=left)
            if done:
                return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
