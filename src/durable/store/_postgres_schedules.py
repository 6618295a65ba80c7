"""Postgres queries of cron schedules.

``PostgresSchedules`` runs its queries through the store's ``PostgresDb``. Firing takes
due schedules with ``FOR UPDATE SKIP LOCKED``, so concurrent workers share them out
without waiting on each other, and in the same transaction creates each tick's run and
moves ``next_fire_at`` on. A worker that took a row after another one committed
re-checks the row's new ``next_fire_at`` (Postgres re-evaluates the condition on the
locked row), so a tick is never taken twice; the run ids, derived from the tick, make
even that a no-op.
"""

from __future__ import annotations

from collections.abc import Callable

from . import _rules
from ._notify import SCHEDULES, WORK
from ._postgres_db import NOW, PostgresDb, local_time
from ._records import SCHEDULE_COLUMNS, Planner, ScheduleRecord, schedule_from_row

_BY_ID = f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = $1"

_PUT = f"""
INSERT INTO schedules ({SCHEDULE_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, false, $7, NULL, {NOW}, {NOW}, $9, $10)
ON CONFLICT (id) DO UPDATE SET
    workflow = EXCLUDED.workflow, cron = EXCLUDED.cron, timezone = EXCLUDED.timezone,
    args = EXCLUDED.args, missed = EXCLUDED.missed, updated_at = EXCLUDED.updated_at,
    queue = EXCLUDED.queue, priority = EXCLUDED.priority,
    next_fire_at = CASE
        WHEN $8 AND schedules.cron = EXCLUDED.cron AND schedules.timezone = EXCLUDED.timezone
        THEN schedules.next_fire_at ELSE EXCLUDED.next_fire_at END
RETURNING {SCHEDULE_COLUMNS}
"""

_DUE = f"""
SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE NOT paused AND next_fire_at <= $1
ORDER BY next_fire_at LIMIT $2 FOR UPDATE SKIP LOCKED
"""

_START_RUNS = """
INSERT INTO runs (id, workflow, status, args, runnable_at, created_at, updated_at, queue,
    priority, trace_context)
SELECT r.id, $2, 'PENDING', $3, $4, $4, $4, $5, $6, $7 FROM unnest($1::text[]) AS r(id)
ON CONFLICT (id) DO NOTHING RETURNING id
"""

_ADVANCE = """
UPDATE schedules SET next_fire_at = $2, last_fire_at = COALESCE($3, last_fire_at)
WHERE id = $1
"""


class PostgresSchedules:
    """Cron schedules on Postgres (``ScheduleStore``)."""

    def __init__(self, db: PostgresDb) -> None:
        self._conn = db.conn
        self._notify = db.notify

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
        values = (schedule_id, workflow, cron, timezone, args, missed, next_fire_at)
        async with self._conn("store schedule") as conn, conn.transaction():
            row = await conn.fetchrow(_PUT, *values, keep_next_fire, queue, priority)
            await self._notify(conn, SCHEDULES)
        return schedule_from_row(row)

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        async with self._conn("read schedule") as conn:
            row = await conn.fetchrow(_BY_ID, schedule_id)
        return None if row is None else schedule_from_row(row)

    async def list_schedules(self) -> list[ScheduleRecord]:
        async with self._conn("list schedules") as conn:
            rows = await conn.fetch(f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY id")
        return [schedule_from_row(r) for r in rows]

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, replan: Callable[[ScheduleRecord, float], float]
    ) -> ScheduleRecord | None:
        what = "pause schedule" if paused else "resume schedule"
        async with self._conn(what) as conn, conn.transaction():
            row = await conn.fetchrow(f"{_BY_ID} FOR UPDATE", schedule_id)
            if row is None:
                return None
            schedule = schedule_from_row(row)
            if schedule.paused == paused:
                return schedule
            now = float(await conn.fetchval(f"SELECT {NOW}"))
            next_fire = _rules.paused_next_fire(schedule, paused, now, replan)
            row = await conn.fetchrow(
                "UPDATE schedules SET paused = $2, next_fire_at = $3, updated_at = $4"
                f" WHERE id = $1 RETURNING {SCHEDULE_COLUMNS}",
                schedule_id,
                paused,
                next_fire,
                now,
            )
            if not paused:
                await self._notify(conn, SCHEDULES)
        return schedule_from_row(row)

    async def delete_schedule(self, schedule_id: str) -> bool:
        async with self._conn("delete schedule") as conn:
            result = await conn.execute("DELETE FROM schedules WHERE id = $1", schedule_id)
        return bool(result == "DELETE 1")

    async def fire_schedules(self, limit: int, plan: Planner) -> list[str]:
        started: list[str] = []
        async with self._conn("start scheduled runs") as conn, conn.transaction():
            now = float(await conn.fetchval(f"SELECT {NOW}"))
            for row in await conn.fetch(_DUE, now, limit):
                schedule = schedule_from_row(row)
                firing = plan(schedule, now)
                if firing.run_ids:
                    created = await conn.fetch(
                        _START_RUNS,
                        list(firing.run_ids),
                        schedule.workflow,
                        schedule.args,
                        now,
                        schedule.queue,
                        schedule.priority,
                        firing.trace_context,
                    )
                    started += [r[0] for r in created]
                await conn.execute(_ADVANCE, schedule.id, firing.next_fire_at, firing.last_fire_at)
            if started:
                await self._notify(conn, WORK)
        return started

    async def next_schedule_at(self) -> float | None:
        async with self._conn("read next schedule") as conn:
            left = await conn.fetchval(
                f"SELECT min(next_fire_at) - {NOW} FROM schedules WHERE NOT paused"
            )
        return local_time(left)
