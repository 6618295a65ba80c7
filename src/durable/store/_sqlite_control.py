"""Operator control of runs on SQLite (``ControlStore``): pause, resume and retry.

The statements are those of the Postgres store (``_postgres_control`` explains them);
the writer thread serialises them with every commit, so a batch needs no row locks.
"""

from __future__ import annotations

import sqlite3

from . import _rules
from ._notify import JOBS, WORK, run_topic
from ._records import ForkStart, RunQuery, RunRecord, run_from_row
from ._sqlite_db import SqliteDb
from ._sqlite_runs import BY_ID, where_clause

# ``_rules.pause_action`` for the runs picked (BULK_PAUSABLE); parameters: reason, now.
_PAUSE = """
UPDATE runs SET paused_reason = ?, mailbox_version = mailbox_version + 1,
    status = CASE WHEN lease_owner IS NULL THEN 'PAUSED' ELSE status END,
    runnable_at = CASE WHEN lease_owner IS NULL THEN NULL ELSE runnable_at END,
    updated_at = ?
WHERE id IN ({picked})
RETURNING id
"""
# Parameters: now, now.
_RESUME = """
UPDATE runs SET paused_reason = NULL, mailbox_version = mailbox_version + 1,
    runnable_at = CASE WHEN status <> 'PAUSED' OR parked_reason IS NOT NULL
        THEN runnable_at ELSE ? END,
    status = CASE WHEN status <> 'PAUSED' THEN status
        WHEN epoch = 0 THEN 'PENDING' ELSE 'WAITING' END,
    updated_at = ?
WHERE id IN ({picked})
RETURNING id
"""


def _retry(conn: sqlite3.Connection, run_ids: list[str], now: float) -> set[str]:
    """Reopen FAILED runs as ``_postgres_control._RETRY`` does; return the topics to wake."""
    if not run_ids:
        return set()
    marks = ", ".join("?" * len(run_ids))
    conn.execute(
        "INSERT INTO journal (run_id, pos, seq, event, kind, name, fingerprint, payload,"
        " created_at) SELECT r.id,"
        " COALESCE((SELECT max(j.pos) FROM journal j WHERE j.run_id = r.id), -1) + 1,"
        f" 0, 'retried', 'run', '', NULL, r.error, ? FROM runs r WHERE r.id IN ({marks})",
        (now, *run_ids),
    )
    jobs = conn.execute(
        "UPDATE jobs SET status = 'QUEUED', attempt = attempt + 1, worker_id = NULL,"
        " lock_expires_at = NULL, error = NULL, available_at = ?, updated_at = ?"
        f" WHERE run_id IN ({marks}) AND status = 'FAILED'",
        (now, now, *run_ids),
    ).rowcount
    conn.execute(
        "UPDATE runs SET status = CASE WHEN epoch = 0 THEN 'PENDING' ELSE 'WAITING' END,"
        " error = NULL, result = NULL, runnable_at = ?, wait_signals = NULL,"
        " paused_reason = NULL, mailbox_version = mailbox_version + 1, updated_at = ?"
        f" WHERE id IN ({marks})",
        (now, now, *run_ids),
    )
    topics = {WORK, *(run_topic(run_id) for run_id in run_ids)}
    return topics | {JOBS} if jobs else topics


