"""Creating runs: the one rule every path that starts a run follows.

:func:`start_run` creates a run for ``App.start``, ``App.start_flow``, the CLI's
``start``, the REST API and flow chaining: one store call, idempotent on the id, with
the trace context of the caller so that the run's spans join the caller's trace. A
schedule's ticks are created by the store inside its firing transaction instead;
:func:`tick_runs` gives them their ids and trace context.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from . import _tracing
from ._values import Values
from .errors import RunConflictError
from .info import check_tags
from .queues import DEFAULT_QUEUE
from .store import RunRecord, Store


async def start_run(
    store: Store,
    workflow: str,
    args: str,
    *,
    run_id: str | None = None,
    business_key: str | None = None,
    flow_version: int | None = None,
    queue: str = DEFAULT_QUEUE,
    priority: int = 0,
    tags: Mapping[str, str] | None = None,
    values: Values | None = None,
) -> tuple[RunRecord, bool]:
    """Create a run of ``workflow`` (a flow definition's id with ``flow_version``) with
    its stored arguments; return it and whether it is new.

    Starting is idempotent on ``run_id`` (a new id when None): the run already stored
    under it is returned as it is.

    Raises:
        durable.InvalidInputError: a tag key or value breaks the limits of ``check_tags``.
        durable.PayloadTooLargeError: ``args`` is over ``values.max_payload_bytes``.
        durable.RunConflictError: ``run_id`` belongs to a run of another workflow (or,
            for a flow, to a code-first run).
    """
    rid = run_id if run_id is not None else uuid.uuid4().hex
    pairs = check_tags(tags, f"run {rid!r}")
    if values is not None:
        values.check(args, rid, "start arguments")
    run, created = await store.create_run(
        rid,
        workflow,
        args,
        business_key=business_key,
        flow_version=flow_version,
        queue=queue,
        priority=priority,
        trace_context=_tracing.inject(),
        tags=pairs,
    )
    if run.workflow != workflow or (flow_version is not None and run.flow_version is None):
        raise RunConflictError(
            f"run id {rid!r} is already used by a run of workflow {run.workflow!r}"
        )
    if created and run_id is not None:  # a pruned run's id may be used again
        store.completed.forget(rid)
    return run, created


def run_id_for(schedule_id: str, tick: float) -> str:
    """The id of the run a schedule starts for the tick at ``tick``."""
    return f"{schedule_id}@{datetime.fromtimestamp(tick, UTC):%Y-%m-%dT%H:%M:%SZ}"


def tick_runs(
    schedule_id: str, workflow: str, ticks: Sequence[float]
) -> tuple[tuple[str, ...], str | None]:
    """The ids of the runs that start ``ticks`` of a schedule, and the trace context
    they carry: one span per firing, its own trace (no caller is waiting on it)."""
    run_ids = tuple(run_id_for(schedule_id, tick) for tick in ticks)
    return run_ids, _tracing.tick_context(schedule_id, workflow, run_ids)
