"""What a store reads to tell why an open run is not progressing (``Handle.describe``).

One ``diagnose`` call reads the run and, while it is open, what it may be held up by:
the progress records of its operations that have not ended (a retry's backoff, an armed
timer, a started child, the start of a user task it waits on), the external jobs it
waits on, the live workers of its queue, and its queue's limits and load. The client's
``_blocked`` turns these facts into words.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..queues import Queue
from ._records import JournalEntry, RunRecord

TASK_PREFIX = "durable.task#"
JOB_PREFIX = "durable.job#"
"""The prefixes of ``_wire.user_task_signal`` and ``_wire.job_signal_name``, which the
Postgres statement matches in ``runs.wait_signals``."""


@dataclass(frozen=True, slots=True)
class WaitingJob:
    """An external job the run waits on (the job of a SERVICE_TASK step)."""

    seq: int
    step_id: str
    job_type: str
    status: str
    attempt: int
    worker_id: str | None


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A run, and while it is open what may hold it up; times by the store's clock."""

    run: RunRecord
    now: float
    children: tuple[str, ...] = ()
    """The runs it started with ``ctx.child``, oldest first."""
    open_records: tuple[JournalEntry, ...] = ()
    """The latest progress records (``retry``, ``timer``, ``start``) of its operations
    that have not ended, and the step records at which the user tasks it waits on
    started, in journal order."""
    jobs: tuple[WaitingJob, ...] = ()
    live_workers: int = 0
    """Live registered workers that serve the run's queue."""
    holder_live: bool = False
    """Whether the worker holding the run's lease is a live registered worker."""
    queue: Queue | None = None
    """The stored limits of the run's queue, if it has any."""
    leased: int = 0
    """Runs of the queue held by workers now."""
    started: int = 0
    """Runs of the queue started within its rate limit's window."""
    ahead: int = 0
    """Runnable runs of the queue that a claim takes before this one."""
