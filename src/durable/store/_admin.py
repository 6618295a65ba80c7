"""Read-only queries for operators (the REST server): pages with totals, fleet figures.

The SQLite and Postgres mixins (``_sqlite_admin``, ``_postgres_admin``) answer these from
the database, so the figures are the fleet's whatever process executed the runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..info import Status

STEP_KIND = "step"
"""The journal kind of flow step records (``flow._interpreter.STEP``)."""


@dataclass(frozen=True, slots=True)
class JobQueue:
    """The open external jobs of one job type, now."""

    job_type: str
    queued: int
    """Waiting for a poller (never handed out, or re-queued after a retryable failure)."""
    held: int
    """Handed to a worker whose lease has not expired."""
    expired: int
    """Handed to a worker whose lease has expired; the next poll hands them out again."""


@dataclass(frozen=True, slots=True)
class StepLatency:
    """Durations of the ended flow steps of one workflow and step type, bucketed."""

    workflow: str
    step_type: str
    buckets: tuple[int, ...]
    """Cumulative: how many took at most each bound (in the order of the bounds asked)."""
    count: int
    total_seconds: float


@dataclass(frozen=True, slots=True)
class FleetMetrics:
    """What ``Store.fleet_metrics`` reads in one go."""

    runs: list[tuple[str, Status, int]]
    """(workflow, status, how many runs) for every pair that has runs."""
    runnable: int
    """Runs a worker may claim now (new, woken, due, or whose lease expired)."""
    jobs: list[JobQueue]
    steps: list[StepLatency]
