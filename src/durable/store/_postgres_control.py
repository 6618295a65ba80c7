"""Operator control of runs on Postgres (``ControlStore``): pause, resume and retry.

A pause marks the run (``paused_reason``). A run no worker holds is PAUSED at once and
leaves the claim (``runnable_at`` NULL); a held run's worker is woken through its
mailbox version, lets the activities in flight finish, and its Suspend or Release
commit gives the run back PAUSED. Nothing wakes a paused run (signals and a child's
end are stored, a timer's time is kept in the journal) until ``resume`` makes it
runnable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from . import _rules
from ._notify import JOBS, WORK, run_topic
from ._postgres_db import NOW, PostgresDb
from ._postgres_runs import BY_ID, journal_columns, where_clause
from ._records import ForkStart, RunQuery, RunRecord, run_from_row

# ``_rules.pause_action`` inlined for the rows it picks (BULK_PAUSABLE): NOW for a run no
# worker holds, REQUEST (the mailbox bump wakes its worker) for the others.
_PAUSE = f"""
UPDATE runs r SET paused_reason = $1, mailbox_version = r.mailbox_version + 1,
    status = CASE WHEN r.lease_owner IS NULL THEN 'PAUSED' ELSE r.status END,
    runnable_at = CASE WHEN r.lease_owner IS NULL THEN NULL ELSE r.runnable_at END,
    updated_at = {NOW}
FROM ({{picked}}) AS p WHERE r.id = p.id
RETURNING r.id
"""
# A PAUSED run goes back to waiting (PENDING if it never started) and is runnable now,
# unless it is parked; a run still held by the worker that is pausing it only loses the
# mark (its worker then gives it back runnable).
_RESUME = f"""
UPDATE runs r SET paused_reason = NULL, mailbox_version = r.mailbox_version + 1,
    status = CASE WHEN r.status <> 'PAUSED' THEN r.status
        WHEN r.epoch = 0 THEN 'PENDING' ELSE 'WAITING' END,
    runnable_at = CASE WHEN r.status <> 'PAUSED' OR r.parked_reason IS NOT NULL
        THEN r.runnable_at ELSE {NOW} END,
    updated_at = {NOW}
FROM ({{picked}}) AS p WHERE r.id = p.id
RETURNING r.id
"""
# ``_rules.retry_target`` holds for the runs picked (BULK_RETRYABLE): each gets a
# ``retried`` record after its journal (replay then skips its failure), its failed
# external jobs are queued again, and it is runnable now.
_RETRY = f"""
WITH picked AS ({{picked}}), marked AS (
    INSERT INTO journal (run_id, pos, seq, event, kind, name, fingerprint, payload, created_at)
    SELECT p.id, COALESCE((SELECT max(j.pos) FROM journal j WHERE j.run_id = p.id), -1) + 1,
        0, 'retried', 'run', '', NULL, r.error, {NOW}
    FROM picked p JOIN runs r ON r.id = p.id
), jobs AS (
    UPDATE jobs SET status = 'QUEUED', attempt = attempt + 1, worker_id = NULL,
        lock_expires_at = NULL, error = NULL, available_at = {NOW}, updated_at = {NOW}
    WHERE run_id IN (SELECT id FROM picked) AND status = 'FAILED'
    RETURNING 1
)
UPDATE runs r SET status = CASE WHEN r.epoch = 0 THEN 'PENDING' ELSE 'WAITING' END,
    error = NULL, result = NULL, runnable_at = {NOW}, wait_signals = NULL,
    paused_reason = NULL, mailbox_version = r.mailbox_version + 1, updated_at = {NOW}
FROM picked p WHERE r.id = p.id
RETURNING r.id, (SELECT count(*) FROM jobs)
"""
# Mailbox version 1: a fork starts with a journal, so its first claim reads it (a run
# claimed first with version 0 has nothing to read back: ``runtime._load.first_claim``).
_FORK = f"""
INSERT INTO runs (id, workflow, status, args, runnable_at, created_at, updated_at,
    business_key, flow_version, queue, priority, forked_from, fork_at, mailbox_version)
VALUES ($1, $2, 'PENDING', $3, {NOW}, {NOW}, {NOW}, $4, $5, $6, $7, $8, $9, 1)
ON CONFLICT (id) DO NOTHING RETURNING id
"""
_COPY = """
INSERT INTO journal (run_id, pos, seq, event, kind, name, fingerprint, payload, created_at)
SELECT $1, e.* FROM unnest($2::int[], $3::int[], $4::text[], $5::text[], $6::text[],
                           $7::text[], $8::text[], $9::float8[]) AS e
