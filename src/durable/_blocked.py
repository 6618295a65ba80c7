"""Why an open run is not progressing, in words: a ``Diagnosis`` as a ``BlockedOn``.

The store reads the facts in one call (``Store.diagnose``); this module decides which
one holds the run up, in this order: a pause, a park, a retry's backoff, a worker's
lease, the signals it waits on (user tasks, jobs, children, named signals), a timer,
and for a runnable run its queue (no live worker, a limit reached, busy workers).
Times in messages are UTC, with how long ago or how soon.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from ._wire import Event, Kind, RetryRecord, StoredError, child_started
from .info import BlockedOn, Status
from .store import Diagnosis, JournalEntry
from .store._diagnosis import JOB_PREFIX, TASK_PREFIX

_CHILD_PREFIX = "durable.child:"


def blocked_on(d: Diagnosis) -> BlockedOn | None:
    """What holds the run of ``d`` up; None once it has ended."""
    run = d.run
    if run.status.is_terminal:
        return None
    if run.status is Status.PAUSED or run.paused_reason:
        said = run.paused_reason or "paused"
        said = said if said.lower().startswith("paused") else f"paused: {said}"
        return BlockedOn("paused", f"{said} (resume it to go on)", _when(run.updated_at))
    if run.parked_reason:
        return BlockedOn("parked", _parked(run.parked_reason), _when(run.updated_at))
    backoff = _backoff(d)
    if backoff is not None:
        return backoff
    if run.lease_owner is not None:
        return _lease(d, run.lease_owner)
    if run.wait_signals:
        return _waits(d)
    if run.runnable_at is not None and run.runnable_at > d.now:
        return _timer(d, run.runnable_at)
    return _queue(d)


def _parked(reason: str) -> str:
    try:
        error = StoredError.loads(reason)
    except ValueError:
        return f"parked: {reason}"
    if error.type == "NonDeterminismError" and error.seq is not None:
        return (
            f"parked: the code asks for {error.requested} where the journal holds"
            f" {error.recorded} at seq {error.seq} (deploy matching code to resume it)"
        )
    return f"parked: {error.message} (a worker with fixed code resumes it)"


def _backoff(d: Diagnosis) -> BlockedOn | None:
    for entry in reversed(d.open_records):
        if entry.event != Event.RETRY:
            continue
        with contextlib.suppress(ValueError, KeyError):
            retry = RetryRecord.loads(entry.payload or "{}")
            if retry.at <= d.now:
                continue  # that attempt is due or running
            cause = f" ({retry.error.type}: {retry.error.message})" if retry.error else ""
            return BlockedOn(
                "retry_backoff",
                f"{entry.kind} {entry.name!r} failed{cause}; attempt {retry.attempt}"
                f" {_future(retry.at, d.now)}",
                _when(entry.created_at),
            )
    return None


def _lease(d: Diagnosis, owner: str) -> BlockedOn:
    expires = d.run.runnable_at
    if d.holder_live:
        until = f"; lease until {_clock(expires)}" if expires is not None else ""
        return BlockedOn("lease", f"running on worker {owner!r}{until}", _when(d.run.updated_at))
    if expires is not None and expires > d.now:
        then = f"its lease runs out {_future(expires, d.now)}, then another worker takes it over"
    else:
        then = "its lease has run out: the next claim of a worker of its queue takes it over"
    return BlockedOn(
        "lease", f"held by worker {owner!r}, which is not alive; {then}", _when(d.run.updated_at)
    )


def _waits(d: Diagnosis) -> BlockedOn:
    run = d.run
    since = f"since {_past(run.updated_at, d.now)}"
    timeout = (
        f"; times out {_future(run.runnable_at, d.now)}" if run.runnable_at is not None else ""
    )
    names = run.wait_signals
    steps = {e.seq: e.name for e in d.open_records if e.kind == Kind.STEP}
    tasks = [steps.get(int(n[len(TASK_PREFIX) :]), "?") for n in names if n.startswith(TASK_PREFIX)]
    if tasks:
        which = " and ".join(repr(t) for t in tasks)
        return BlockedOn(
            "user_task",
            f"waiting for user task {which} to be completed {since}{timeout}",
            _when(run.updated_at),
        )
    if d.jobs or any(n.startswith(JOB_PREFIX) for n in names):
        return BlockedOn("job", _jobs(d) + f" {since}{timeout}", _when(run.updated_at))
    children = [n[len(_CHILD_PREFIX) :] for n in names if n.startswith(_CHILD_PREFIX)]
    if children:
        which = " and ".join(repr(c) for c in children)
        return BlockedOn(
            "child",
            f"waiting for child run {which} to end {since}{timeout}",
            _when(run.updated_at),
        )
    which = " or ".join(repr(n) for n in names)
    return BlockedOn(
        "signal", f"waiting for signal {which} {since}{timeout}", _when(run.updated_at)
    )


def _jobs(d: Diagnosis) -> str:
    if not d.jobs:
        return "waiting for an external job"
    parts = []
    for job in d.jobs:
        state = (
            f"taken by job worker {job.worker_id!r}"
            if job.status == "RUNNING"
            else "queued for a job worker"
            if job.status == "QUEUED"
            else job.status.lower()
        )
        attempt = f", attempt {job.attempt}" if job.attempt > 1 else ""
        parts.append(f"job {job.job_type!r} of step {job.step_id!r} ({state}{attempt})")
    return "waiting for " + " and ".join(parts)


def _timer(d: Diagnosis, due: float) -> BlockedOn:
    sleeps = [e for e in d.open_records if e.event == Event.TIMER and e.kind == Kind.SLEEP]
    children = _open_children(d.open_records)
    if children:
        which = " and ".join(repr(c) for c in children)
        return BlockedOn(
            "child",
            f"waiting for child run {which} to end; wakes {_future(due, d.now)}",
            _when(d.run.updated_at),
        )
    since = _when(sleeps[-1].created_at) if sleeps else _when(d.run.updated_at)
    return BlockedOn("timer", f"sleeping until {_clock(due)} ({_span(due - d.now)} left)", since)


def _open_children(records: tuple[JournalEntry, ...]) -> list[str]:
    found = []
    for entry in records:
        if entry.event == Event.START and entry.kind == Kind.CHILD:
            with contextlib.suppress(ValueError):
                found.append(child_started(entry.payload))
    return found


def _queue(d: Diagnosis) -> BlockedOn:
    run, queue = d.run, d.queue
    since = _when(run.runnable_at) if run.runnable_at is not None else _when(run.created_at)
    ahead = f"{d.ahead} run{'' if d.ahead == 1 else 's'} ahead"
    if d.live_workers == 0:
        return BlockedOn("no_worker", f"no live worker serves queue {run.queue!r}", since)
    if queue is not None and queue.concurrency is not None and d.leased >= queue.concurrency:
        return BlockedOn(
            "queue_limit",
            f"queue {run.queue!r} at its limit of {queue.concurrency}: {ahead}",
            since,
        )
    if queue is not None and queue.rate_limit is not None and d.started >= queue.rate_limit[0]:
        count, period = queue.rate_limit
        return BlockedOn(
            "queue_limit",
            f"queue {run.queue!r} at its rate limit of {count} per {_span(period)}: {ahead}",
            since,
        )
    served = f"{d.live_workers} live worker{'' if d.live_workers == 1 else 's'}"
    return BlockedOn(
        "no_worker",
        f"runnable, waiting for a free worker of queue {run.queue!r} ({served}, {ahead})",
        since,
    )


# -- times ----------------------------------------------------------------------------
def _when(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)


def _clock(stamp: float | None) -> str:
    if stamp is None:
        return "?"
    return f"{datetime.fromtimestamp(stamp, UTC):%Y-%m-%d %H:%M:%S} UTC"


def _past(stamp: float, now: float) -> str:
    return f"{_clock(stamp)} ({_span(now - stamp)} ago)"


def _future(stamp: float | None, now: float) -> str:
    if stamp is None:
        return "?"
    return f"at {_clock(stamp)} (in {_span(stamp - now)})"


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
