"""Cron schedules, worker side: the loop that starts due ticks.

Every worker runs :func:`schedule_loop`. The store hands it due schedules that no other
worker holds (``FOR UPDATE SKIP LOCKED`` on Postgres, an immediate transaction on
SQLite), and in that same transaction :func:`plan` picks the ticks to start, the store
creates one run per tick, with an id derived from the schedule id and the tick time
(``nightly@2024-05-01T02:30:00Z``, so even a repeated attempt is a no-op), and moves the
schedule's ``next_fire_at`` on. A tick therefore starts exactly one run, however many
workers there are. Tick arithmetic is ``durable._cron``; the ids and trace context of
the runs come from ``durable._start``, like those of every other start.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from .._cron import CATCH_UP_LIMIT, compile_cron
from .._start import tick_runs
from ..errors import DurableError
from ..store import SCHEDULES, Firing, ScheduleRecord, Store

log = logging.getLogger("durable.worker")

_BATCH = 32
_BROKEN_RETRY = 60.0


def plan(schedule: ScheduleRecord, now: float) -> Firing:
    """What a due schedule starts at ``now``: the latest due tick (``skip``), or every
    due tick up to :data:`CATCH_UP_LIMIT` (``catch_up``); then its next tick after now.

    Runs inside the store's transaction, so it never raises: a schedule whose stored
    cron or time zone cannot be read any more is retried a minute later.
    """
    try:
        spec = compile_cron(schedule.cron, schedule.timezone)
        keep = CATCH_UP_LIMIT if schedule.missed == "catch_up" else 1
        ticks = spec.latest(schedule.next_fire_at, now, keep)
        next_fire = spec.next_after(now)
    except Exception as exc:
        log.error("schedule=%s cannot compute its ticks (%s); retrying later", schedule.id, exc)
        return Firing((), None, now + _BROKEN_RETRY)
    if ticks and ticks[0] > schedule.next_fire_at:
        log.warning(
            "schedule=%s: the ticks from %s to before %s were missed and are skipped (%s)",
            schedule.id,
            _iso(schedule.next_fire_at),
            _iso(ticks[0]),
            "missed='skip' starts only the latest"
            if schedule.missed == "skip"
            else f"missed='catch_up' starts the latest {CATCH_UP_LIMIT} at most",
        )
    run_ids, trace = tick_runs(schedule.id, schedule.workflow, ticks)
    return Firing(run_ids, ticks[-1] if ticks else None, next_fire, trace)


def _iso(stamp: float) -> str:
    return f"{datetime.fromtimestamp(stamp, UTC):%Y-%m-%dT%H:%M:%SZ}"


async def schedule_loop(store: Store, worker_id: str, poll_interval: float) -> None:
    """Start due ticks; sleep until the next one is due, a schedule changes, or a poll."""
    failures = 0
    with store.subscribe(SCHEDULES) as changed:
        while True:
            changed.clear()
            started: list[str] = []
            due: float | None = None
            try:
                started = await store.fire_schedules(_BATCH, plan)
                due = await store.next_schedule_at()
                failures = 0
                wait = poll_interval
            except DurableError as exc:
                failures += 1
                wait = min(30.0, 0.1 * 2**failures)
                log.warning(
                    "worker %s: starting scheduled runs failed (%s); retrying in %.1f s",
                    worker_id,
                    exc,
                    wait,
                )
            for run_id in started:
                log.info("run=%s worker=%s state=SCHEDULED", run_id, worker_id)
            if due is not None:
                left = due - time.time()
                # A due schedule another worker holds right now: look again shortly.
                wait = min(wait, left if left > 0 else (0.0 if started else 0.05))
            await changed.wait(wait)