class SqliteControl:
    """Pause and resume on SQLite."""

    def __init__(self, db: SqliteDb) -> None:
        self._write = db.write
        self._read = db.read
        self._notify = db.notify

    async def request_pause(self, run_id: str, reason: str | None = None) -> RunRecord:
        def update(conn: sqlite3.Connection, now: float) -> RunRecord:
            row = conn.execute(
                "SELECT status, lease_owner, paused_reason FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            status, owner, paused = (None, None, None) if row is None else row
            if _rules.pause_action(run_id, status, owner, paused) is not _rules.Pause.NOTHING:
                text = reason or _rules.PAUSED_BY_OPERATOR
                conn.execute(_PAUSE.format(picked="?"), (text, now, run_id)).fetchall()
                topics.add(run_topic(run_id))
            return run_from_row(conn.execute(BY_ID, (run_id,)).fetchone())

        topics: set[str] = set()
        run = await self._write("pause run", update)
        self._notify(topics)
        return run

    async def resume(self, run_id: str) -> RunRecord:
        def update(conn: sqlite3.Connection, now: float) -> RunRecord:
            row = conn.execute(
                "SELECT status, paused_reason FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            status, paused = (None, None) if row is None else row
            if _rules.resume_target(run_id, status, paused):
                conn.execute(_RESUME.format(picked="?"), (now, now, run_id)).fetchall()
                topics.update((run_topic(run_id), WORK))
            return run_from_row(conn.execute(BY_ID, (run_id,)).fetchone())

        topics: set[str] = set()
        run = await self._write("resume run", update)
        self._notify(topics)
        return run

    async def fork_run(self, fork: ForkStart) -> RunRecord:
        origin = fork.origin

        def create(conn: sqlite3.Connection, now: float) -> RunRecord:
            created = conn.execute(
                "INSERT INTO runs (id, workflow, status, args, runnable_at, created_at,"
                " updated_at, business_key, flow_version, queue, priority, forked_from,"
                " fork_at, mailbox_version)"  # 1: see _postgres_control._FORK
                " VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (id) DO NOTHING",
                (
                    fork.run_id,
                    origin.workflow,
                    fork.args,
                    now,
                    now,
                    now,
                    origin.business_key,
                    origin.flow_version,
                    origin.queue,
                    origin.priority,
                    origin.id,
                    fork.fork_at,
                ),
            ).rowcount
            if not created:
                raise _rules.fork_taken(fork.run_id)
            conn.executemany(
                "INSERT INTO journal (run_id, pos, seq, event, kind, name, fingerprint,"
                " payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        fork.run_id,
                        e.pos,
                        e.seq,
                        e.event,
                        e.kind,
                        e.name,
                        e.fingerprint,
                        e.payload,
                        e.created_at,
                    )
                    for e in fork.entries
                ],
            )
            conn.executemany(
                "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)",
                [(fork.run_id, k, v) for k, v in sorted((origin.tags or {}).items())],
            )
            conn.executemany(
                "INSERT INTO events (run_id, key, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                [(fork.run_id, k, v, now) for k, v in fork.events],
            )
            return run_from_row(conn.execute(BY_ID, (fork.run_id,)).fetchone())

        run = await self._write("fork run", create)
        self._notify({WORK})
        return run

    async def retry_run(self, run_id: str) -> RunRecord:
        def update(conn: sqlite3.Connection, now: float) -> RunRecord:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            _rules.retry_target(run_id, None if row is None else row[0])
            topics.update(_retry(conn, [run_id], now))
            return run_from_row(conn.execute(BY_ID, (run_id,)).fetchone())

        topics: set[str] = set()
        run = await self._write("retry run", update)
        self._notify(topics)
        return run

    async def bulk_retry(self, query: RunQuery, *, dry_run: bool = False, batch: int = 500) -> int:
        where, values = where_clause([*_rules.query_conditions(query), (_rules.BULK_RETRYABLE, ())])
        if dry_run:
            return await self._count(where, values)
        picked = f"SELECT id FROM runs {where} ORDER BY id LIMIT {int(batch)}"

        def change(conn: sqlite3.Connection, now: float) -> list[str]:
            run_ids = [row[0] for row in conn.execute(picked, values).fetchall()]
            topics.update(_retry(conn, run_ids, now))
            return run_ids

        done = 0
        while True:
            topics: set[str] = set()
            changed = await self._write("retry runs", change)
            self._notify(topics)
            done += len(changed)
            if len(changed) < batch:
                return done

    async def _count(self, where: str, values: tuple[object, ...]) -> int:
        def count(conn: sqlite3.Connection, _now: float) -> int:
            return int(conn.execute(f"SELECT count(*) FROM runs {where}", values).fetchone()[0])

        return await self._read("count runs", count)

    async def bulk_pause(
        self, query: RunQuery, *, reason: str | None = None, dry_run: bool = False, batch: int = 500
    ) -> int:
        leading = (reason or _rules.PAUSED_BY_OPERATOR,)
        return await self._bulk(_PAUSE, _rules.BULK_PAUSABLE, query, leading, dry_run, batch)

    async def bulk_resume(self, query: RunQuery, *, dry_run: bool = False, batch: int = 500) -> int:
        return await self._bulk(_RESUME, _rules.BULK_RESUMABLE, query, (), dry_run, batch)

    async def _bulk(
        self,
        statement: str,
        changeable: str,
        query: RunQuery,
        leading: tuple[object, ...],
        dry_run: bool,
        batch: int,
    ) -> int:
        where, values = where_clause([*_rules.query_conditions(query), (changeable, ())])
        if dry_run:
            return await self._count(where, values)
        picked = f"SELECT id FROM runs {where} ORDER BY id LIMIT {int(batch)}"
        sql = statement.format(picked=picked)

        def change(conn: sqlite3.Connection, now: float) -> list[str]:
            # ``now`` once for the pause, twice for the resume (see the statements).
            times = (now,) if leading else (now, now)
            return [row[0] for row in conn.execute(sql, (*leading, *times, *values)).fetchall()]

        done = 0
        while True:
            changed = await self._write("change runs", change)
            self._notify({WORK, *(run_topic(run_id) for run_id in changed)} if changed else ())
            done += len(changed)
            if len(changed) < batch:
                return done
