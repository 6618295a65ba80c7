"""Cron schedules, client side: ``app.schedule(...)`` and ``app.schedules``.

A schedule starts a run of a workflow at every tick of a cron expression, exactly once
across all workers (the worker side is ``worker/_schedule_loop.py``; cron arithmetic is
``_cron.py``). Behaviour on missed ticks, pauses and clock changes is described in
``docs/schedules.md``.
"""

from __future__ import annotations

import builtins
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ._cron import MISSED_POLICIES, cron_spec
from ._describe import when
from .errors import ConfigurationError, InvalidScheduleError, ScheduleNotFoundError
from .queues import DEFAULT_QUEUE, Queue, check_priority, queue_name
from .registry import Workflow
from .serde import loads
from .store import ScheduleRecord

if TYPE_CHECKING:
    from ._services import Services

Missed = Literal["skip", "catch_up"]


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A snapshot of a cron schedule (``app.schedules.get()``, ``list()``).

    Times are timezone-aware UTC datetimes.
    """

    id: str
    workflow: str
    """The name of the workflow each tick starts."""
    cron: str
    timezone: str
    """The IANA time zone the cron expression is read in."""
    args: dict[str, Any]
    """The workflow's arguments by parameter name, in their stored JSON form."""
    paused: bool
    missed: str
    """``skip`` or ``catch_up``: what a worker does with ticks nobody started in time."""
    next_fire_at: datetime
    """The next tick not started yet (in the past while no worker runs)."""
    last_fire_at: datetime | None
    """The time of the latest tick started (the tick, not when its run began)."""
    created_at: datetime
    queue: str = DEFAULT_QUEUE
    """The queue of the runs it starts."""
    priority: int = 0
    """The priority of the runs it starts."""


def _info(record: ScheduleRecord) -> ScheduleInfo:
    return ScheduleInfo(
        id=record.id,
        workflow=record.workflow,
        cron=record.cron,
        timezone=record.timezone,
        args=loads(record.args),
        paused=record.paused,
        missed=record.missed,
        next_fire_at=when(record.next_fire_at),
        last_fire_at=None if record.last_fire_at is None else when(record.last_fire_at),
        created_at=when(record.created_at),
        queue=record.queue,
        priority=record.priority,
    )


def _next_tick(record: ScheduleRecord, now: float) -> float:
    """The first tick after ``now``: where a resumed schedule starts again."""
    return cron_spec(record.id, record.cron, record.timezone).next_after(now)


class Schedules:
    """The schedules of an App: ``app.schedules.list()``, ``get``, ``pause``, ``resume``,
    ``delete``. Create (or update) one with :meth:`durable.App.schedule`.

    Example::

        async with durable.App() as app:
            await app.schedule(report, cron="0 7 * * mon-fri", id="weekday-report",
                               timezone="Europe/Berlin")
            await app.schedules.pause("weekday-report")
    """

    def __init__(self, services: Services) -> None:
        self._services = services

    async def create(
        self,
        workflow: Workflow[Any, Any] | str,
        /,
        *,
        cron: str,
        id: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        timezone: str = "UTC",
        missed: Missed = "skip",
        start_at: datetime | None = None,
        queue: str | Queue | None = None,
        priority: int = 0,
    ) -> ScheduleInfo:
        """Create the schedule ``id``, or update it; see :meth:`durable.App.schedule`."""
        if not isinstance(id, str) or not id.strip():
            raise InvalidScheduleError(str(id), "id", "must be a non-empty string")
        if missed not in MISSED_POLICIES:
            raise InvalidScheduleError(
                id, "missed", f"must be 'skip' or 'catch_up', not {missed!r}"
            )
        spec = cron_spec(id, cron, timezone)
        if isinstance(args, str | bytes) or not isinstance(args, Sequence):
            raise InvalidScheduleError(id, "args", "must be a tuple or list of arguments")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise InvalidScheduleError(id, "kwargs", "must be a dict of keyword arguments")
        if start_at is None:
            first = spec.next_after(time.time())
        elif isinstance(start_at, datetime):
            if start_at.tzinfo is None:  # a wall-clock time where the schedule lives
                start_at = start_at.replace(tzinfo=spec.zone)
            first = spec.next_after(math.ceil(start_at.timestamp()) - 1)
        else:
            raise InvalidScheduleError(id, "start_at", f"must be a datetime, not {start_at!r}")
        try:
            named_queue = queue_name(queue)
        except ConfigurationError as exc:
            raise InvalidScheduleError(id, "queue", str(exc).removeprefix("queue ")) from None
        try:
            check_priority(priority)
        except ConfigurationError as exc:
            raise InvalidScheduleError(id, "priority", str(exc).removeprefix("priority ")) from None
        services = self._services
        wf = services.registry.workflow(workflow) if isinstance(workflow, str) else workflow
        stored_args = wf.codec.encode_args(tuple(args), dict(kwargs or {}))
        record = await services.store.put_schedule(
            id,
            workflow=wf.name,
            cron=spec.expression,
            timezone=timezone,
            args=stored_args,
            missed=missed,
            next_fire_at=first,
            keep_next_fire=start_at is None,
            queue=named_queue or wf.queue or DEFAULT_QUEUE,
            priority=priority,
        )
        return _info(record)

    async def list(self) -> builtins.list[ScheduleInfo]:
        """Every schedule, by id."""
        return [_info(record) for record in await self._services.store.list_schedules()]

    async def get(self, id: str) -> ScheduleInfo:
        """The schedule ``id``.

        Raises:
            durable.ScheduleNotFoundError: there is no such schedule.
        """
        record = await self._services.store.get_schedule(id)
        if record is None:
            raise ScheduleNotFoundError(id)
        return _info(record)

    async def pause(self, id: str) -> ScheduleInfo:
        """Stop starting runs until :meth:`resume` (runs already started go on).

        Pausing a paused schedule changes nothing.

        Raises:
            durable.ScheduleNotFoundError: there is no such schedule.
        """
        return await self._set_paused(id, True)

    async def resume(self, id: str) -> ScheduleInfo:
        """Start runs again from the next tick after now.

        The ticks that passed while the schedule was paused are not started, whatever
        its ``missed`` policy: a pause means "not these". Resuming a running schedule
        changes nothing.

        Raises:
            durable.ScheduleNotFoundError: there is no such schedule.
        """
        return await self._set_paused(id, False)

    async def delete(self, id: str) -> None:
        """Delete the schedule; runs it already started are left alone.

        Raises:
            durable.ScheduleNotFoundError: there is no such schedule.
        """
        if not await self._services.store.delete_schedule(id):
            raise ScheduleNotFoundError(id)

    async def _set_paused(self, schedule_id: str, paused: bool) -> ScheduleInfo:
        record = await self._services.store.set_schedule_paused(schedule_id, paused, _next_tick)
        if record is None:
            raise ScheduleNotFoundError(schedule_id)
        return _info(record)
