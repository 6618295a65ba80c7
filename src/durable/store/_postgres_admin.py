"""Postgres read-only queries for operators: flow runs by page, journals in bulk, fleet figures.

``PostgresAdmin`` is mixed into ``PostgresStore``; it borrows the store's pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg

from ..info import Status
from ._admin import STEP_KIND, FleetMetrics, JobQueue, StepLatency
from .base import RUN_COLUMNS, JournalEntry, RunRecord, run_from_row

NOW = "extract(epoch from clock_timestamp())"
_RUN_FIELDS = len(RUN_COLUMNS.split(","))

# Durations of ended flow steps (see the SQLite twin for the two record forms).
# MATERIALIZED keeps the jsonb cast away from payloads of other kinds, which need not be
# JSON (an opt-in codec may store anything).
_STEP_SECONDS = f"""
WITH steps AS MATERIALIZED (
    SELECT run_id, seq, payload::jsonb AS doc FROM journal WHERE kind = '{STEP_KIND}'
), ends AS (
    SELECT run_id, doc ->> 'type' AS type, doc ->> 'startedAt' AS started,
        doc ->> 'at' AS ended, (doc ->> 'start')::integer AS start_seq
    FROM steps WHERE doc ? 'status'
), durations AS (
    SELECT r.workflow AS workflow, COALESCE(e.type, s.doc ->> 'type') AS type,
        extract(epoch from e.ended::timestamptz
            - COALESCE(e.started, s.doc ->> 'at')::timestamptz)::float8 AS seconds
    FROM ends e
    JOIN runs r ON r.id = e.run_id
    LEFT JOIN steps s ON s.run_id = e.run_id AND s.seq = e.start_seq AND e.started IS NULL
)
"""


class PostgresAdmin:
    """The Store's read-only operator queries, for ``PostgresStore``."""

    if TYPE_CHECKING:

        def _conn(
            self, what: str
        ) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]: ...

    async def list_flow_runs(
        self,
        *,
        definition_id: str | None = None,
        statuses: Sequence[Status] | None = None,
        business_key: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[RunRecord], int]:
        # Only the filters given become conditions, so each combination gets a plan that
        # uses its index.
        where = ["flow_version IS NOT NULL"]
        params: list[object] = []
        if definition_id is not None:
            params.append(definition_id)
            where.append(f"workflow = ${len(params)}")
        if statuses is not None:
            params.append([str(s) for s in statuses])
            where.append(f"status = ANY(${len(params)}::text[])")
        if business_key is not None:
            params.append(business_key)
            where.append(f"business_key = ${len(params)}")
        clause = " AND ".join(where)
        n = len(params)
        async with self._conn("list flow runs") as conn:
            rows = await conn.fetch(
                f"SELECT {RUN_COLUMNS}, count(*) OVER () FROM runs WHERE {clause}"
                " ORDER BY created_at DESC, id DESC"
                f" LIMIT ${n + 1}::bigint OFFSET ${n + 2}::bigint",
                *params,
                limit,
                offset,
            )
            if rows:
                return [run_from_row(r[:_RUN_FIELDS]) for r in rows], int(rows[0][_RUN_FIELDS])
            if offset <= 0:
                return [], 0
            total = await conn.fetchval(f"SELECT count(*) FROM runs WHERE {clause}", *params)
        return [], int(total)

    async def read_journals(
        self, run_ids: Sequence[str], *, kinds: Sequence[str] | None = None
    ) -> dict[str, list[JournalEntry]]:
        found: dict[str, list[JournalEntry]] = {run_id: [] for run_id in run_ids}
        if not run_ids:
            return found
        async with self._conn("read journals") as conn:
            rows = await conn.fetch(
                "SELECT run_id, pos, seq, event, kind, name, fingerprint, payload, created_at"
                " FROM journal WHERE run_id = ANY($1::text[])"
                " AND ($2::text[] IS NULL OR kind = ANY($2::text[]))"
                " ORDER BY run_id, pos",
                list(run_ids),
                None if kinds is None else list(kinds),
            )
        for row in rows:
            found[row[0]].append(JournalEntry(*row[1:]))
        return found

    async def fleet_metrics(self, bounds: Sequence[float]) -> FleetMetrics:
        buckets = "".join(
            f", count(*) FILTER (WHERE seconds <= ${i + 1}::float8)" for i in range(len(bounds))
        )
        async with (
            self._conn("read fleet metrics") as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            run_rows = await conn.fetch(
                "SELECT workflow, status, count(*) FROM runs GROUP BY workflow, status"
                " ORDER BY workflow, status"
            )
            runnable = await conn.fetchval(f"SELECT count(*) FROM runs WHERE runnable_at <= {NOW}")
            job_rows = await conn.fetch(
                "SELECT job_type, count(*) FILTER (WHERE status = 'QUEUED'),"
                f" count(*) FILTER (WHERE status = 'RUNNING' AND lock_expires_at > t.now),"
                f" count(*) FILTER (WHERE status = 'RUNNING' AND lock_expires_at <= t.now)"
                f" FROM jobs, (SELECT {NOW} AS now) t WHERE available_at IS NOT NULL"
                " GROUP BY job_type ORDER BY job_type"
            )
            step_rows = await conn.fetch(
                f"{_STEP_SECONDS} SELECT workflow, type, count(*), sum(seconds){buckets}"
                " FROM durations WHERE seconds IS NOT NULL"
                " GROUP BY workflow, type ORDER BY workflow, type",
                *bounds,
            )
        return FleetMetrics(
            runs=[(r[0], Status(r[1]), int(r[2])) for r in run_rows],
            runnable=int(runnable),
            jobs=[JobQueue(r[0], int(r[1]), int(r[2]), int(r[3])) for r in job_rows],
            steps=[
                StepLatency(r[0], r[1], tuple(int(n) for n in r[4:]), int(r[2]), float(r[3] or 0))
                for r in step_rows
            ],
        )

    async def ping(self) -> None:
        async with self._conn("ping") as conn:
            await conn.fetchval("SELECT 1 FROM runs LIMIT 1")
