"""The activities a flow calls: SERVICE_TASK handlers, and the store actions it journals.

A SERVICE_TASK with an in-process handler calls the activity registered under its
``jobType`` with the task dict of ``docs/format.md``. Enqueuing an external job,
withdrawing it and starting the next definition of a chain (through ``start_run``, like
every start) are store writes that must happen exactly once per run, so they run as
journaled activities too, with idempotent writes.
"""

from __future__ import annotations

import functools
import json
import weakref
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from .. import _logging, _tracing
from .._start import start_run
from ..errors import DefinitionNotFoundError, NonRetryableError
from ..policy import DEFAULT_RETRY, RetryPolicy
from ..registry import Activity
from ..runtime import activity_info
from ..serde import CallCodec
from ..store import Store


def service_activity(handler: Activity[Any, Any], retries: int) -> Activity[Any, Any]:
    """The activity that runs ``handler`` for a SERVICE_TASK with ``retryCount`` retries."""
    cache: dict[int, Activity[Any, Any]] = handler.__dict__.setdefault("_durable_service", {})
    act = cache.get(retries)
    if act is None:
        act = _wrap(handler, retries)
        cache[retries] = act
    return act


def _wrap(handler: Activity[Any, Any], retries: int) -> Activity[Any, Any]:
    base = handler.retry or DEFAULT_RETRY
    policy = RetryPolicy(
        max_attempts=retries + 1,
        initial_interval=base.initial_interval,
        backoff_coefficient=base.backoff_coefficient,
        max_interval=base.max_interval,
        non_retryable=base.non_retryable,
    )

    async def run_service_task(task: dict[str, Any]) -> dict[str, Any]:
        attempt = activity_info().attempt
        full = {**task, "attempt": attempt, "retriesRemaining": retries - attempt + 1}
        _tracing.set_step(task.get("stepId"))
        with _logging.bind(step=task.get("stepId"), job_type=handler.name):
            if handler.is_async:
                output = await handler.fn(full)
            else:
                call = functools.partial(handler.fn, full)
                output = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        if output is None:
            output = {}
        if not isinstance(output, dict):
            raise NonRetryableError(
                f"the handler of jobType {handler.name!r} returned {type(output).__name__}, "
                "expected a dict of variables (or None)"
            )
        return {"variables": output, "attempt": attempt}

    act: Activity[Any, Any] = Activity(
        run_service_task, handler.name, policy, handler.timeout, handler.heartbeat_timeout
    )
    act.codec = _TaskCodec(run_service_task, act.codec.owner)
    return act


_PLAIN = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _plain(value: Any) -> str:
    return _PLAIN.encode(value)


class _TaskCodec(CallCodec):
    """The codec of a service task's activity: plain ``json``, no pydantic.

    A task holds the flow's variables (parsed from JSON, or dicts handlers returned), so
    validating and dumping them through pydantic at every step only copies the whole map
    twice more. Plain JSON text is the same text pydantic's path writes (so the argument
    fingerprints in journals stay the same); a value plain JSON cannot write (a datetime
    a handler returned) takes pydantic's path as before.
    """

    def __init__(self, fn: Any, owner: str) -> None:
        super().__init__(fn, owner, skip_first=False)

    def encode_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if len(args) == 1 and not kwargs and isinstance(args[0], dict):
            try:
                return _plain({"task": args[0]})
            except (TypeError, ValueError):
                pass
        return super().encode_args(args, kwargs)

    def decode_args(self, text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        stored = json.loads(text)
        if (
            isinstance(stored, dict)
            and set(stored) == {"task"}
            and isinstance(stored["task"], dict)
        ):
            return (stored["task"],), {}
        return super().decode_args(text)

    def encode_result(self, value: Any) -> str:
        try:
            return _plain(value)
        except (TypeError, ValueError):
            return super().encode_result(value)

    def decode_result(self, text: str) -> Any:
        value = json.loads(text)
        return value if isinstance(value, dict) else super().decode_result(text)


@dataclass(frozen=True, slots=True)
class StoreActivities:
    """Journaled store actions of flows, bound to one store."""

    enqueue_job: Activity[Any, Any]
    cancel_job: Activity[Any, Any]
    start_next: Activity[Any, Any]


_bound: weakref.WeakKeyDictionary[Any, StoreActivities] = weakref.WeakKeyDictionary()


def store_activities(store: Store) -> StoreActivities:
    """The flow's store actions for ``store`` (built once per store)."""
    found = _bound.get(store)
    if found is None:
        found = _bind(store)
        _bound[store] = found
    return found


def _bind(store: Store) -> StoreActivities:
    async def enqueue_job(
        run_id: str, seq: int, step_id: str, job_type: str, variables: dict[str, Any], retries: int
    ) -> str:
        _tracing.set_step(step_id)
        job = await store.enqueue_job(
            run_id, seq, step_id, job_type, json.dumps(variables), retries
        )
        return job.id

    async def cancel_job(run_id: str, seq: int) -> int:
        return await store.cancel_jobs(run_id, seq)

    async def start_next(
        run_id: str,
        definition_id: str,
        variables: dict[str, Any],
        business_key: str | None,
        queue: str = "default",
        priority: int = 0,
    ) -> str:
        definition = await store.get_definition(definition_id)
        if definition is None:
            raise NonRetryableError(
                str(DefinitionNotFoundError(f"the next workflow {definition_id!r} is not defined"))
            )
        args = json.dumps({"variables": variables})
        next_id = f"{run_id}>next"  # the same id on a retry: the chain starts once
        await start_run(
            store,
            definition.id,
            args,
            run_id=next_id,
            business_key=business_key,
            flow_version=definition.version,
            queue=queue,
            priority=priority,
        )
        return next_id

    quick = RetryPolicy(max_attempts=5, initial_interval=0.5)
    return StoreActivities(
        Activity(enqueue_job, "durable.enqueue-job", quick, None),
        Activity(cancel_job, "durable.cancel-job", quick, None),
        Activity(start_next, "durable.start-next-flow", quick, None),
    )
