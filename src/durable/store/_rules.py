"""The decisions both stores make, written once: each backend only runs the statements.

A backend reads what a rule needs, asks the rule, and executes what it answers; no rule
touches a connection. Some rules are also part of one Postgres statement, where reading
the inputs first would cost a round trip (a claim's room, a slot's gate, a wake-up
time): the SQLite backend calls the Python form here, and the Postgres statement's
comment names the rule it inlines.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._wire import CANCELLED_BEFORE_START, child_dedupe_key, child_done_payload, child_signal
from ..errors import (
    InvalidInputError,
    LeaseLostError,
    RunClosedError,
    RunConflictError,
    RunNotFoundError,
    RunStateError,
)
from ..info import Status
from ..queues import Queue
from ._notify import WORK, run_topic
from ._records import (
    TERMINAL,
    Commit,
    Finish,
    JobAnswer,
    JobRecord,
    Outcome,
    Release,
    Restart,
    RunQuery,
    ScheduleRecord,
    Suspend,
)

_TERMINAL = frozenset(str(s) for s in TERMINAL)


def is_closed(status: str | None) -> bool:
    """Whether a run with this status (None: no such run) takes no more work."""
    return status is None or status in _TERMINAL


def lease_lost(run_id: str) -> LeaseLostError:
    """The error of a write refused because the run's epoch moved on."""
    return LeaseLostError(
        f"run {run_id!r} was taken over by another worker; this worker's write was refused"
    )


# -- runs -------------------------------------------------------------------------------
def run_filters(
    status: Status | None, workflow: str | None, business_key: str | None
) -> list[tuple[str, object]]:
    """The (column, value) conditions of ``list_runs``: only the filters given.

    Each combination then gets a plan that uses its index (a prepared ``$1 IS NULL OR``
    would hide the index from the planner).
    """
    filters = {
        "status": None if status is None else str(status),
        "workflow": workflow,
        "business_key": business_key,
    }
    return [(column, value) for column, value in filters.items() if value is not None]


def merged_query(
    query: RunQuery | None, status: Status | None, workflow: str | None, business_key: str | None
) -> RunQuery:
    """``query`` with the keyword filters of the older ``list_runs`` form laid over it."""
    query = query or RunQuery()
    return replace(
        query,
        status=status or query.status,
        workflow=workflow or query.workflow,
        business_key=business_key or query.business_key,
    )


BULK_CANCELLABLE = "status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') AND NOT cancel_requested"
"""The runs a bulk cancel changes: open, and not asked to cancel yet."""


@dataclass(frozen=True, slots=True)
class BulkCancel:
    """What one batch of a bulk cancel does (``cancel_action`` applied to each row)."""

    end: list[str]
    """Runs that end CANCELLED at once."""
    request: list[str]
    """Runs asked to cancel and woken."""
    children: list[str]
    """Children that end at once: cancelled one by one, so their parent is locked first."""


def bulk_cancel_plan(rows: Iterable[Sequence[Any]]) -> BulkCancel:
    """Sort rows (id, status, lease_owner, parked_reason, epoch, parent_id) by ``cancel_action``."""
    plan = BulkCancel([], [], [])
    for run_id, status, owner, parked, epoch, parent_id in rows:
        action = cancel_action(status, owner, parked, epoch)
        if action is Cancel.END:
            (plan.end if parent_id is None else plan.children).append(run_id)
        elif action is Cancel.REQUEST:
            plan.request.append(run_id)
    return plan


def query_conditions(
    query: RunQuery, before: tuple[float, str] | None = None
) -> list[tuple[str, tuple[object, ...]]]:
    """The SQL conditions of a ``RunQuery`` (``{}`` marks a parameter) and their values.

    Each tag is one ``id IN (...)`` on ``run_tags (key, value, run_id)``; ``before`` is the
    (created_at, id) of the last run of the previous page (pages go newest first).
    """
    conditions: list[tuple[str, tuple[object, ...]]] = [
        (f"{column} = {{}}", (value,))
        for column, value in run_filters(query.status, query.workflow, query.business_key)
    ]
    if query.queue is not None:
        conditions.append(("queue = {}", (query.queue,)))
    if query.created_after is not None:
        conditions.append(("created_at >= {}", (query.created_after,)))
    if query.created_before is not None:
        conditions.append(("created_at < {}", (query.created_before,)))
    for key, value in query.tags:
        conditions.append(
            ("id IN (SELECT run_id FROM run_tags WHERE key = {} AND value = {})", (key, value))
        )
    if before is not None:
        conditions.append(
            (
                "(created_at < {} OR (created_at = {} AND id < {}))",
                (before[0], before[0], before[1]),
            )
        )
    return conditions