"""
_PUT_TAGS = """
INSERT INTO run_tags (run_id, key, value)
SELECT $1, t.key, t.value FROM unnest($2::text[], $3::text[]) AS t(key, value)
"""
_PUT_EVENTS = f"""
INSERT INTO events (run_id, key, value, updated_at)
SELECT $1, e.key, e.value, {NOW} FROM unnest($2::text[], $3::text[]) AS e(key, value)
ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value
"""
_PICK = "SELECT id FROM runs {where} ORDER BY id LIMIT {limit} FOR UPDATE SKIP LOCKED"


class PostgresControl:
    """Pause and resume on Postgres."""

    def __init__(self, db: PostgresDb) -> None:
        self._conn = db.conn
        self._notify = db.notify

    async def request_pause(self, run_id: str, reason: str | None = None) -> RunRecord:
        async with self._conn("pause run") as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT status, lease_owner, paused_reason FROM runs WHERE id = $1 FOR UPDATE",
                run_id,
            )
            status, owner, paused = (None, None, None) if row is None else tuple(row)
            action = _rules.pause_action(run_id, status, owner, paused)
            if action is not _rules.Pause.NOTHING:
                picked = "SELECT $2::text AS id"
                await conn.execute(
                    _PAUSE.format(picked=picked), reason or _rules.PAUSED_BY_OPERATOR, run_id
                )
                await self._notify(conn, run_topic(run_id))
            found = await conn.fetchrow(BY_ID, run_id)
        return run_from_row(found)

    async def resume(self, run_id: str) -> RunRecord:
        async with self._conn("resume run") as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT status, paused_reason FROM runs WHERE id = $1 FOR UPDATE", run_id
            )
            status, paused = (None, None) if row is None else tuple(row)
            if _rules.resume_target(run_id, status, paused):
                await conn.execute(_RESUME.format(picked="SELECT $1::text AS id"), run_id)
                await self._notify(conn, run_topic(run_id), WORK)
            found = await conn.fetchrow(BY_ID, run_id)
        return run_from_row(found)

    async def fork_run(self, fork: ForkStart) -> RunRecord:
        origin, entries = fork.origin, fork.entries
        tags = sorted((origin.tags or {}).items())
        async with self._conn("fork run") as conn, conn.transaction():
            created = await conn.fetchval(
                _FORK,
                fork.run_id,
                origin.workflow,
                fork.args,
                origin.business_key,
                origin.flow_version,
                origin.queue,
                origin.priority,
                origin.id,
                fork.fork_at,
            )
            if created is None:
                raise _rules.fork_taken(fork.run_id)
            await conn.execute(_COPY, fork.run_id, *journal_columns(entries))
            await conn.execute(_PUT_TAGS, fork.run_id, [k for k, _ in tags], [v for _, v in tags])
            await conn.execute(
                _PUT_EVENTS, fork.run_id, [k for k, _ in fork.events], [v for _, v in fork.events]
            )
            await self._notify(conn, WORK)
            found = await conn.fetchrow(BY_ID, fork.run_id)
        return run_from_row(found)

    async def retry_run(self, run_id: str) -> RunRecord:
        async with self._conn("retry run") as conn, conn.transaction():
            status = await conn.fetchval("SELECT status FROM runs WHERE id = $1 FOR UPDATE", run_id)
            _rules.retry_target(run_id, status)
            rows = await conn.fetch(_RETRY.format(picked="SELECT $1::text AS id"), run_id)
            await self._notify(conn, *_retried_topics(rows))
            found = await conn.fetchrow(BY_ID, run_id)
        return run_from_row(found)

    async def bulk_retry(self, query: RunQuery, *, dry_run: bool = False, batch: int = 500) -> int:
        return await self._bulk(_RETRY, _rules.BULK_RETRYABLE, query, [], dry_run, batch)

    async def bulk_pause(
        self, query: RunQuery, *, reason: str | None = None, dry_run: bool = False, batch: int = 500
    ) -> int:
        reason = reason or _rules.PAUSED_BY_OPERATOR
        return await self._bulk(_PAUSE, _rules.BULK_PAUSABLE, query, [reason], dry_run, batch)

    async def bulk_resume(self, query: RunQuery, *, dry_run: bool = False, batch: int = 500) -> int:
        return await self._bulk(_RESUME, _rules.BULK_RESUMABLE, query, [], dry_run, batch)

    async def _bulk(
        self,
        statement: str,
        changeable: str,
        query: RunQuery,
        leading: list[object],
        dry_run: bool,
        batch: int,
    ) -> int:
        """One statement per batch of ``batch`` runs; rows a commit holds are left for the
        next batch (``SKIP LOCKED``), and a run that changed meanwhile no longer matches."""
        conditions = [*_rules.query_conditions(query), (changeable, ())]
        where, values = where_clause(conditions)
        if dry_run:
            async with self._conn("count runs") as conn:
                return int(await conn.fetchval(f"SELECT count(*) FROM runs {where}", *values))
        offset, _ = where_clause(conditions, first=len(leading) + 1)
        sql = statement.format(picked=_PICK.format(where=offset, limit=int(batch)))
        done = tries = 0
        while True:
            async with self._conn("change runs") as conn, conn.transaction():
                rows = await conn.fetch(sql, *leading, *values)
                if rows:
                    await self._notify(conn, *_retried_topics(rows))
            done += len(rows)
            if len(rows) < batch:
                if tries >= 50 or not await self._any(where, values):
                    return done
                tries += 1  # rows a commit held: take them once it is written
                await asyncio.sleep(0.02)

    async def _any(self, where: str, values: list[object]) -> bool:
        async with self._conn("count runs") as conn:
            return bool(await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM runs {where})", *values))


def _retried_topics(rows: Sequence[Sequence[Any]]) -> list[str]:
    """What changing these runs wakes: workers, the runs' watchers, and job pollers when
    a retry queued jobs again (rows of ``_RETRY`` end with that count)."""
    topics = {WORK, *(run_topic(row[0]) for row in rows)}
    if any(len(row) > 1 and row[-1] for row in rows):
        topics.add(JOBS)
    return sorted(topics)
