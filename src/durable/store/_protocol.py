"""The Store protocol: the persistence primitives the runtime and the client need.

A store holds runs, their journals and their signals, the versioned JSON flow
definitions, the external jobs of SERVICE_TASK steps, cron schedules and queue limits.
It knows nothing of replay: it claims runs under leases, appends journal entries under a
fencing epoch, and wakes whoever waits for a change. ``sqlite.py`` and ``postgres.py``
implement it; one conformance suite (``tests/store``) runs against both.

``Store`` is composed of one protocol per role, so that a part of the code can say which
part of the store it needs, and a backend can build the store from one object per role
(``_composed.Composed``). Every method is a single transaction. Times are seconds since
the epoch, taken from the store's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ..info import Status
from ..queues import Queue
from ._admin import FleetMetrics, StepDurations
from ._completed import CompletedResults
from ._diagnosis import Diagnosis
from ._notify import Subscription
from ._records import (
    Commit,
    DefinitionRecord,
    Fence,
    ForkStart,
    JobAnswer,
    JobRecord,
    JournalEntry,
    LeaseState,
    Planner,
    QueueClaim,
    RunQuery,
    RunRecord,
    ScheduleRecord,
    SignalRecord,
    SlotGrant,
)
from ._workers import LivenessLock, WorkerInfo, WorkerRecord


class RunStore(Protocol):
    """Runs: their journals, signals, commits of progress, events and children."""

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
        tags: Sequence[tuple[str, str]] = (),
    ) -> tuple[RunRecord, bool]:
        """Insert a PENDING run unless the id exists; return the run and whether it is new.

        ``tags`` are stored with a new run in the same statement (an existing run keeps its own).
        A ``flow_version`` of ``LATEST_VERSION`` pins a new flow run to the latest stored
        version of the definition ``workflow``, read in the same statement; raises
        DefinitionNotFoundError when none is stored (and no run has the id).
        """

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run with its ``tags``, or None."""

    async def list_runs(
        self,
        *,
        status: Status | None = None,
        workflow: str | None = None,
        limit: int,
        business_key: str | None = None,
        query: RunQuery | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        """Runs (with their ``tags``) matching ``query`` and every keyword filter given,
        newest first (by ``created_at``, then id); with ``before``, only the runs after that
        (created_at, id) in that order: the next page."""

    async def bulk_cancel(self, query: RunQuery, *, dry_run: bool = False, batch: int = 500) -> int:
        """Cancel the open runs matching ``query`` that were not asked to cancel yet, as
        ``request_cancel`` does (``_rules.cancel_action``); return how many (with
        ``dry_run``: how many would be, changing nothing).

        Works through ``batch`` runs per transaction; a run that ends or is cancelled
        meanwhile is left alone.
        """

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

    async def renew(
        self, owner: str, fences: list[Fence], lease_seconds: float
    ) -> dict[str, LeaseState]:
        """Extend leases; runs missing from the answer were lost to another worker."""

    async def pending_signals(self, run_id: str, after_id: int) -> list[SignalRecord]:
        """Unconsumed signals of a run with an id above ``after_id``, oldest first."""

    async def commit(self, commit: Commit) -> bool:
        """Append entries, consume signals and apply the outcome, atomically.

        Returns whether the run is marked to pause (``request_pause``, or ``commit.pause``):
        the executor then starts nothing new, so a pause committed before a step's result
        is honoured before the next step starts, without a read of its own.
        Raises LeaseLostError, writing nothing, when the run's epoch moved on.
        """

    async def get_event(self, run_id: str, key: str) -> str | None:
        """The JSON value a run last published under ``key``, or None."""

    async def child_ids(self, run_id: str) -> list[str]:
        """The ids of the runs started as children of ``run_id``, oldest first."""


class QueueStore(Protocol):
    """What is due where: the claim, wake-up times, queue limits and depths, activity slots."""

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

    async def next_wake_at(
        self, queues: Sequence[str] | None = None, *, limited: Sequence[str] = ()
    ) -> float | None:
        """The earliest time a run of ``queues`` (and ``limited``) becomes runnable.

        For ``limited`` queues (whose claims a global limit may hold back) only future
        times count, plus the time a rate-limited queue's window frees a start; a slot
        freed by a run ending is announced on ``WORK`` (``publish``) instead.
        """

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


class FlowStore(Protocol):
    """Versioned JSON flow definitions and the external jobs of SERVICE_TASK steps."""

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
        polled the job since. ALREADY, changing nothing, when this worker completed it
        before or the engine closed it (CANCELLED, or its run has finished: the job is
        cancelled then); CONFLICT, changing nothing, when someone else holds or closed it.
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


class ScheduleStore(Protocol):
    """Cron schedules, and the runs their due ticks start."""

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


class AdminStore(Protocol):
    """Operator queries (mostly read-only; the REST server and the CLI), and unparking runs."""

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

    async def unpark(self, workflows: Sequence[str] | None = None) -> int:
        """Make parked runs runnable again (new code was deployed); return how many.

        With ``workflows``: only the runs of those workflows that were parked because the
        worker that claimed them did not know their workflow.
        """


class WorkerStore(Protocol):
    """The worker registry: which worker processes run, what they serve and know."""

    async def register_worker(self, worker: WorkerInfo) -> None:
        """Insert or replace the worker's row; its start and heartbeat are now."""

    async def heartbeat_worker(self, worker_id: str) -> bool:
        """Set the worker's heartbeat to now; False if it has no row (register again)."""

    async def unregister_worker(self, worker_id: str) -> None:
        """Delete the worker's row (a clean stop); no error if there is none."""

    async def list_workers(self) -> list[WorkerRecord]:
        """Every registered worker, oldest first; ``live`` per ``_rules.worker_live``."""

    def liveness_lock(self, worker_id: str) -> LivenessLock:
        """The lock that says ``worker_id``'s process lives (``_workers.LivenessLock``):
        a session advisory lock on a connection of its own on Postgres, an OS file lock
        beside the database file on SQLite. Nothing is taken until ``acquire``."""

    async def take_over(self, worker_ids: Sequence[str]) -> dict[str, int]:
        """Take over the runs of those of ``worker_ids`` whose liveness lock nobody holds
        (checked again here, under a lock): their leases expire now and their runs go
        ahead of runs not started yet (``_rules.TAKEN_OVER_AT``); their rows are deleted.
        Return each worker taken over with how many runs it freed. A worker whose lock
        is held (or that another peer took over first) is left alone.
        """


class ControlStore(Protocol):
    """Operator control of runs: pause, resume and retry, one run or every run a query matches."""

    async def request_pause(self, run_id: str, reason: str | None = None) -> RunRecord:
        """Pause a run (``_rules.pause_action``); return it as it is now.

        A run no worker holds is PAUSED at once; a held one is marked, and its worker
        gives it back PAUSED once the activities in flight have ended. A paused run is
        never claimed; signals and a child's end are stored and wake it only on resume.
        Pausing a paused run changes nothing. Raises RunNotFoundError, or RunClosedError
        for a run that has ended.
        """

    async def resume(self, run_id: str) -> RunRecord:
        """Undo a pause: a PAUSED run is runnable at once (a parked one stays parked).

        A no-op for a run that is not paused. Raises RunNotFoundError, or RunClosedError
        for a run that has ended.
        """

    async def fork_run(self, fork: ForkStart) -> RunRecord:
        """Create a PENDING run with ``fork.entries`` as its journal, the origin's
        workflow, business key, flow version, queue, priority and tags, its events, and
        ``forked_from``/``fork_at``, in one transaction.

        Raises RunConflictError, creating nothing, when the id is taken.
        """

    async def retry_run(self, run_id: str) -> RunRecord:
        """Reopen a FAILED run where it failed: append a ``retried`` record to its journal
        (replay then supersedes the failure: ``runtime._journal.superseded``), queue its
        failed external jobs again, and make it runnable now, under the same id.

        Raises RunNotFoundError, or RunStateError for a run that is not FAILED.
        """

    async def bulk_retry(self, query: RunQuery, *, dry_run: bool = False, batch: int = 500) -> int:
        """Retry the FAILED runs ``query`` matches, ``batch`` per statement; return how many."""

    async def bulk_pause(
        self, query: RunQuery, *, reason: str | None = None, dry_run: bool = False, batch: int = 500
    ) -> int:
        """Pause the open, unpaused runs ``query`` matches, ``batch`` per statement; return
        how many (with ``dry_run``: how many would be, changing nothing)."""

    async def bulk_resume(self, query: RunQuery, *, dry_run: bool = False, batch: int = 500) -> int:
        """Resume the paused runs ``query`` matches, ``batch`` per statement; return how many."""


class DiagnosisStore(Protocol):
    """Why a run is not progressing: the facts ``Handle.describe`` words as ``blocked_on``."""

    async def diagnose(self, run_id: str) -> Diagnosis | None:
        """The run (with its tags and children) and, while it is open, what may hold it
        up (``_diagnosis.Diagnosis``), read at once; None when there is no such run."""


class RetentionStore(Protocol):
    """Deleting finished runs (``App.prune``, ``App(retention=)``), and named leases for
    work that one process of many does at a time (the background sweep)."""

    async def prune_runs(
        self,
        older_than: float,
        *,
        statuses: Sequence[Status] = (),
        dry_run: bool = False,
        batch: int = 500,
        max_runs: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete the runs that finished more than ``older_than`` seconds ago (of
        ``statuses`` when given) and every row they own: journal, signals, events, jobs,
        tags. Return how many runs (with ``dry_run``: how many would be, deleting nothing).

        Never an open run (PAUSED is open), a child whose parent is open, or a parent
        with an open child (``_rules.prune_conditions``). Works through ``batch`` runs
        per transaction, oldest first, up to ``max_runs``; calls ``progress`` with the
        total so far after each batch. A run another transaction holds at that moment
        is left for the next prune. Raises InvalidInputError for an open status or a
        negative age.
        """

    async def take_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``seconds``; False (changing nothing)
        while another owner holds it unexpired (``_rules.lease_takeable``)."""

    async def drop_lease(self, name: str, owner: str) -> None:
        """Give up the lease ``name`` if ``owner`` holds it."""


class Notifications(Protocol):
    """Wake-ups across processes sharing the database."""

    async def publish(self, *topics: str) -> None:
        """Wake subscribers of ``topics`` in every process sharing the database."""

    def subscribe(self, topic: str) -> Subscription:
        """A flag set when ``topic`` may have changed: ``WORK``, ``JOBS`` or ``run_topic(id)``."""


class Store(
    RunStore,
    QueueStore,
    FlowStore,
    ScheduleStore,
    AdminStore,
    WorkerStore,
    ControlStore,
    DiagnosisStore,
    RetentionStore,
    Notifications,
    Protocol,
):
    """Persistence primitives. Every method is a single transaction."""

    location: str
    """Where the store lives, for people: its DSN without the password."""

    completed: CompletedResults
    """Results of runs that completed through this store object, in this process
    (``_completed``): ``Handle.result`` reads them without a round trip."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None: ...
