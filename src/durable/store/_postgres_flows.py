"""Postgres queries of JSON flows: versioned definitions, external jobs, signal delivery.

``PostgresFlows`` runs its queries through the store's ``PostgresDb``. ``insert_signal``
is shared with the runs' ``send_signal``, so a job's outcome reaches its run exactly as a
signal does.

Lock order: every transaction that touches a run's row and its jobs locks the run first,
then the jobs (a journal commit's fence does the same), so they never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from .._wire import job_done_payload, job_failed_payload, job_id_for, job_signal_name
from . import _rules
from ._notify import JOBS, WORK, run_topic
from ._postgres_db import NOW, PostgresDb
from ._records import (
    DEFINITION_COLUMNS,
    JOB_COLUMNS,
    DefinitionRecord,
    JobAnswer,
    JobRecord,
)

_J_COLUMNS = ", ".join(f"j.{c.strip()}" for c in JOB_COLUMNS.split(","))
_JOB_FIELDS = len(JOB_COLUMNS.split(","))

# Inserting nothing on a repeated dedupe key also leaves the run's row alone: the
# mailbox moves, and a run waiting for this name wakes, only for a signal stored now.
_INSERT_SIGNAL = f"""
WITH stored AS (
    INSERT INTO signals (run_id, name, payload, dedupe_key, created_at)
    VALUES ($1, $2, $3, $4, {NOW})
    ON CONFLICT (run_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
    RETURNING id
)
UPDATE runs SET mailbox_version = mailbox_version + 1, updated_at = {NOW},
    runnable_at = CASE
        WHEN status = 'WAITING' AND lease_owner IS NULL AND parked_reason IS NULL
            AND $2 = ANY(COALESCE(wait_signals, '{{}}')) THEN {NOW}
        ELSE runnable_at END
WHERE id = $1 AND EXISTS (SELECT 1 FROM stored)
RETURNING id
"""

# A cancelled job leaves the poll index (available_at NULL); the CTE form lets a
# journal commit that finishes its run cancel the jobs in the same statement.
CANCEL_OPEN_JOBS = f"""
UPDATE jobs SET status = 'CANCELLED', lock_expires_at = NULL, available_at = NULL,
    updated_at = {NOW}
WHERE run_id = $1 AND status IN ('QUEUED', 'RUNNING')
"""

CANCEL_OPEN_JOBS_OF_MANY = f"""
UPDATE jobs SET status = 'CANCELLED', lock_expires_at = NULL, available_at = NULL,
    updated_at = {NOW}
WHERE run_id = ANY($1::text[]) AND status IN ('QUEUED', 'RUNNING')
"""

_LATEST_MATCHING = """
FROM definitions d
WHERE (d.id, d.version) IN (SELECT id, max(version) FROM definitions GROUP BY id)
    AND ($1::text IS NULL OR strpos(lower(d.id), lower($1)) > 0
        OR strpos(lower(d.name), lower($1)) > 0)
"""

_ENQUEUE = f"""
WITH ins AS (
    INSERT INTO jobs (id, run_id, seq, step_id, job_type, status, variables,
        retries_remaining, attempt, available_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, 'QUEUED', $6, $7, 1, {NOW}, {NOW}, {NOW})
    ON CONFLICT DO NOTHING RETURNING {JOB_COLUMNS}
)
SELECT {JOB_COLUMNS}, pg_notify($8, '{JOBS}') FROM ins
"""

# available_at is the lease expiry of a RUNNING job, so an expired lease is polled like a
# queued job, and leases still held never enter the index range a poll reads. Each type's
# range is read in index order up to the limit and the oldest of those are taken: a
# backlog is never sorted whole. Rows locked but not taken are free again at commit. The
# clock is read in a subquery because the volatile clock_timestamp() alone would be a
# filter, not a bound of the index range.
_POLL = f"""
WITH picked AS (
    SELECT j.id FROM unnest($2::text[]) AS t(job_type)
    CROSS JOIN LATERAL (
        SELECT id, available_at FROM jobs
        WHERE job_type = t.job_type AND available_at <= (SELECT {NOW})
        ORDER BY available_at LIMIT $3 FOR UPDATE SKIP LOCKED
    ) j
    ORDER BY j.available_at LIMIT $3
)
UPDATE jobs j SET status = 'RUNNING', worker_id = $1, lock_expires_at = t.until,
    available_at = t.until, updated_at = t.now
FROM picked, (SELECT {NOW} AS now, {NOW} + $4 AS until) t
WHERE j.id = picked.id
RETURNING {_J_COLUMNS}
"""

_CLOSE_JOB = f"""
UPDATE jobs SET status = $2, error = COALESCE($3, error), lock_expires_at = NULL,
    available_at = NULL, updated_at = {NOW}
WHERE id = $1
"""

_REQUEUE_JOB = f"""
UPDATE jobs SET status = 'QUEUED', retries_remaining = retries_remaining - 1,
    attempt = attempt + 1, worker_id = NULL, lock_expires_at = NULL,
    available_at = {NOW}, updated_at = {NOW}
WHERE id = $1 AND retries_remaining > 0
"""


def _job(row: Sequence[Any]) -> JobRecord:
    return JobRecord(*row[:_JOB_FIELDS])


async def insert_signal(
    conn: asyncpg.Connection, run_id: str, name: str, payload: str, dedupe_key: str | None
) -> bool:
    """Buffer a signal for an open run whose row the caller has locked; False if a repeat."""
    return await conn.fetchval(_INSERT_SIGNAL, run_id, name, payload, dedupe_key) is not None


async def has_signal(conn: asyncpg.Connection, run_id: str, dedupe_key: str) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM signals WHERE run_id = $1 AND dedupe_key = $2", run_id, dedupe_key
    )
    return found is not None


class PostgresFlows:
    """Flow definitions and external jobs on Postgres (``FlowStore``)."""

    def __init__(self, db: PostgresDb) -> None:
        self.schema = db.schema
        self._conn = db.conn
        self._notify = db.notify
        self._notifier = db.notifier
        self._channel = db.channel

    # -- definitions ----------------------------------------------------------------
    async def put_definition(
        self, definition_id: str, name: str, document: str
    ) -> DefinitionRecord:
        async with self._conn("store definition") as conn, conn.transaction():
            # Uploads of one id queue on a lock of their own; it is taken in a statement
            # before the insert, whose snapshot then sees the version committed last.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
                f"durable-definitions:{self.schema}",
                definition_id,
            )
            row = await conn.fetchrow(
                f"INSERT INTO definitions ({DEFINITION_COLUMNS})"
                f" SELECT $1, COALESCE(max(version), 0) + 1, $2, $3, {NOW}"
                f" FROM definitions WHERE id = $1 RETURNING {DEFINITION_COLUMNS}",
                definition_id,
                name,
                document,
            )
        return DefinitionRecord(*row)

    async def get_definition(
        self, definition_id: str, version: int | None = None
    ) -> DefinitionRecord | None:
        async with self._conn("read definition") as conn:
            if version is None:
                row = await conn.fetchrow(
                    f"SELECT {DEFINITION_COLUMNS} FROM definitions WHERE id = $1"
                    " ORDER BY version DESC LIMIT 1",
                    definition_id,
                )
            else:
                row = await conn.fetchrow(
                    f"SELECT {DEFINITION_COLUMNS} FROM definitions WHERE id = $1 AND version = $2",
                    definition_id,
                    version,
                )
        return None if row is None else DefinitionRecord(*row)

    async def list_definitions(
        self, *, keyword: str | None = None, offset: int = 0, limit: int = 20
    ) -> tuple[list[DefinitionRecord], int]:
        needle = keyword or None
        async with self._conn("list definitions") as conn:
            # The window count is the total before LIMIT: one query answers both, and
            # only a page past the end needs a second one.
            rows = await conn.fetch(
                f"SELECT {DEFINITION_COLUMNS}, count(*) OVER () {_LATEST_MATCHING}"
                " ORDER BY d.id LIMIT $2 OFFSET $3",
                needle,
                limit,
                offset,
            )
            if rows:
                return [DefinitionRecord(*r[:5]) for r in rows], int(rows[0][5])
            if offset <= 0:
                return [], 0
            total = await conn.fetchval(f"SELECT count(*) {_LATEST_MATCHING}", needle)
        return [], int(total)

    # -- jobs -----------------------------------------------------------------------
    async def enqueue_job(
        self, run_id: str, seq: int, step_id: str, job_type: str, variables: str, retries: int
    ) -> JobRecord:
        job_id = job_id_for(run_id, seq)
        args = (job_id, run_id, seq, step_id, job_type, variables, retries, self._channel)
        async with self._conn("enqueue job") as conn:
            row = await conn.fetchrow(_ENQUEUE, *args)
            if row is not None:
                self._notifier.notify(JOBS)
                return _job(row)
            # Jobs are never deleted: a conflict means the row is there to read.
            found = await conn.fetchrow(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1", job_id)
        return _job(found)

    async def poll_jobs(
        self, worker_id: str, job_types: Sequence[str], limit: int, lease_seconds: float
    ) -> list[JobRecord]:
        types = _rules.poll_types(job_types, limit)
        if not types:
            return []
        async with self._conn("poll jobs") as conn:
            rows = await conn.fetch(_POLL, worker_id, types, limit, lease_seconds)
        return _rules.oldest_first(_job(r) for r in rows)

    async def complete_job(self, job_id: str, worker_id: str, variables: str) -> JobAnswer:
        async with self._conn("complete job") as conn, conn.transaction():
            held = await self._hold(conn, job_id, worker_id, "COMPLETED")
            if isinstance(held, JobAnswer):
                return held
            run_id, seq, attempt = held
            await conn.execute(_CLOSE_JOB, job_id, "COMPLETED", None)
            payload = job_done_payload(variables, attempt, worker_id)
            await insert_signal(conn, run_id, job_signal_name(seq), payload, None)
            await self._notify(conn, run_topic(run_id), WORK)
        return JobAnswer.DONE

    async def fail_job(
        self, job_id: str, worker_id: str, *, retryable: bool, message: str
    ) -> JobAnswer:
        async with self._conn("fail job") as conn, conn.transaction():
            held = await self._hold(conn, job_id, worker_id, "FAILED")
            if isinstance(held, JobAnswer):
                return held
            run_id, seq, attempt = held
            if retryable and await conn.execute(_REQUEUE_JOB, job_id) == "UPDATE 1":
                await self._notify(conn, JOBS)
                return JobAnswer.DONE
            await conn.execute(_CLOSE_JOB, job_id, "FAILED", message)
            payload = job_failed_payload(message, attempt, worker_id)
            await insert_signal(conn, run_id, job_signal_name(seq), payload, None)
            await self._notify(conn, run_topic(run_id), WORK)
        return JobAnswer.DONE

    async def _hold(
        self, conn: asyncpg.Connection, job_id: str, worker_id: str, closes_as: str
    ) -> JobAnswer | tuple[str, int, int]:
        """Lock the job's run, then the job; (run id, seq, attempt) if the worker may close it.

        Otherwise the answer to give. A job whose run has ended is cancelled here: nobody
        waits for its outcome any more.
        """
        run = await conn.fetchrow(
            "SELECT id, status FROM runs WHERE id = (SELECT run_id FROM jobs WHERE id = $1)"
            " FOR UPDATE",
            job_id,
        )
        row = await conn.fetchrow(
            "SELECT run_id, seq, status, worker_id, attempt FROM jobs WHERE id = $1 FOR UPDATE",
            job_id,
        )
        status, holder = (None, None) if row is None else (row["status"], row["worker_id"])
        verdict = _rules.judge_job_call(status, holder, worker_id, closes_as)
        if verdict is not None:
            return verdict
        if _rules.is_closed(None if run is None else run["status"]):
            await conn.execute(_CLOSE_JOB, job_id, "CANCELLED", None)
            return _rules.closed_by_engine()
        return row["run_id"], row["seq"], row["attempt"]

    async def get_job(self, job_id: str) -> JobRecord | None:
        async with self._conn("read job") as conn:
            row = await conn.fetchrow(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1", job_id)
        return None if row is None else _job(row)

    async def cancel_jobs(self, run_id: str, seq: int | None = None) -> int:
        async with self._conn("cancel jobs") as conn, conn.transaction():
            await conn.execute("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", run_id)
            result = await conn.execute(
                f"{CANCEL_OPEN_JOBS} AND ($2::integer IS NULL OR seq = $2)", run_id, seq
            )
        return int(result.split()[-1])
