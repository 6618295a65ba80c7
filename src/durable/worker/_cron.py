"""Cron schedules, worker side: tick arithmetic and the loop that starts due ticks.

Every worker runs :func:`schedule_loop`. The store hands it due schedules that no other
worker holds (``FOR UPDATE SKIP LOCKED`` on Postgres, an immediate transaction on
SQLite), and in that same transaction :func:`plan` picks the ticks to start, the store
creates one run per tick, with an id derived from the schedule id and the tick time
(``nightly@2024-05-01T02:30:00Z``, so even a repeated attempt is a no-op), and moves the
schedule's ``next_fire_at`` on. A tick therefore starts exactly one run, however many
workers there are.

Tick times are computed by ``croniter`` from a timezone-aware start, with one rule of
our own for clocks turned back (see :meth:`CronSpec.ticks_after`).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .. import _tracing
from ..errors import DurableError, InvalidScheduleError
from ..store import SCHEDULES, Firing, ScheduleRecord, Store

log = logging.getLogger("durable.worker")

MISSED_POLICIES = ("skip", "catch_up")
CATCH_UP_LIMIT = 100
"""At most this many missed ticks of one schedule are started at once (the latest ones)."""

_BATCH = 32
_BROKEN_RETRY = 60.0
_WALK_LIMIT = 10_000
_FIELDS = "5 fields (minute hour day-of-month month day-of-week) or 6 (the same, then second)"


class CronSpec:
    """A cron expression in a time zone. Tick times are seconds since the epoch."""

    def __init__(self, expression: str, zone: ZoneInfo, fields: list[str]) -> None:
        self.expression = expression
        self.zone = zone
        # Vixie cron's rule for clocks turned back: a job at a fixed time of day (no '*'
        # in its minute and hour fields) runs once, at the first of the two wall-clock
        # times; a job with a wildcard there follows real time and runs in both hours.
        self.fixed_time = "*" not in fields[0] and "*" not in fields[1]

    def ticks_after(self, after: float) -> Iterator[float]:
        """The ticks strictly after ``after``, in order, forever."""
        it = croniter(self.expression, datetime.fromtimestamp(after, self.zone))
        while True:
            tick = it.get_next(datetime).timestamp()
            if not self._repeated(tick):
                yield tick

    def next_after(self, after: float) -> float:
        """The first tick strictly after ``after``."""
        return next(self.ticks_after(after))

    def latest(self, start: float, end: float, count: int) -> list[float]:
        """The last ``count`` ticks ``t`` with ``start <= t <= end``, in order."""
        if start > end:
            return []
        # Walk back from the end to find where the last ``count`` ticks begin, so a long
        # outage does not mean walking forward through every tick it missed. croniter's
        # backward walk is unreliable around clock changes, so it only sets a lower
        # bound (with a margin); the ticks themselves come from the forward walk.
        walked: list[float] = []
        back = croniter(self.expression, datetime.fromtimestamp(end + 1, self.zone))
        for _ in range(count + 3):
            tick = back.get_prev(datetime).timestamp()
            if tick <= start:
                walked.append(start)  # fewer ticks than that in the range: begin at its start
                break
            if tick > end:
                continue  # in (end, end + 1]: not in the range
            if walked and tick >= walked[-1]:
                break  # croniter went astray: keep the bound reached
            walked.append(tick)
            if len(walked) == count + 2:
                break
        lower = walked[-1] if walked else start
        found: list[float] = []
        for tick in self.ticks_after(math.ceil(lower) - 1):
            if tick > end or len(found) > _WALK_LIMIT:  # the limit: never hang in a transaction
                break
            found.append(tick)
        return found[-count:]

    def _repeated(self, tick: float) -> bool:
        """Whether ``tick`` is the second pass of a wall-clock time a fixed job has run at."""
        if not self.fixed_time:
            return False
        local = datetime.fromtimestamp(tick, self.zone)
        return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


@functools.lru_cache(maxsize=256)
def _compile(expression: str, timezone: str) -> CronSpec:
    """A CronSpec, or ValueError("<field>: <problem>")."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"timezone: {timezone!r} is not a known IANA time zone, such as 'UTC' or "
            f"'Europe/Berlin' ({exc})"
        ) from None
    try:
        fields = croniter(expression, datetime.now(zone)).expressions
    except Exception as exc:  # croniter raises a range of types for malformed input
        raise ValueError(
            f"cron: {expression!r} is not a valid cron expression ({exc}); use {_FIELDS}"
        ) from None
    if len(fields) not in (5, 6):
        raise ValueError(f"cron: {expression!r} has {len(fields)} fields; use {_FIELDS}")
    spec = CronSpec(expression, zone, fields)
    try:
        spec.next_after(time.time())
    except Exception:
        raise ValueError(f"cron: {expression!r} matches no date (it would never fire)") from None
    return spec


def cron_spec(schedule_id: str, cron: object, timezone: object) -> CronSpec:
    """The compiled schedule; raises InvalidScheduleError naming the field at fault."""
    if not isinstance(timezone, str):
        raise InvalidScheduleError(schedule_id, "timezone", f"must be a string, not {timezone!r}")
    if not isinstance(cron, str):
        raise InvalidScheduleError(schedule_id, "cron", f"must be a string, not {cron!r}")
    try:
        return _compile(" ".join(cron.split()), timezone)
    except ValueError as exc:
        field, _, problem = str(exc).partition(": ")
        raise InvalidScheduleError(schedule_id, field, problem) from None


def run_id_for(schedule_id: str, tick: float) -> str:
    """The id of the run a schedule starts for the tick at ``tick``."""
    return f"{schedule_id}@{datetime.fromtimestamp(tick, UTC):%Y-%m-%dT%H:%M:%SZ}"


def plan(schedule: ScheduleRecord, now: float) -> Firing:
    """What a due schedule starts at ``now``: the latest due tick (``skip``), or every
    due tick up to :data:`CATCH_UP_LIMIT` (``catch_up``); then its next tick after now.

    Runs inside the store's transaction, so it never raises: a schedule whose stored
    cron or time zone cannot be read any more is retried a minute later.
    """
    try:
        spec = _compile(schedule.cron, schedule.timezone)
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
    run_ids = tuple(run_id_for(schedule.id, tick) for tick in ticks)
    trace = _tracing.tick_context(schedule.id, schedule.workflow, run_ids)
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
