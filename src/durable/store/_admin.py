"""Read-only queries for operators (the REST server): pages with totals, fleet figures.

The SQLite and Postgres mixins (``_sqlite_admin``, ``_postgres_admin``) answer these from
the database, so the figures are the fleet's whatever process executed the runs. Step
durations are read incrementally: ``Store.step_durations`` returns the steps that ended
since a position it handed out, and the caller keeps the running totals
(``StepTally`` buckets what one call reads).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..info import Status

CHUNK_ROWS = 1000
"""Step records read per query (SQLite: per turn on the reader connection)."""

StepRow = tuple[str, int, str | None, float, str | None]
"""A step record as the stores read it: run id, position, payload, created_at, workflow."""


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


@dataclass(frozen=True, slots=True)
class StepDurations:
    """What one ``Store.step_durations`` call read."""

    steps: list[StepLatency]
    """The steps whose end this call read, by workflow and step type (this call only)."""
    position: str
    """Pass it to the next call: it reads what this one could not see. Opaque."""
    rows: int
    """Journal rows the call read (step records and the start records they point at)."""


@dataclass(slots=True)
class _Pending:
    """An end record whose start time and type are in its start record."""

    workflow: str
    step_type: object
    ended: str


class StepTally:
    """Buckets the durations of the step records one ``step_durations`` call reads.

    A quick step is one record holding ``startedAt`` and ``at``; a step that waited has a
    start record (``type``, ``at``) and an end record pointing at it (``"start": seq``):
    ``durable._wire.StepRecord``.
    Records made before ``since`` are skipped, as are start records and payloads that are
    not a JSON object.
    """

    def __init__(self, bounds: Sequence[float], since: float) -> None:
        self.bounds = tuple(bounds)
        self.since = since
        self.rows = 0
        self._groups: dict[tuple[str, str], list[float]] = {}
        self._pending: dict[tuple[str, int], list[_Pending]] = {}

    def add(self, rows: Sequence[StepRow]) -> list[tuple[str, int]]:
        """Tally these records; return the (run id, seq) of the start records still needed."""
        self.rows += len(rows)
        for run_id, _pos, payload, created_at, workflow in rows:
            if workflow is None or created_at < self.since:
                continue
            doc = _object(payload)
            if doc is None or "status" not in doc:
                continue
            ended, started, start = doc.get("at"), doc.get("startedAt"), doc.get("start")
            step_type = doc.get("type")
            if started is not None:
                self._record(workflow, step_type, started, ended)
            elif isinstance(start, int) and isinstance(ended, str):
                wanted = self._pending.setdefault((run_id, start), [])
                wanted.append(_Pending(workflow, step_type, ended))
        return list(self._pending)

    def add_starts(self, starts: Sequence[tuple[str, int, str | None]]) -> None:
        """Settle the pending end records with their start records: (run id, seq, payload).

        Ends whose start record was not found are dropped.
        """
        self.rows += len(starts)
        for run_id, seq, payload in starts:
            start = _object(payload)
            if start is None:
                continue
            for end in self._pending.pop((run_id, seq), []):
                step_type = end.step_type or start.get("type")
                self._record(end.workflow, step_type, start.get("at"), end.ended)
        self._pending.clear()

    def result(self) -> list[StepLatency]:
        """The tally, by workflow and step type, buckets cumulative."""
        found = []
        for (workflow, step_type), (count, total, *per_bucket) in sorted(self._groups.items()):
            cumulative, running = [], 0
            for n in per_bucket[: len(self.bounds)]:
                running += int(n)
                cumulative.append(running)
            found.append(StepLatency(workflow, step_type, tuple(cumulative), int(count), total))
        return found

    def _record(self, workflow: str, step_type: object, started: object, ended: object) -> None:
        seconds = _seconds(started, ended)
        if seconds is None or not isinstance(step_type, str):
            return
        group = self._groups.get((workflow, step_type))
        if group is None:
            group = self._groups[workflow, step_type] = [0.0] * (len(self.bounds) + 3)
        group[0] += 1
        group[1] += seconds
        group[2 + bisect.bisect_left(self.bounds, seconds)] += 1


def _object(payload: str | None) -> dict[str, object] | None:
    try:
        doc = json.loads(payload or "null")
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _seconds(started: object, ended: object) -> float | None:
    """``ended - started`` in seconds, for two ISO 8601 times (UTC unless they say)."""
    if not isinstance(started, str) or not isinstance(ended, str):
        return None
    try:
        start, end = datetime.fromisoformat(started), datetime.fromisoformat(ended)
    except ValueError:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return (end - start).total_seconds()
