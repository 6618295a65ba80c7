"""``/metrics``: Prometheus text, read from the database at scrape time.

Fleet figures (runs by workflow and status, queue depths, leases) are counted in the store
when Prometheus scrapes, so they are the same whichever server answers and whichever
worker executed the runs; they survive restarts. Flow step durations are kept here: each
read takes only the step records committed since the previous one
(``Store.step_durations``) and adds them to this process's buckets, which start empty
when the server starts. A read serves every scrape for ``max_age`` seconds; concurrent
scrapes share it. ``durable_server_job_conflicts_total`` is this process's own too.
docs/rest.md lists each figure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ..errors import StoreError
from ..info import Status
from ..store import Store
from ..store._admin import FleetMetrics, StepDurations

BOUNDS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    21600.0,
    86400.0,
    604800.0,
)
"""Step duration buckets, in seconds: from quick steps to week-long user tasks."""

MAX_AGE_SECONDS = 5.0
"""How long one read of the store serves ``/metrics`` (Prometheus scrapes every 15 s+)."""

_ENDED = {
    Status.COMPLETED: ("durable_runs_completed", "Runs that completed, by workflow."),
    Status.FAILED: ("durable_runs_failed", "Runs that failed, by workflow."),
    Status.CANCELLED: ("durable_runs_cancelled", "Runs that were cancelled, by workflow."),
}


class Metrics:
    """A registry per server: the fleet collector and this process's own counters.

    Args:
        now: The clock that step records' ``created_at`` come from (the App's); the step
            buckets count the steps that ended after this object was made.
        max_age: Seconds one read of the store serves scrapes for (0: read every time).
    """

    def __init__(
        self, *, now: Callable[[], float] = time.time, max_age: float = MAX_AGE_SECONDS
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.job_conflicts = Counter(
            "durable_server_job_conflicts",
            "Job completions or failures this server refused with 409 because the job was "
            "no longer held by the caller (a late call after its lease passed to another "
            "worker, or the job was closed).",
            ["operation"],
            registry=self.registry,
        )
        self.since = now()
        """Step records made before this are not counted."""
        self.max_age = max_age
        self._fleet: FleetMetrics | None = None
        self._store_up = False
        self._position: str | None = None
        self._steps: dict[tuple[str, str], _Buckets] = {}
        self._fresh_until = float("-inf")
        self._lock = asyncio.Lock()
        self.registry.register(self)

    async def render(self, store: Store) -> bytes:
        """Read the fleet figures (unless a recent read still serves) and render the
        registry in the text format."""
        if time.monotonic() >= self._fresh_until:
            async with self._lock:  # a scrape arriving meanwhile waits and shares the read
                if time.monotonic() >= self._fresh_until:
                    await self._read(store)
        return generate_latest(self.registry)

    async def _read(self, store: Store) -> None:
        try:
            fleet = await store.fleet_metrics()
            steps = await store.step_durations(BOUNDS, since=self.since, position=self._position)
        except StoreError:  # not cached: the next scrape asks again, from the same position
            self._fleet, self._store_up = None, False
            return
        self._add(steps)
        self._fleet, self._store_up = fleet, True
        self._fresh_until = time.monotonic() + self.max_age

    def _add(self, read: StepDurations) -> None:
        for steps in read.steps:
            known = self._steps.get((steps.workflow, steps.step_type))
            if known is None:
                known = self._steps[steps.workflow, steps.step_type] = _Buckets(len(BOUNDS))
            known.add(steps.buckets, steps.count, steps.total_seconds)
        self._position = read.position

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "durable_store_up",
            "1 when the store answered this scrape's queries, else 0 (no fleet figures then).",
            value=1 if self._store_up else 0,
        )
        fleet = self._fleet
        if fleet is not None:
            yield from _run_families(fleet)
            yield from _job_families(fleet)
            yield self._step_family()

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def _step_family(self) -> Metric:
        family = HistogramMetricFamily(
            "durable_step_duration_seconds",
            "How long JSON-flow steps that ended since this server started took, from start "
            "to end (journal step records), by workflow and step type.",
            labels=["workflow", "step_type"],
        )
        for (workflow, step_type), steps in sorted(self._steps.items()):
            buckets = [(repr(float(b)), n) for b, n in zip(BOUNDS, steps.buckets, strict=True)]
            buckets.append(("+Inf", steps.count))
            family.add_metric([workflow, step_type], buckets, steps.total_seconds)
        return family


class _Buckets:
    """The running totals of one workflow and step type (cumulative buckets)."""

    __slots__ = ("buckets", "count", "total_seconds")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size
        self.count = 0
        self.total_seconds = 0.0

    def add(self, buckets: tuple[int, ...], count: int, total_seconds: float) -> None:
        self.buckets = [a + b for a, b in zip(self.buckets, buckets, strict=True)]
        self.count += count
        self.total_seconds += total_seconds


def _run_families(fleet: FleetMetrics) -> Iterator[Metric]:
    started = CounterMetricFamily(
        "durable_runs_started", "Runs ever started, by workflow.", labels=["workflow"]
    )
    ended = {
        status: CounterMetricFamily(name, text, labels=["workflow"])
        for status, (name, text) in _ENDED.items()
    }
    current = GaugeMetricFamily(
        "durable_runs",
        "Runs not finished, by workflow and status (PENDING, RUNNING, WAITING).",
        labels=["workflow", "status"],
    )
    totals: dict[str, int] = {}
    per_status: dict[tuple[str, Status], int] = {}
    for workflow, status, count in fleet.runs:
        totals[workflow] = totals.get(workflow, 0) + count
        per_status[workflow, status] = count
    for workflow, total in totals.items():
        started.add_metric([workflow], total)
        for status, family in ended.items():
            family.add_metric([workflow], per_status.get((workflow, status), 0))
        for status in (Status.PENDING, Status.RUNNING, Status.WAITING, Status.PAUSED):
            current.add_metric([workflow, str(status)], per_status.get((workflow, status), 0))
    yield started
    yield from ended.values()
    yield current
    yield GaugeMetricFamily(
        "durable_runs_runnable",
        "Run queue depth: runs a worker may claim now (new, woken by a signal or timer, or "
        "whose worker's lease expired).",
        value=fleet.runnable,
    )


def _job_families(fleet: FleetMetrics) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "durable_job_queue_depth",
        "External jobs a poll would hand out now (queued, or held past an expired lease), "
        "by job type.",
        labels=["job_type"],
    )
    held = GaugeMetricFamily(
        "durable_jobs_held",
        "External jobs held by a worker whose lease has not expired, by job type.",
        labels=["job_type"],
    )
    expired = GaugeMetricFamily(
        "durable_job_leases_expired",
        "External jobs whose worker's lease expired without a completion and that no poll "
        "has taken again yet, by job type.",
        labels=["job_type"],
    )
    for queue in fleet.jobs:
        depth.add_metric([queue.job_type], queue.queued + queue.expired)
        held.add_metric([queue.job_type], queue.held)
        expired.add_metric([queue.job_type], queue.expired)
    yield depth
    yield held
    yield expired
