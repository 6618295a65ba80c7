"""The Store protocol: the persistence primitives the runtime and the client need.

A store holds runs, their journals and their signals, the versioned JSON flow
definitions and the external jobs of SERVICE_TASK steps. It knows nothing of replay: it
claims runs under leases, appends journal entries under a fencing epoch, and wakes
whoever waits for a change. ``sqlite.py`` and ``postgres.py`` implement it; one
conformance suite (``tests/store``) runs against both.

Times are seconds since the epoch (floats), taken from the store's clock.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..info import Status
from ..queues import Queue
from ._admin import FleetMetrics, StepDurations
from ._notify import Subscription

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


RUN_COLUMNS = (
    "id, workflow, status, args, result, error, parked_reason, epoch, cancel_requested, "
    "mailbox_version, created_at, updated_at, business_key, flow_version, parent_id, queue, "
    "priority, trace_context"
)


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
    )


def unknown_workflow_reason(message: str) -> str:
    """The park reason of a run claimed by a worker that does not know its workflow."""
    return json.dumps({"type": "NotRegisteredError", "message": message})


UNKNOWN_WORKFLOW_LIKE = '{"type": "NotRegisteredError"%'
"""A LIKE pattern matching exactly the reasons of ``unknown_workflow_reason``."""

CANCELLED_BEFORE_START = (
    '{"type":"Cancelled","message":"cancelled before it started","traceback":""}'
)


def lease_lost(run_id: str) -> Exception:
    from ..errors import LeaseLostError

    return LeaseLostError(
        f"run {run_id!r} was taken over by another worker; this worker's write was refused"
    )


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal row. ``pos`` orders the rows of a run; ``seq`` names the operation."""

    pos: int
    seq: int
    event: str
    kind: str
    name: str
    fingerprint: str | None
    payload: str | None
    created_at: float


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
    """Release the run until ``wake_at`` or a signal named in ``signal_names`` arrives.

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
    """Give the run back at once (a worker shutting down)."""


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


def child_start_payload(child_id: str) -> str:
    """The payload of the ``start`` journal record of a child: its run id as JSON."""
    return json.dumps(child_id)


def child_signal(child_id: str) -> str:
    """The signal a finished child sends its parent."""
    return f"durable.child:{child_id}"


def child_done_payload(run_id: str, status: str, result: str | None, error: str | None) -> str:
    """What a finished child tells its parent: its id, status, and result or error."""
    return (
        f'{{"run_id":{json.dumps(run_id)},"status":"{status}",'
        f'"result":{result or "null"},"error":{error or "null"}}}'
    )


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
    parent_id: str | None = None
    """With a Finish: the parent run to tell (``child_signal``)."""

    @property
    def has_links(self) -> bool:
        """Whether the commit touches more than the run's own row, journal and signals."""
        outcome = self.outcome
        return bool(
            self.children
            or self.events
            or self.parent_id
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


# Job ids must be the same every time a replayed run enqueues its step, so they are
# derived from the step's place in the run rather than drawn at random.
_JOB_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:durable:job")


def job_id_for(run_id: str, seq: int) -> str:
    """The id of the job a run enqueues at sequence number ``seq``."""
    return str(uuid.uuid5(_JOB_NAMESPACE, f"{run_id}:{seq}"))


def job_signal_name(seq: int) -> str:
    """The signal that carries the outcome of the job enqueued at ``seq`` to its run."""
    return f"durable.job#{seq}"


def judge_job_call(
    status: str, holder: str | None, worker_id: str, closes_as: str
) -> JobAnswer | None:
    """Whether ``worker_id`` may close a job as ``closes_as``; None when it may.

    The holder may close a RUNNING job even past its lease, as long as nobody polled the
    job since (the poll would have made someone else the holder). A repeat of what the
    same worker already did is ALREADY; everything else is CONFLICT.
    """
    if holder != worker_id:
        return JobAnswer.CONFLICT
    if status == "RUNNING":
        return None
    return JobAnswer.ALREADY if status == closes_as else JobAnswer.CONFLICT


def job_done_payload(variables: str, attempt: int, worker_id: str) -> str:
    """The payload of the signal a completed job sends its run."""
    out = json.loads(variables)
    return json.dumps({"ok": True, "variables": out, "attempt": attempt, "workerId": worker_id})


def job_failed_payload(message: str, attempt: int, worker_id: str) -> str:
    """The payload of the signal a job that failed for good sends its run."""
    return json.dumps({"ok": False, "error": message, "attempt": attempt, "workerId": worker_id})


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
SCHEDULES = "schedules"
"""Notification topic: a schedule was created, changed or resumed (its due time moved)."""


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


class Store(Protocol):
    """Persistence primitives. Every method is a single transaction."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None: ...

    # -- client operations ----------------------------------------------------------
    async def create_run(
        self,
        run_id: str,
        workflow: str,
        args: str,
        *,
        business_key: str | None = None,
        flow_version: int | None = None,
        queue: str = "default",
        priority: int = 0,
        trace_context: str | None = None,
    ) -> tuple[RunRecord, bool]:
        """Insert a PENDING run unless the id exists; return the run and whether it is new."""

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def list_runs(
        self,
        *,
        status: Status | None,
        workflow: str | None,
        limit: int,
        business_key: str | None = None,
    ) -> list[RunRecord]:
        """Runs matching every filter given, newest first."""

    async def read_journal(self, run_id: str) -> list[JournalEntry]: ...

    async def send_signal(
        self, run_id: str, name: str, payload: str, *, dedupe_key: str | None = None
    ) -> bool:
        """Buffer a signal and wake the run; raises RunNotFoundError or RunClosedError.

        A signal whose ``dedupe_key`` the run already received is dropped: nothing is
        stored or woken and the answer is False (also once the run has finished, so a
        repeated request stays a no-op). Otherwise True.
        """

    async def request_cancel(self, run_id: str) -> RunRecord:
        """Mark the run for cancellation (a PENDING run ends CANCELLED at once)."""

    # -- worker operations ----------------------------------------------------------
    async def claim(
        self,
        owner: str,
        limit: int,
        lease_seconds: float,
        queues: Sequence[QueueClaim] | None = None,
    ) -> list[RunRecord]:
        """Lease up to ``limit`` runnable runs, bumping each one's epoch.

        Only runs of ``queues`` (every queue when None), at most ``cap`` of each, and
        within the global limits stored for each queue (``put_queues``); higher priority
        first, then by ``runnable_at``. Queues marked ``limited`` are claimed under a
        per-queue lock, so concurrent claimers never exceed a global limit together.
        """

    async def renew(
        self, owner: str, fences: list[Fence], lease_seconds: float
    ) -> dict[str, LeaseState]:
        """Extend leases; runs missing from the answer were lost to another worker."""

    async def pending_signals(self, run_id: str, after_id: int) -> list[SignalRecord]:
        """Unconsumed signals of a run with an id above ``after_id``, oldest first."""

    async def commit(self, commit: Commit) -> None:
        """Append entries, consume signals and apply the outcome, atomically.

        Raises LeaseLostError, writing nothing, when the run's epoch moved on.
        """

    async def next_wake_at(
        self, queues: Sequence[str] | None = None, *, limited: Sequence[str] = ()
    ) -> float | None:
        """The earliest time a run of ``queues`` (and ``limited``) becomes runnable.

        For ``limited`` queues (whose claims a global limit may hold back) only future
        times count, plus the time a rate-limited queue's window frees a start; a slot
        freed by a run ending is announced on ``WORK`` (``publish``) instead.
        """

    async def unpark(self, workflows: Sequence[str] | None = None) -> int:
        """Make parked runs runnable again (new code was deployed); return how many.

        With ``workflows``: only the runs of those workflows that were parked because the
        worker that claimed them did not know their workflow.
        """

    # -- flow definitions -----------------------------------------------------------
    async def put_definition(
        self, definition_id: str, name: str, document: str
    ) -> DefinitionRecord:
        """Store the next version (1, 2, ...) of a definition; safe under concurrent uploads."""

    async def get_definition(
        self, definition_id: str, version: int | None = None
    ) -> DefinitionRecord | None:
        """One version of a definition, the latest when ``version`` is None."""

    async def list_definitions(
        self, *, keyword: str | None = None, offset: int = 0, limit: int = 20
    ) -> tuple[list[DefinitionRecord], int]:
        """A page of definitions (their latest versions, by id) and how many match in all.

        ``keyword`` keeps those whose id or latest name contains it, case-insensitively.
        """

    # -- external jobs --------------------------------------------------------------
    async def enqueue_job(
        self, run_id: str, seq: int, step_id: str, job_type: str, variables: str, retries: int
    ) -> JobRecord:
        """Queue the job ``job_id_for(run_id, seq)`` unless it exists; return it."""

    async def poll_jobs(
        self, worker_id: str, job_types: Sequence[str], limit: int, lease_seconds: float
    ) -> list[JobRecord]:
        """Lease up to ``limit`` queued (or lease-expired) jobs of these types, oldest first.

        No two concurrent pollers get the same job.
        """

    async def complete_job(self, job_id: str, worker_id: str, variables: str) -> JobAnswer:
        """Complete a job ``worker_id`` holds and signal its run, in one transaction.

        The signal is ``job_signal_name(seq)`` with payload ``{"ok": true, "variables",
        "attempt", "workerId"}``. A lease that expired still counts as long as nobody
        polled the job since. ALREADY when this worker completed it before; CONFLICT,
        changing nothing, when someone else holds or closed it; a job whose run has
        finished is cancelled (CONFLICT).
        """

    async def fail_job(
        self, job_id: str, worker_id: str, *, retryable: bool, message: str
    ) -> JobAnswer:
        """Re-queue a job ``worker_id`` holds while retries last, else fail it.

        A retryable failure with retries left queues attempt + 1 and wakes pollers; any
        other failure closes the job FAILED and signals its run ``job_signal_name(seq)``
        with ``{"ok": false, "error", "attempt", "workerId"}``. Answers as ``complete_job``.
        """

    async def get_job(self, job_id: str) -> JobRecord | None: ...

    async def cancel_jobs(self, run_id: str, seq: int | None = None) -> int:
        """Cancel the open jobs of a run (or only the one at ``seq``); return how many."""

    # -- events and children --------------------------------------------------------
    async def get_event(self, run_id: str, key: str) -> str | None:
        """The JSON value a run last published under ``key``, or None."""

    async def child_ids(self, run_id: str) -> list[str]:
        """The ids of the runs started as children of ``run_id``, oldest first."""

    # -- schedules ------------------------------------------------------------------
    async def put_schedule(
        self,
        schedule_id: str,
        *,
        workflow: str,
        cron: str,
        timezone: str,
        args: str,
        missed: str,
        next_fire_at: float,
        keep_next_fire: bool,
        queue: str = "default",
        priority: int = 0,
    ) -> ScheduleRecord:
        """Create a schedule, or update the one with that id (workflow, cron, timezone,
        args, missed, queue, priority). An update keeps ``paused``, ``last_fire_at`` and
        ``created_at``, and ``next_fire_at`` if ``keep_next_fire`` and the cron and timezone
        are the same.
        """

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None: ...

    async def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by id."""

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, replan: Callable[[ScheduleRecord, float], float]
    ) -> ScheduleRecord | None:
        """Pause or resume; resuming a paused schedule sets ``next_fire_at`` to
        ``replan(schedule, now)``. None when there is no such schedule."""

    async def delete_schedule(self, schedule_id: str) -> bool: ...

    async def fire_schedules(self, limit: int, plan: Planner) -> list[str]:
        """Start the due ticks of up to ``limit`` due, unpaused schedules; return new run ids.

        Each schedule is taken so that no concurrent caller gets it, and in the same
        transaction ``plan`` says which runs to create (ids that exist are left alone)
        and where ``next_fire_at`` moves.
        """

    async def next_schedule_at(self) -> float | None:
        """The earliest ``next_fire_at`` of the unpaused schedules."""

    # -- operator queries (read-only; the REST server) --------------------------------
    async def list_flow_runs(
        self,
        *,
        definition_id: str | None = None,
        statuses: Sequence[Status] | None = None,
        business_key: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[RunRecord], int]:
        """A page of flow runs matching every filter given, newest first, and the total."""

    async def read_journals(
        self, run_ids: Sequence[str], *, kinds: Sequence[str] | None = None
    ) -> dict[str, list[JournalEntry]]:
        """The journals of several runs (only entries of ``kinds`` when given), by run id."""

    async def fleet_metrics(self) -> FleetMetrics:
        """Run counts by workflow and status, and queue depths, now."""

    async def step_durations(
        self, bounds: Sequence[float], *, since: float, position: str | None = None
    ) -> StepDurations:
        """The flow steps that ended since ``position`` (bucketed by ``bounds``).

        ``position`` None reads the step records made at or after ``since``; a position
        this method returned reads the records committed after that call could see, in
        commit order (records made before ``since`` are skipped). Pass the returned
        position to the next call: each record is read by exactly one call of the chain.
        """

    async def ping(self) -> None:
        """Raise StoreError unless the database answers a query."""

    # -- queues ---------------------------------------------------------------------
    async def put_queues(self, queues: Sequence[Queue]) -> dict[str, Queue]:
        """Store the limits of these queues; return the earlier declarations that differ."""

    async def get_queues(self, names: Sequence[str] | None = None) -> dict[str, Queue]:
        """The stored declarations of these queues (every one when None), by name."""

    async def queue_depths(self, names: Sequence[str] | None = None) -> dict[str, int]:
        """How many runs of each queue are runnable and unclaimed now (queues with none
        are left out unless named)."""

    async def acquire_queue_slot(
        self, queue: str, kind: str, slots: int, holder: str, hold_seconds: float
    ) -> SlotGrant:
        """Take one of the ``slots`` rows of ``(queue, kind)`` that is free or expired,
        holding it for ``hold_seconds``; one statement, so no two callers get one row.
        While rows at or above ``slots`` (left by a higher limit) are still held, grant
        only when fewer than ``slots`` rows of the queue are held in all."""

    async def renew_queue_slots(self, tokens: Sequence[str], hold_seconds: float) -> set[str]:
        """Extend the holds of these slot tokens; return the tokens still held."""

    async def release_queue_slot(self, queue: str, token: str) -> None:
        """Free a slot (if ``token`` still holds it) and wake the queue's waiters."""

    async def publish(self, *topics: str) -> None:
        """Wake subscribers of ``topics`` in every process sharing the database."""

    # -- notifications --------------------------------------------------------------
    def subscribe(self, topic: str) -> Subscription:
        """A flag set when ``topic`` may have changed: ``WORK``, ``JOBS`` or ``run_topic(id)``."""