def signal_target(run_id: str, status: str | None) -> bool:
    """Whether a signal may be stored for a run in ``status`` (False: it has ended).

    Raises RunNotFoundError when there is no such run.
    """
    if status is None:
        raise RunNotFoundError(run_id)
    return status not in _TERMINAL


def closed_signal(run_id: str, status: str, repeated: bool) -> bool:
    """The answer to a signal for an ended run: a repeat of one it received before it
    ended stays a no-op (False); anything else raises RunClosedError."""
    if repeated:
        return False
    raise RunClosedError(run_id, status)


def outcome_topics(run_id: str, outcome: Outcome | None) -> tuple[str, ...]:
    """What a committed outcome wakes: the run's waiters, and idle workers when the run
    is runnable again now or later (released, or suspended)."""
    if outcome is None:
        return ()
    if isinstance(outcome, Suspend | Release):
        return run_topic(run_id), WORK
    return (run_topic(run_id),)


# -- pause and resume -------------------------------------------------------------------
class Pause(enum.Enum):
    """What ``request_pause`` does to a run."""

    NOTHING = "nothing"
    """It is paused already, or asked to pause."""
    NOW = "now"
    """No worker holds it: it is PAUSED at once and nothing wakes it until resumed."""
    REQUEST = "request"
    """A worker holds it: mark it and wake the worker, which lets the activities in
    flight finish, starts nothing new and gives the run back PAUSED."""


def pause_action(
    run_id: str, status: str | None, lease_owner: str | None, paused_reason: str | None
) -> Pause:
    """What ``request_pause`` does to a run, from its row (``status`` None: no such run).

    Raises RunNotFoundError, or RunClosedError for a run that has ended.
    """
    if status is None:
        raise RunNotFoundError(run_id)
    if status in _TERMINAL:
        raise RunClosedError(run_id, status, "cannot be paused")
    if paused_reason is not None:
        return Pause.NOTHING
    return Pause.NOW if lease_owner is None else Pause.REQUEST


def resume_target(run_id: str, status: str | None, paused_reason: str | None) -> bool:
    """Whether ``resume`` changes a run: it is paused or asked to pause (else a no-op).

    Raises RunNotFoundError, or RunClosedError for a run that has ended.
    """
    if status is None:
        raise RunNotFoundError(run_id)
    if status in _TERMINAL:
        raise RunClosedError(run_id, status, "cannot be resumed")
    return paused_reason is not None


def fork_taken(run_id: str) -> RunConflictError:
    """The error of a fork into an id that a run has."""
    return RunConflictError(f"cannot fork into run id {run_id!r}: a run with that id exists")


def retry_target(run_id: str, status: str | None) -> None:
    """Check that ``retry_run`` may reopen a run: it exists and FAILED.

    Raises RunNotFoundError, or RunStateError for a run in any other status.
    """
    if status is None:
        raise RunNotFoundError(run_id)
    if status != Status.FAILED:
        raise RunStateError(run_id, status, "only a FAILED run can be retried")


BULK_RETRYABLE = "status = 'FAILED'"
"""The runs a retry reopens (``retry_target``)."""
BULK_PAUSABLE = "status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') AND paused_reason IS NULL"
"""The runs a pause changes (``pause_action`` not NOTHING, for runs that exist)."""
BULK_RESUMABLE = "status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') AND paused_reason IS NOT NULL"
"""The runs a resume changes (``resume_target``)."""
PAUSED_BY_OPERATOR = "paused by an operator"
"""The reason of a pause that gave none."""


# -- cancellation -----------------------------------------------------------------------
class Cancel(enum.Enum):
    """What a cancellation request does to a run."""

    NOTHING = "nothing"
    """The run has ended."""
    END = "end"
    """It never started, or is parked (its code cannot replay): it ends CANCELLED now."""
    REQUEST = "request"
    """It started once: mark it, and wake it to replay and run its cleanup code (a paused
    run is resumed for that)."""


def cancel_action(
    status: str, lease_owner: str | None, parked_reason: str | None, epoch: int
) -> Cancel:
    """What ``request_cancel`` does to a run, from its row."""
    if status in _TERMINAL:
        return Cancel.NOTHING
    never_started = status in (Status.PENDING, Status.PAUSED) and epoch == 0
    if lease_owner is None and (never_started or parked_reason):
        return Cancel.END
    return Cancel.REQUEST


ENDED_UNSTARTED = Finish(Status.CANCELLED, error=CANCELLED_BEFORE_START)
"""How a run cancelled before it started ends (and what its parent hears)."""


def cancelled_topics(run_ids: Iterable[str]) -> set[str]:
    """What the cancellation of these runs wakes (nothing when there are none)."""
    topics = {run_topic(run_id) for run_id in run_ids}
    if topics:
        topics.add(WORK)
    return topics


