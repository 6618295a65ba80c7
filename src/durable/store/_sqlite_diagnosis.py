"""SQLite: ``diagnose`` reads a run and what may hold it up in one read transaction."""

from __future__ import annotations

import json
import sqlite3

from . import _rules
from ._diagnosis import JOB_PREFIX, TASK_PREFIX, Diagnosis, WaitingJob
from ._records import (
    JOURNAL_COLUMNS,
    QUEUE_COLUMNS,
    RUN_COLUMNS,
    RunRecord,
    journal_entries,
    queue_from_row,
    run_from_row,
)
from ._sqlite_db import SqliteDb

_TAGS = "(SELECT json_group_object(key, value) FROM run_tags t WHERE t.run_id = runs.id)"
_OPEN_RECORDS = f"""
SELECT {JOURNAL_COLUMNS} FROM journal j WHERE j.run_id = ? AND (
    (j.event IN ('retry', 'timer', 'start') AND NOT EXISTS (
        SELECT 1 FROM journal e WHERE e.run_id = j.run_id AND e.seq = j.seq AND e.pos > j.pos
            AND e.event IN ('result', 'error')))
    OR (j.kind = 'step' AND j.seq IN (SELECT value FROM json_each(?))))
ORDER BY j.pos
"""
_AHEAD = """
SELECT count(*) FROM runs WHERE queue = ? AND lease_owner IS NULL AND runnable_at <= ?
    AND id <> ? AND (priority > ? OR (priority = ? AND runnable_at < ?))
"""


class SqliteDiagnosis:
    """``diagnose`` on SQLite."""

    def __init__(self, db: SqliteDb) -> None:
        self._db = db

    async def diagnose(self, run_id: str) -> Diagnosis | None:
        return await self._db.read("diagnose run", lambda conn, now: _read(conn, now, run_id))


def _read(conn: sqlite3.Connection, now: float, run_id: str) -> Diagnosis | None:
    row = conn.execute(
        f"SELECT {RUN_COLUMNS}, {_TAGS} FROM runs WHERE id = ?", (run_id,)
    ).fetchone()
    if row is None:
        return None
    run = run_from_row(row)
    children = tuple(
        child
        for (child,) in conn.execute(
            "SELECT id FROM runs WHERE parent_id = ? ORDER BY created_at, id", (run_id,)
        )
    )
    if _rules.is_closed(str(run.status)):
        return Diagnosis(run, now, children)
    tasks = _seqs(run, TASK_PREFIX)
    records = journal_entries(conn.execute(_OPEN_RECORDS, (run_id, json.dumps(tasks))))
    jobs = [
        WaitingJob(*job)
        for job in conn.execute(
            "SELECT seq, step_id, job_type, status, attempt, worker_id FROM jobs"
            " WHERE run_id = ? AND seq IN (SELECT value FROM json_each(?)) ORDER BY seq",
            (run_id, json.dumps(_seqs(run, JOB_PREFIX))),
        )
    ]
    workers = conn.execute("SELECT id, queues, heartbeat_at, stale_after FROM workers").fetchall()
    live = {w[0]: json.loads(w[1]) for w in workers if _rules.worker_live(w[2], w[3], now)}
    stored = conn.execute(f"SELECT {QUEUE_COLUMNS} FROM queues WHERE name = ?", (run.queue,))
    queue_row = stored.fetchone()
    queue = None if queue_row is None else queue_from_row(queue_row)
    leased = started = ahead = 0
    if queue is not None and queue.concurrency is not None:
        leased = _count(
            conn, "SELECT count(*) FROM runs WHERE queue = ? AND lease_owner IS NOT NULL", run.queue
        )
    if queue is not None and queue.rate_limit is not None:
        started = _count(
            conn,
            "SELECT count(*) FROM queue_starts WHERE queue = ? AND kind = 'run' AND at > ?",
            run.queue,
            now - queue.rate_limit[1],
        )
    due = run.runnable_at
    if run.lease_owner is None and due is not None and due <= now:
        args = (run.queue, now, run.id, run.priority, run.priority, due)
        ahead = _count(conn, _AHEAD, *args)
    return Diagnosis(
        run,
        now,
        children,
        tuple(records),
        tuple(jobs),
        live_workers=sum(1 for queues in live.values() if run.queue in queues),
        holder_live=run.lease_owner in live,
        queue=queue,
        leased=leased,
        started=started,
        ahead=ahead,
    )


def _seqs(run: RunRecord, prefix: str) -> list[int]:
    """The seqs named by the run's wait signals of one kind (``durable.task#4`` -> 4)."""
    return [int(name[len(prefix) :]) for name in run.wait_signals if name.startswith(prefix)]


def _count(conn: sqlite3.Connection, sql: str, *args: object) -> int:
    return int(conn.execute(sql, args).fetchone()[0])
