"""Postgres read-only queries for operators: flow runs by page, journals in bulk, fleet figures.

``PostgresAdmin`` runs its queries through the store's ``PostgresDb``. The step
durations read by position need Postgres 13 or later (``pg_snapshot``, migration 0009).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._wire import UNKNOWN_WORKFLOW_LIKE, Kind
from ..info import Status
from ._admin import CHUNK_ROWS, FleetMetrics, JobQueue, StepDurations, StepTally
from ._notify import WORK
from ._postgres_db import NOW, PostgresDb
from ._records import (
    JOURNAL_COLUMNS,
    RUN_COLUMNS,
    JournalEntry,
    RunRecord,
    journal_entries,
    run_from_row,
)

# Step records for the duration histogram. The first read of a server takes those made
# since it started; later reads take those whose transaction the previous read's snapshot
# did not see (tx_id, migration 0009): commit order, whatever their created_at says. The
# later reads leave created_at to StepTally: as a condition, the planner would rather
# walk journal_step_created, i.e. every record made since the server started.
_STEP_COLUMNS = "j.run_id, j.pos, j.payload, j.created_at, r.workflow"
_STEPS_MADE = f"""
SELECT {_STEP_COLUMNS} FROM journal j LEFT JOIN runs r ON r.id = j.run_id
WHERE j.kind = '{Kind.STEP}' AND j.created_at >= $1
"""
_STEPS_COMMITTED = f"""
SELECT {_STEP_COLUMNS} FROM journal j LEFT JOIN runs r ON r.id = j.run_id
WHERE j.kind = '{Kind.STEP}' AND j.tx_id >= pg_snapshot_xmin($1::text::pg_snapshot)
    AND NOT pg_visible_in_snapshot(j.tx_id, $1::text::pg_snapshot)
"""
_STEP_STARTS = f"""
SELECT w.run_id, w.seq, j.payload
FROM unnest($1::text[], $2::int[]) AS w(run_id, seq)
JOIN journal j ON j.run_id = w.run_id AND j.seq = w.seq AND j.kind = '{Kind.STEP}'
"""
# Rows of the journal this session has read and not yet reported to the statistics
# (sequential and index fetches; it may span transactions): read before and after.
_ROWS_READ = """
SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)
FROM pg_stat_xact_user_tables WHERE relid = to_regclass('journal')
"""


class PostgresAdmin:
    """Operator queries on Postgres (``AdminStore``)."""

    def __init__(self, db: PostgresDb) -> None:
        self._conn = db.conn
        self._notify = db.notify

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
        # The page walks an index and stops; the total is a count of its own (a window
        # count would build every matching row). One snapshot for both.
        async with (
            self._conn("list flow runs") as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            rows = await conn.fetch(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE {clause}"
                " ORDER BY created_at DESC, id DESC"
                f" LIMIT ${n + 1}::bigint OFFSET ${n + 2}::bigint",
                *params,
                limit,
                offset,
            )
            if offset <= 0 and len(rows) < limit:
                total = len(rows)  # the whole list is this page
            else:
                total = await conn.fetchval(f"SELECT count(*) FROM runs WHERE {clause}", *params)
        return [run_from_row(r) for r in rows], int(total)

    async def read_journals(
        self, run_ids: Sequence[str], *, kinds: Sequence[str] | None = None
    ) -> dict[str, list[JournalEntry]]:
        found: dict[str, list[JournalEntry]] = {run_id: [] for run_id in run_ids}
        if not run_ids:
            return found
        async with self._conn("read journals") as conn:
            rows = await conn.fetch(
                f"SELECT run_id, {JOURNAL_COLUMNS}"
                " FROM journal WHERE run_id = ANY($1::text[])"
                " AND ($2::text[] IS NULL OR kind = ANY($2::text[]))"
                " ORDER BY run_id, pos",
                list(run_ids),
                None if kinds is None else list(kinds),
            )
        for row, entry in zip(rows, journal_entries(row[1:] for row in rows), strict=True):
            found[row[0]].append(entry)
        return found

    async def fleet_metrics(self) -> FleetMetrics:
        async with (
            self._conn("read fleet metrics") as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            # status first: the order of runs_status_workflow (an index-only scan)
            run_rows = await conn.fetch(
                "SELECT status, workflow, count(*) FROM runs GROUP BY status, workflow"
            )
            runnable = await conn.fetchval(f"SELECT count(*) FROM runs WHERE runnable_at <= {NOW}")
            job_rows = await conn.fetch(
                "SELECT job_type, count(*) FILTER (WHERE status = 'QUEUED'),"
                f" count(*) FILTER (WHERE status = 'RUNNING' AND lock_expires_at > t.now),"
                f" count(*) FILTER (WHERE status = 'RUNNING' AND lock_expires_at <= t.now)"
                f" FROM jobs, (SELECT {NOW} AS now) t WHERE available_at IS NOT NULL"
                " GROUP BY job_type ORDER BY job_type"
            )
        return FleetMetrics(
            runs=sorted((r[1], Status(r[0]), int(r[2])) for r in run_rows),
            runnable=int(runnable),
            jobs=[JobQueue(r[0], int(r[1]), int(r[2]), int(r[3])) for r in job_rows],
        )

    async def step_durations(
        self, bounds: Sequence[float], *, since: float, position: str | None = None
    ) -> StepDurations:
        tally = StepTally(bounds, since)
        async with (
            self._conn("read step durations") as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            snapshot = await conn.fetchval("SELECT pg_current_snapshot()::text")
            read_before = await conn.fetchval(_ROWS_READ)
            if position is None:
                cursor = await conn.cursor(_STEPS_MADE, since)
            else:
                cursor = await conn.cursor(_STEPS_COMMITTED, position)
            while rows := await cursor.fetch(CHUNK_ROWS):
                wanted = tally.add([(r[0], r[1], r[2], r[3], r[4]) for r in rows])
                if wanted:
                    runs, seqs = zip(*wanted, strict=True)
                    starts = await conn.fetch(_STEP_STARTS, list(runs), list(seqs))
                    tally.add_starts([(r[0], r[1], r[2]) for r in starts])
            read = await conn.fetchval(_ROWS_READ) - read_before
        return StepDurations(tally.result(), snapshot, int(read))

    async def ping(self) -> None:
        async with self._conn("ping") as conn:
            await conn.fetchval("SELECT 1 FROM runs LIMIT 1")

    async def unpark(self, workflows: Sequence[str] | None = None) -> int:
        sql = (
            f"UPDATE runs SET parked_reason = NULL, updated_at = {NOW},"
            f" runnable_at = CASE WHEN paused_reason IS NULL THEN {NOW} END"  # paused: on resume
            " WHERE parked_reason IS NOT NULL"
            " AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"
        )
        args: list[Any] = []
        if workflows is not None:
            sql += " AND parked_reason LIKE $1 AND workflow = ANY($2::text[])"
            args = [UNKNOWN_WORKFLOW_LIKE, list(workflows)]
        async with self._conn("unpark runs") as conn:
            result = await conn.execute(sql, *args)
            count = int(result.split()[-1])
            if count:
                await self._notify(conn, WORK)
        return count