# -- links between runs -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Links:
    """What a commit does to other rows than its run's, journal and signals (besides
    starting ``commit.children`` and storing ``commit.events``)."""

    restart: bool
    """Continue as new: drop the journal and the consumed signals."""
    cancel_children: bool
    parent_end: Finish | None
    """The end to tell the parent (``commit.parent_id``)."""


def links(commit: Commit) -> Links:
    """What the outcome of a commit asks of its links."""
    outcome = commit.outcome
    return Links(
        restart=isinstance(outcome, Restart),
        cancel_children=isinstance(outcome, Finish | Restart) and outcome.cancel_children,
        parent_end=outcome
        if isinstance(outcome, Finish) and commit.parent_id is not None
        else None,
    )


def adoption(
    parent_id: str | None, status: str, result: str | None, error: str | None
) -> Finish | bool:
    """A child start whose id names a run already: that run is the child.

    An ended one: its end, to tell the parent now. An open one: True when it needs the
    parent set (it has none), False when nothing is to be done (the commit created it
    just now, or another parent has it).
    """
    if status in _TERMINAL:
        return Finish(Status(status), result, error)
    return parent_id is None


def child_end(run_id: str, outcome: Finish) -> tuple[str, str, str]:
    """The signal a child's end sends its parent: (name, payload, dedupe key)."""
    payload = child_done_payload(run_id, str(outcome.status), outcome.result, outcome.error)
    return child_signal(run_id), payload, child_dedupe_key(run_id)


def told_topics(parent_id: str, stored: bool) -> set[str]:
    """What telling a parent its child's end wakes (nothing for a repeat)."""
    return {run_topic(parent_id), WORK} if stored else set()


# -- jobs -------------------------------------------------------------------------------
def judge_job_call(
    status: str | None, holder: str | None, worker_id: str, closes_as: str
) -> JobAnswer | None:
    """Whether ``worker_id`` may close a job as ``closes_as``; None when it may.

    NOT_FOUND without a job (``status`` None). A job the engine closed itself (CANCELLED:
    an interrupting boundary timer, an END or a cancel ended its step) is ALREADY for the
    worker that held it, or for anyone if nobody did: nobody waits for its outcome, and
    Rochallor's SDK workers treat a refusal there as fatal. The holder may close a
    RUNNING job even past its lease, as long as nobody polled the job since (the poll
    would have made someone else the holder). A repeat of what the same worker already
    did is ALREADY; everything else (the lease passed to another worker) is CONFLICT.
    The caller then checks the job's run: a job whose run has ended is cancelled,
    answering ALREADY too (``closed_by_engine``).
    """
    if status is None:
        return JobAnswer.NOT_FOUND
    if status == "CANCELLED" and holder in (None, worker_id):
        return JobAnswer.ALREADY
    if holder != worker_id:
        return JobAnswer.CONFLICT
    if status == "RUNNING":
        return None
    return JobAnswer.ALREADY if status == closes_as else JobAnswer.CONFLICT


def closed_by_engine() -> JobAnswer:
    """The answer to closing a job whose run has ended (the store then cancels the job):
    a no-op, as when the engine had cancelled the job before (``judge_job_call``)."""
    return JobAnswer.ALREADY


def poll_types(job_types: Sequence[str], limit: int) -> list[str]:
    """The job types a poll reads, once each (none: nothing to poll)."""
    return list(dict.fromkeys(job_types)) if limit > 0 else []


def oldest_first(jobs: Iterable[JobRecord]) -> list[JobRecord]:
    """Polled jobs in the order they were queued."""
    return sorted(jobs, key=lambda job: (job.created_at, job.id))


# -- queues -----------------------------------------------------------------------------
def queue_room(claim_cap: int, stored: Queue | None, leased: int, started: int) -> int:
    """How many runs of a queue a claim may start now: the claimer's cap, less what the
    queue's global concurrency (``leased`` now) and rate limit (``started`` in the
    window) leave. The Postgres claim computes this in its ``room`` CTE."""
    room = claim_cap
    if stored is not None and stored.concurrency is not None:
        room = min(room, stored.concurrency - leased)
    if stored is not None and stored.rate_limit is not None:
        room = min(room, stored.rate_limit[0] - started)
    return room


# A band holding only runs sleeping or leased still costs a probe, so a claim's walk of
# a queue's priority bands does not go on blindly: after WALK bands, and again each time
# the bands walked double (up to LOOK), it counts the due runs below, up to PER_BAND per
# band walked. When they are no more, it stops and takes them from runs_queue_due (the
# due runs only), sorted. So a claim costs about the least of the bands above its runs
# and the due runs themselves. The Postgres claim inlines this in its ``bands`` CTE.
WALK = 8
PER_BAND = 8
LOOK = 512


