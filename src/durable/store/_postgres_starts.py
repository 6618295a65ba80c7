"""Group insert on Postgres: runs started at the same moment are created by one statement.

A fan-out (``asyncio.gather`` of many ``app.start``, a burst of REST starts) would cost
one round trip and one WAL flush per run. The starts that arrive while earlier ones are
being written go together (``Coalescer``): one ``INSERT ... SELECT FROM unnest`` creates
the runs and their tags, and one ``pg_notify`` wakes the workers. A lone start still goes
at once. A start the batch did not insert (its id is taken, or its flow has no
definition) is settled by the single-run path, which says why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from ._coalesce import Coalescer
from ._notify import WORK, Notifier
from ._postgres_db import NOW
from ._records import LATEST_VERSION, RUN_COLUMNS, RunRecord, run_from_row

# clock_timestamp() is read per row: runs keep the order they were started in.
_CREATE_MANY = f"""
WITH c AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[],
                         $6::text[], $7::int[], $8::text[])
        AS c(id, workflow, args, business_key, flow_version, queue, priority, trace_context)
), ins AS (
    INSERT INTO runs (id, workflow, status, args, runnable_at, created_at, updated_at,
        business_key, flow_version, queue, priority, trace_context)
    SELECT c.id, c.workflow, 'PENDING', c.args, {NOW}, {NOW}, {NOW}, c.business_key,
        v.version, c.queue, c.priority, c.trace_context
    FROM c CROSS JOIN LATERAL (SELECT CASE WHEN c.flow_version = {LATEST_VERSION}
        THEN (SELECT max(version) FROM definitions d WHERE d.id = c.workflow)
        ELSE c.flow_version END AS version) v
    WHERE v.version IS NOT NULL OR c.flow_version IS NULL
    ON CONFLICT (id) DO NOTHING RETURNING {RUN_COLUMNS}
), tagged AS (
    INSERT INTO run_tags (run_id, key, value)
    SELECT t.run_id, t.key, t.value FROM unnest($9::text[], $10::text[], $11::text[])
        AS t(run_id, key, value)
    WHERE t.run_id IN (SELECT id FROM ins)
), notified AS (
    SELECT pg_notify($12, 'work') WHERE EXISTS (SELECT 1 FROM ins)
)
SELECT {RUN_COLUMNS} FROM ins WHERE (SELECT count(*) FROM notified) >= 0
"""


@dataclass(frozen=True, slots=True)
class NewRun:
    """One start: the arguments of ``RunStore.create_run``."""

    run_id: str
    workflow: str
    args: str
    business_key: str | None
    flow_version: int | None
    queue: str
    priority: int
    trace_context: str | None
    tags: Sequence[tuple[str, str]]


Created = tuple[RunRecord, bool]


class StartBatcher(Coalescer[NewRun, Created]):
    """Creates the runs started together in one statement (see the module)."""

    def __init__(
        self,
        connect: Callable[[str], contextlib.AbstractAsyncContextManager[asyncpg.Connection]],
        channel: str,
        notifier: Notifier,
        create_one: Callable[[NewRun], Awaitable[Created]],
    ) -> None:
        super().__init__(self._write, create_one, key=_run_id)
        self._connect = connect
        self._channel = channel
        self._notifier = notifier
        self._create_one = create_one

    async def _write(self, starts: list[NewRun]) -> list[Created | BaseException]:
        tags = [(s.run_id, key, value) for s in starts for key, value in s.tags]
        args: list[Any] = [
            [s.run_id for s in starts],
            [s.workflow for s in starts],
            [s.args for s in starts],
            [s.business_key for s in starts],
            [s.flow_version for s in starts],
            [s.queue for s in starts],
            [s.priority for s in starts],
            [s.trace_context for s in starts],
            [run_id for run_id, _, _ in tags],
            [key for _, key, _ in tags],
            [value for _, _, value in tags],
            self._channel,
        ]
        async with self._connect("create runs") as conn:
            rows = await conn.fetch(_CREATE_MANY, *args)
        if rows:
            self._notifier.notify(WORK)
        created = {row[0]: run_from_row(row) for row in rows}
        results: list[Created | BaseException] = []
        for start in starts:
            run = created.get(start.run_id)
            if run is None:  # taken, or no such definition: the single path says which
                try:
                    results.append(await self._create_one(start))
                except Exception as exc:
                    results.append(exc)
            else:
                results.append((replace(run, tags=dict(start.tags)), True))
        return results


def _run_id(start: NewRun) -> str:
    return start.run_id
