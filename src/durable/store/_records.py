"""The records a store reads and writes, and the helpers that turn rows into them.

Times are seconds since the epoch (floats), taken from the store's clock.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._wire import Event, Kind
from ..info import Status
from ..queues import Queue

TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    workflow: str
    status: Status
    args: str
    result: str | None
    error: str | None
    parked_reason: str | None
    epoch: int
    cancel_requested: bool
    mailbox_version: int
    created_at: float
    updated_at: float
    business_key: str | None = None
    flow_version: int | None = None
    """Set when the run executes version N of the flow definition named by ``workflow``."""
    parent_id: str | None = None
    """The run that started this one with ``ctx.child``; it hears when this one ends."""
    queue: str = "default"
    priority: int = 0
    """Higher is claimed first within the runs a worker may take."""
    trace_context: str | None = None
    """The OpenTelemetry context of the span that started the run (JSON), if any."""
    paused_reason: str | None = None
    """Set while the run is paused or asked to pause (``Handle.pause``)."""
    forked_from: str | None = None
    """The run this one was forked from (``Handle.fork``)."""
    fork_at: str | None = None
    """Where the fork was cut, as JSON: a journal seq (code-first) or a step id (flows)."""
    runnable_at: float | None = None
    """When a worker should look at the run next (a lease's expiry while it is held)."""
    lease_owner: str | None = None
    """The worker holding the run, if any."""
    wait_signals: tuple[str, ...] = ()
    """The signals whose arrival wakes the suspended run."""
    tags: dict[str, str] | None = None
    """The run's tags, when the query read them (``get_run``, ``list_runs``), else None."""


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Which runs ``list_runs`` and ``bulk_cancel`` take: every condition given holds."""

    status: Status | None = None
    workflow: str | None = None
    business_key: str | None = None
    queue: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    """(key, value) pairs the run must all carry."""
    created_after: float | None = None
    created_before: float | None = None


RUN_COLUMNS = (
    "id, workflow, status, args, result, error, parked_reason, epoch, cancel_requested, "
    "mailbox_version, created_at, updated_at, business_key, flow_version, parent_id, queue, "
    "priority, trace_context, paused_reason, forked_from, fork_at, runnable_at, lease_owner, "
    "wait_signals"
)
_TAGS_AT = 24


def run_from_row(row: Sequence[Any]) -> RunRecord:
    """A RunRecord from a row selected as ``RUN_COLUMNS``."""
    return RunRecord(
        id=row[0],
        workflow=row[1],
        status=Status(row[2]),
        args=row[3],
        result=row[4],
        error=row[5],
        parked_reason=row[6],
        epoch=row[7],
        cancel_requested=bool(row[8]),
        mailbox_version=row[9],
        created_at=row[10],
        updated_at=row[11],
        business_key=row[12],
        flow_version=row[13],
        parent_id=row[14],
        queue=row[15],
        priority=row[16],
        trace_context=row[17],
        paused_reason=row[18],
        forked_from=row[19],
        fork_at=row[20],
        runnable_at=row[21],
        lease_owner=row[22],
        wait_signals=_names(row[23]),
        tags=json.loads(row[_TAGS_AT] or "{}") if len(row) > _TAGS_AT else None,
    )


def _names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Signal names as stored: a Postgres array, or JSON text on SQLite."""
    if value is None:
        return ()
    return tuple(json.loads(value) if isinstance(value, str) else value)


@dataclass(frozen=True, slots=True)
class ForkStart:
    """A run forked from ``origin`` (``Handle.fork``): created with a copy of a journal."""

    run_id: str
    origin: RunRecord
    """The run forked (its workflow, business key, version, queue, priority and tags)."""
    fork_at: str
    """Where it was cut, as JSON: a seq, or a flow step id."""
    args: str
    entries: Sequence[JournalEntry]
    """The copied records, numbered from position 0."""
    events: Sequence[tuple[str, str]] = ()
    """(key, value JSON) of the events the copied records published."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal row. ``pos`` orders the rows of a run; ``seq`` names the operation."""

    pos: int
    seq: int
    event: Event
    kind: Kind
    name: str
    fingerprint: str | None
    payload: str | None
    created_at: float


JOURNAL_COLUMNS = "pos, seq, event, kind, name, fingerprint, payload, created_at"

_EVENTS: dict[str, Event] = {event.value: event for event in Event}
_KINDS: dict[str, Kind] = {kind.value: kind for kind in Kind}


def journal_entries(rows: Iterable[Sequence[Any]]) -> list[JournalEntry]:
    """JournalEntries from rows selected as ``JOURNAL_COLUMNS``.

    Raises:
        ValueError: a row holds an event or kind this version does not know.
    """
    # Replay reads every record of a run: a dict lookup per name, not an Enum() call.
    events, kinds = _EVENTS, _KINDS
    try:
        return [
            JournalEntry(pos, seq, events[event], kinds[kind], name, fingerprint, payload, at)
            for pos, seq, event, kind, name, fingerprint, payload, at in rows
        ]
    except KeyError as exc:
        raise ValueError(f"unknown journal event or kind {exc}") from None


@dataclass(frozen=True, slots=True)
class SignalRecord:
    id: int
    name: str
    payload: str


@dataclass(frozen=True, slots=True)
class Fence:
    """A worker's claim on a run: writes succeed only while ``epoch`` is the run's epoch."""

    run_id: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Suspend:
    """Release the run until ``wake_at`` or a signal named in ``signal_names`` arrives
    (or, if it is to pause, PAUSED until resumed: ``resume`` makes it runnable).

    ``mailbox_version`` is the version the executor last read: if a signal or a
    cancellation arrived since (the run's version moved on), the run stays runnable, so a
    signal racing the suspension is never lost.
    """

    wake_at: float | None
    signal_names: tuple[str, ...]
    mailbox_version: int


@dataclass(frozen=True, slots=True)
class Finish:
    """End the run. Its unfinished children get a cancellation request when
    ``cancel_children``; a run with a parent sends it ``child_signal(run id)``."""

    status: Status
    result: str | None = None
    error: str | None = None
    cancel_children: bool = False


@dataclass(frozen=True, slots=True)
class Restart:
    """Continue as new: the journal and consumed signals go, the lease stays, new args."""

    args: str
    cancel_children: bool = False


@dataclass(frozen=True, slots=True)
class Park:
    """Stop running the run until a worker with different code starts (non-determinism)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Release:
    """Give the run back at once (a worker shutting down), or PAUSED if it is to pause."""


Outcome = Suspend | Finish | Park | Release | Restart


@dataclass(frozen=True, slots=True)
class ChildStart:
    """A child run to create with the commit that journals its start (idempotent on id)."""

    run_id: str
    workflow: str
    args: str
    queue: str = "default"
    priority: int = 0
    trace_context: str | None = None


@dataclass(slots=True)
class Commit:
    """One atomic write of a run's progress, accepted only under ``fence``."""

    fence: Fence
    entries: list[JournalEntry] = field(default_factory=list)
    consumed_signals: list[tuple[int, int]] = field(default_factory=list)
    """(signal id, seq of the wait that consumed it)."""
    outcome: Outcome | None = None
    children: list[ChildStart] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    """(key, value JSON) pairs published with ``ctx.set_event``; the latest value wins."""
    tags: list[tuple[str, str]] = field(default_factory=list)
    """(key, value) pairs set with ``ctx.set_tags``; the latest value of a key wins."""
    parent_id: str | None = None
    """With a Finish: the parent run to tell (``child_signal``)."""
    pause: str | None = None
    """Pause the run with this reason (a retry policy's ``on_exhausted="pause"``): it is
    given back PAUSED by its next Suspend or Release, like a run paused by hand."""

    @property
    def has_links(self) -> bool:
        """Whether the commit touches more than the run's own row, journal and signals."""
        outcome = self.outcome
        return bool(
            self.children
            or self.events
            or self.tags
            or self.parent_id
            or self.pause is not None
            or isinstance(outcome, Restart)
            or (isinstance(outcome, Finish) and outcome.cancel_children)
        )


@dataclass(frozen=True, slots=True)
class LeaseState:
    """What a lease renewal reports about a run the worker still holds."""

    mailbox_version: int
    cancel_requested: bool


@dataclass(frozen=True, slots=True)
class DefinitionRecord:
    """One version of a JSON flow definition; ``document`` is the JSON text as uploaded."""

    id: str
    version: int
    name: str
    document: str
    uploaded_at: float


DEFINITION_COLUMNS = "id, version, name, document, uploaded_at"


@dataclass(frozen=True, slots=True)
class JobRecord:
    """An external job: a SERVICE_TASK step that a worker outside the run polls for.

    ``status`` is QUEUED, RUNNING, COMPLETED, FAILED or CANCELLED; ``variables`` is the
    step's input, JSON object text; ``attempt`` counts from 1.
    """

    id: str
    run_id: str
    seq: int
    step_id: str
    job_type: str
    status: str
    variables: str
    retries_remaining: int
    attempt: int
    worker_id: str | None
    lock_expires_at: float | None
    error: str | None
    created_at: float
    updated_at: float


JOB_COLUMNS = (
    "id, run_id, seq, step_id, job_type, status, variables, retries_remaining, attempt, "
    "worker_id, lock_expires_at, error, created_at, updated_at"
)


class JobAnswer(enum.StrEnum):
    """What ``complete_job`` or ``fail_job`` did."""

    DONE = "DONE"
    """Applied now."""
    ALREADY = "ALREADY"
    """The same outcome was applied before (a repeated call): nothing changed."""
    CONFLICT = "CONFLICT"
    """Another worker holds the job, or it was closed another way: nothing changed."""
    NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A cron schedule. ``args`` is the stored argument text; ``missed`` is ``skip`` or
    ``catch_up``; ``next_fire_at`` is the next tick not yet started."""

    id: str
    workflow: str
    cron: str
    timezone: str
    args: str
    missed: str
    paused: bool
    next_fire_at: float
    last_fire_at: float | None
    created_at: float
    updated_at: float
    queue: str = "default"
    """The queue and priority of the runs it starts."""
    priority: int = 0


SCHEDULE_COLUMNS = (
    "id, workflow, cron, timezone, args, missed, paused, next_fire_at, last_fire_at, "
    "created_at, updated_at, queue, priority"
)


def schedule_from_row(row: Sequence[Any]) -> ScheduleRecord:
    """A ScheduleRecord from a row selected as ``SCHEDULE_COLUMNS``."""
    values = list(row)
    values[6] = bool(values[6])
    return ScheduleRecord(*values[:13])


@dataclass(frozen=True, slots=True)
class Firing:
    """What a due schedule does now: start ``run_ids``, then wait for ``next_fire_at``."""

    run_ids: tuple[str, ...]
    last_fire_at: float | None
    next_fire_at: float
    trace_context: str | None = None
    """Stored with the runs it starts (see ``RunRecord.trace_context``)."""


Planner = Callable[[ScheduleRecord, float], Firing]
"""``plan(schedule, now)``: what a due schedule does at ``now`` (the store's clock)."""


@dataclass(frozen=True, slots=True)
class QueueClaim:
    """A queue a claim may take runs from: at most ``cap`` of them (the worker's room)."""

    name: str
    cap: int
    limited: bool = False
    """A global concurrency or rate limit applies: serialize the claims of this queue."""


@dataclass(frozen=True, slots=True)
class SlotGrant:
    """The answer to ``acquire_queue_slot``: a token when granted, else when to retry."""

    token: str | None
    retry_at: float | None = None
    """When a busy slot's hold ends (by this process's clock); None: no slot exists."""


QUEUE_COLUMNS = "name, concurrency, worker_concurrency, rate_limit, rate_period"


def queue_from_row(row: Sequence[object]) -> Queue:
    """A Queue from a row selected as ``QUEUE_COLUMNS``."""
    name, concurrency, per_worker, rate, period = row
    return Queue(
        str(name),
        concurrency=concurrency,  # type: ignore[arg-type]
        worker_concurrency=per_worker,  # type: ignore[arg-type]
        rate_limit=None if rate is None else (rate, period),  # type: ignore[arg-type]
    )


def queue_params(queue: Queue) -> tuple[str, int | None, int | None, int | None, float | None]:
    """A Queue as the values of ``QUEUE_COLUMNS``."""
    rate, period = queue.rate_limit or (None, None)
    return queue.name, queue.concurrency, queue.worker_concurrency, rate, period