def checks_below(depth: int) -> bool:
    """Whether a claim that has walked ``depth`` bands counts the due runs below (and
    takes them all when they are at most ``depth * PER_BAND``): at 8, 16, 32... bands."""
    return WALK <= depth <= LOOK and depth & (depth - 1) == 0


def counts_as_start(epoch: int, rated: bool) -> bool:
    """Whether a claim uses up a start of its queue's rate limit: the run's first claim."""
    return rated and epoch == 1


def wake_probes(queues: Sequence[str], limited: Sequence[str]) -> list[tuple[str, bool]]:
    """The queues whose next wake-up to read: (name, whether only future times count).

    A limited queue's due runs may be held back by its limit (a freed slot is announced
    instead), so only its future times count, and its rate window's first start plus
    the period. The Postgres query takes these as its rows.
    """
    return [(name, False) for name in queues] + [(name, True) for name in limited]


def changed_queues(before: Mapping[str, Queue], queues: Sequence[Queue]) -> dict[str, Queue]:
    """The earlier declarations, of ``queues``, that differ from the new ones."""
    return {q.name: before[q.name] for q in queues if q.name in before and before[q.name] != q}


def slot_gate(held_above: bool, held: int, slots: int) -> bool:
    """Whether a slot of a queue may be taken at all.

    Rows at or above a lowered limit that are still held leave the rows below it no
    bound on the count: then every held row counts. The Postgres slot statement
    inlines this (its ``gate``).
    """
    return not held_above or held < slots


def next_slot(top: int | None, slots: int) -> int:
    """The row to create when every existing one is busy (``slots``: none may be)."""
    return min(0 if top is None else top + 1, slots)


# -- schedules --------------------------------------------------------------------------
def paused_next_fire(
    schedule: ScheduleRecord,
    paused: bool,
    now: float,
    replan: Callable[[ScheduleRecord, float], float],
) -> float:
    """Where ``next_fire_at`` goes when a schedule that is not so yet is paused (it stays)
    or resumed (planned afresh from now)."""
    return schedule.next_fire_at if paused else replan(schedule, now)


def worker_live(heartbeat_at: float, stale_after: float, now: float) -> bool:
    """A registered worker is live while its last heartbeat is at most ``stale_after`` old."""
    return now - heartbeat_at <= stale_after


# -- retention --------------------------------------------------------------------------
PRUNE_ORDER = "created_at, id"
"""The order a prune takes runs in: oldest first, on the ``runs_created`` index."""


def prune_conditions(
    cutoff: float, statuses: Sequence[Status] = ()
) -> list[tuple[str, tuple[object, ...]]]:
    """Which runs a prune deletes (``{}`` marks a parameter, as ``query_conditions``).

    Finished (of ``statuses`` when given) at or before ``cutoff`` (its ``updated_at``;
    ``created_at`` is never later, and bounds the index range); never a child whose
    parent is open, nor a parent with an open child (a PAUSED run is open), so a tree is
    pruned only once every run of it has ended.
    """
    wanted = prune_statuses(statuses)
    marks = ", ".join("{}" for _ in wanted)
    open_ = "status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"
    return [
        (f"status IN ({marks})", tuple(wanted)),
        ("created_at <= {}", (cutoff,)),
        ("updated_at <= {}", (cutoff,)),
        (
            f"NOT EXISTS (SELECT 1 FROM runs p WHERE p.id = runs.parent_id AND p.{open_})",
            (),
        ),
        (
            f"NOT EXISTS (SELECT 1 FROM runs c WHERE c.parent_id = runs.id AND c.{open_})",
            (),
        ),
    ]


def prune_statuses(statuses: Sequence[Status]) -> list[str]:
    """The statuses a prune takes: those given (each must be a finished one), else all
    finished ones.

    Raises InvalidInputError naming an open status.
    """
    for status in statuses:
        if str(status) not in _TERMINAL:
            raise InvalidInputError(
                f"prune deletes finished runs only: status {str(status)!r} is not"
                " COMPLETED, FAILED or CANCELLED"
            )
    return sorted({str(s) for s in statuses} or _TERMINAL)


def prune_cutoff(now: float, older_than: float) -> float:
    """The latest end time a pruned run may have.

    Raises InvalidInputError for a negative age.
    """
    if older_than < 0:
        raise InvalidInputError(f"prune(older_than=) must not be negative, got {older_than} s")
    return now - older_than


def lease_takeable(holder: str | None, expires_at: float | None, owner: str, now: float) -> bool:
    """Whether ``owner`` may take (or renew) a named lease: nobody holds it, it holds it
    itself, or the holder's lease has expired. The Postgres upsert inlines this."""
    return holder is None or holder == owner or (expires_at is not None and expires_at <= now)
