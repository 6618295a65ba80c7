"""Cron expressions: parsing, validation and tick arithmetic, shared by the client
(``app.schedule`` checks an expression before storing it) and the worker (which computes
the ticks to start).

Tick times are computed by ``croniter`` from a timezone-aware start, with one rule of
our own for clocks turned back (see :meth:`CronSpec.ticks_after`).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .errors import InvalidScheduleError

MISSED_POLICIES = ("skip", "catch_up")
"""What a schedule does with ticks no worker started in time (``missed=``)."""
CATCH_UP_LIMIT = 100
"""At most this many missed ticks of one schedule are started at once (the latest ones)."""

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
def compile_cron(expression: str, timezone: str) -> CronSpec:
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
        return compile_cron(" ".join(cron.split()), timezone)
    except ValueError as exc:
        field, _, problem = str(exc).partition(": ")
        raise InvalidScheduleError(schedule_id, field, problem) from None
