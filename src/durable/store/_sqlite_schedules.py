"""SQLite queries of cron schedules.

``SqliteSchedules`` runs its queries through the store's ``SqliteDb``. Every write is
one ``BEGIN IMMEDIATE`` transaction, which holds the database's write lock from its
start: firing is therefore exclusive across threads and processes, the same guarantee
``FOR UPDATE SKIP LOCKED`` gives on Postgres, and a tick's runs are created in the
transaction that moves the schedule on.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable

from . import _rules
from ._notify import SCHEDULES, WORK
from ._records import SCHEDULE_COLUMNS, Planner, ScheduleRecord, schedule_from_row
from ._sqlite_db import SqliteDb

_BY_ID = f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ?"

# On a conflict the bare column names are the stored row's, ``excluded`` the new values.
_PUT = f"""
INSERT INTO schedules ({SCHEDULE_COLUMNS})
VALUES (:id, :workflow, :cron, :timezone, :args, :missed, 0, :next_fire_at, NULL, :now, :now,
    :queue, :priority)
ON CONFLICT (id) DO UPDATE SET
    workflow = excluded.workflow, cron = excluded.cron, timezone = excluded.timezone,
    args = excluded.args, missed = excluded.missed, updated_at = excluded.updated_at,
    queue = excluded.queue, priority = excluded.priority,
    next_fire_at = CASE
        WHEN :keep AND cron = excluded.cron AND timezone = excluded.timezone THEN next_fire_at
        ELSE excluded.next_fire_at END
RETURNING {SCHEDULE_COLUMNS}
"""

_DUE = f"""
SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE paused = 0 AND next_fire_at <= ?
ORDER BY next_fire_at LIMIT ?
"""

_START_RUN = """
INSERT INTO runs (id, workflow, status, args, runnable_at, created_at, updated_at, queue,
    priority, trace_context)
VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING
"""


def _put(
    conn: sqlite3.Connection,
    now: float,
    *,
    schedule_id: str,
    workflow: str,
    cron: str,
    timezone: str,
    args: str,
    missed: str,
    next_fire_at: float,
    keep: bool,
    queue: str,
    priority: int,
) -> ScheduleRecord:
    row = conn.execute(
        _PUT,
        {
            "id": schedule_id,
            "workflow": workflow,
            "cron": cron,
            "timezone": timezone,
            "args": args,
            "missed": missed,
            "next_fire_at": next_fire_at,
            "now": now,
            "keep": keep,
            "queue": queue,
            "priority": priority,
        },
    ).fetchone()
    return schedule_from_row(row)


def _set_paused(
    conn: sqlite3.Connection,
    now: float,
    *,
    schedule_id: str,
    paused: bool,
    replan: Callable[[ScheduleRecord, float], float],
) -> ScheduleRecord | None:
    row = conn.execute(_BY_ID, (schedule_id,)).fetchone()
    if row is None:
        return None
    schedule = schedule_from_row(row)
    if schedule.paused == paused:
        return schedule
    next_fire = _rules.paused_next_fire(schedule, paused, now, replan)
    row = conn.execute(
        "UPDATE schedules SET paused = ?, next_fire_at = ?, updated_at = ? WHERE id = ?"
        f" RETURNING {SCHEDULE_COLUMNS}",
        (int(paused), next_fire, now, schedule_id),
    ).fetchone()
    return schedule_from_row(row)


def _fire(conn: sqlite3.Connection, now: float, *, limit: int, plan: Planner) -> list[str]:
    started: list[str] = []
    for row in conn.execute(_DUE, (now, limit)).fetchall():
        schedule = schedule_from_row(row)
        firing = plan(schedule, now)
        run = (schedule.workflow, schedule.args, now, now, now, schedule.queue, schedule.priority)
        for run_id in firing.run_ids:
            cur = conn.execute(_START_RUN, (run_id, *run, firing.trace_context))
            if cur.rowcount == 1:
                started.append(run_id)
        conn.execute(
            "UPDATE schedules SET next_fire_at = ?, last_fire_at = COALESCE(?, last_fire_at)"
            " WHERE id = ?",
            (firing.next_fire_at, firing.last_fire_at, schedule.id),
        )
    return started


def _next_at(conn: sqlite3.Connection, _now: float) -> float | None:
    row = conn.execute("SELECT MIN(next_fire_at) FROM schedules WHERE paused = 0").fetchone()
    return None if row[0] is None else float(row[0])


class SqliteSchedules:
    """Cron schedules on SQLite (``ScheduleStore``)."""

    def __init__(self, db: SqliteDb) -> None:
        self._write = db.write
        self._read = db.read
        self._notifier = db.notifier

    async def put_schedule(
        self,
        schedule_id: str,
        *,
        workflow: str,
        cron: str,
        timezone: str,
        args: str,
        missed: str,
        next_fire_at: float,
        keep_next_fire: bool,
        queue: str = "default",
        priority: int = 0,
    ) -> ScheduleRecord:
        put = functools.partial(
            _put,
            schedule_id=schedule_id,
            workflow=workflow,
            cron=cron,
            timezone=timezone,
            args=args,
            missed=missed,
            next_fire_at=next_fire_at,
            keep=keep_next_fire,
            queue=queue,
            priority=priority,
        )
        schedule = await self._write("store schedule", put)
        self._notifier.notify(SCHEDULES)
        return schedule

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        def select(conn: sqlite3.Connection, _now: float) -> ScheduleRecord | None:
            row = conn.execute(_BY_ID, (schedule_id,)).fetchone()
            return None if row is None else schedule_from_row(row)

        return await self._read("read schedule", select)

    async def list_schedules(self) -> list[ScheduleRecord]:
        def select(conn: sqlite3.Connection, _now: float) -> list[ScheduleRecord]:
            rows = conn.execute(f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY id")
            return [schedule_from_row(r) for r in rows]

        return await self._read("list schedules", select)

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, replan: Callable[[ScheduleRecord, float], float]
    ) -> ScheduleRecord | None:
        update = functools.partial(
            _set_paused, schedule_id=schedule_id, paused=paused, replan=replan
        )
        schedule = await self._write("pause schedule" if paused else "resume schedule", update)
        if schedule is not None and not paused:
            self._notifier.notify(SCHEDULES)
        return schedule

    async def delete_schedule(self, schedule_id: str) -> bool:
        def delete(conn: sqlite3.Connection, _now: float) -> bool:
            cur = conn.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,))
            return cur.rowcount == 1

        return await self._write("delete schedule", delete)

    async def fire_schedules(self, limit: int, plan: Planner) -> list[str]:
        # A read first: an idle poll then never takes the database's write lock.
        def due(conn: sqlite3.Connection, now: float) -> bool:
            next_at = _next_at(conn, now)
            return next_at is not None and next_at <= now

        if not await self._read("read next schedule", due):
            return []
        fire = functools.partial(_fire, limit=limit, plan=plan)
        started = await self._write("start scheduled runs", fire)
        if started:
            self._notifier.notify(WORK)
        return started

    async def next_schedule_at(self) -> float | None:
        return await self._read("read next schedule", _next_at)
