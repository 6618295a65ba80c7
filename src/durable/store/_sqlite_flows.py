"""SQLite queries of JSON flows: versioned definitions, external jobs, signal delivery.

``SqliteFlows`` runs its queries through the store's ``SqliteDb``. The functions below
run inside one transaction each; ``insert_signal`` is shared with the runs'
``send_signal``, so a job's outcome reaches its run exactly as a signal does.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Sequence

from .._wire import job_done_payload, job_failed_payload, job_id_for, job_signal_name
from . import _rules
from ._notify import JOBS, WORK, run_topic
from ._records import (
    DEFINITION_COLUMNS,
    JOB_COLUMNS,
    DefinitionRecord,
    JobAnswer,
    JobRecord,
)
from ._sqlite_db import SqliteDb, fold

_OPEN_JOBS_SQL = "('QUEUED', 'RUNNING')"
_JOB_BY_ID = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"


def insert_signal(
    conn: sqlite3.Connection,
    run_id: str,
    name: str,
    payload: str,
    dedupe_key: str | None,
    now: float,
) -> tuple[bool, bool]:
    """Buffer a signal for an open run: (whether it was stored, whether it woke the run).

    A signal whose dedupe key the run already has stores nothing and leaves the mailbox
    alone, so the run sees no change.
    """
    cur = conn.execute(
        "INSERT INTO signals (run_id, name, payload, dedupe_key, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, dedupe_key) DO NOTHING",
        (run_id, name, payload, dedupe_key, now),
    )
    if cur.rowcount != 1:
        return False, False
    woke = conn.execute(
        "UPDATE runs SET mailbox_version = mailbox_version + 1, updated_at = ?,"
        " runnable_at = CASE WHEN status = 'WAITING' AND lease_owner IS NULL"
        "   AND parked_reason IS NULL"
        "   AND ? IN (SELECT value FROM json_each(COALESCE(wait_signals, '[]')))"
        "   THEN ? ELSE runnable_at END"
        " WHERE id = ? RETURNING runnable_at = ?",
        (now, name, now, run_id, now),
    ).fetchone()
    return True, bool(woke[0])


def has_signal(conn: sqlite3.Connection, run_id: str, dedupe_key: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM signals WHERE run_id = ? AND dedupe_key = ?", (run_id, dedupe_key)
    ).fetchone()
    return row is not None


# -- definitions ------------------------------------------------------------------------
def _put_definition(
    conn: sqlite3.Connection, now: float, *, definition_id: str, name: str, document: str
) -> DefinitionRecord:
    # The write transaction is BEGIN IMMEDIATE: concurrent uploads, even from other
    # processes, serialize on the database lock, so MAX(version) + 1 cannot collide.
    row = conn.execute(
        f"INSERT INTO definitions ({DEFINITION_COLUMNS})"
        " SELECT ?, COALESCE(MAX(version), 0) + 1, ?, ?, ? FROM definitions WHERE id = ?"
        f" RETURNING {DEFINITION_COLUMNS}",
        (definition_id, name, document, now, definition_id),
    ).fetchone()
    return DefinitionRecord(*row)


def _get_definition(
    conn: sqlite3.Connection, _now: float, *, definition_id: str, version: int | None
) -> DefinitionRecord | None:
    if version is None:
        row = conn.execute(
            f"SELECT {DEFINITION_COLUMNS} FROM definitions WHERE id = ?"
            " ORDER BY version DESC LIMIT 1",
            (definition_id,),
        ).fetchone()
    else:
        row = conn.execute(
            f"SELECT {DEFINITION_COLUMNS} FROM definitions WHERE id = ? AND version = ?",
            (definition_id, version),
        ).fetchone()
    return None if row is None else DefinitionRecord(*row)


_MATCHING = """
    FROM definitions d
    JOIN (SELECT id, MAX(version) AS version FROM definitions GROUP BY id) latest
        USING (id, version)
    WHERE ?1 IS NULL OR instr(durable_fold(d.id), ?1) > 0 OR instr(durable_fold(d.name), ?1) > 0
"""


def _list_definitions(
    conn: sqlite3.Connection, _now: float, *, keyword: str | None, offset: int, limit: int
) -> tuple[list[DefinitionRecord], int]:
    needle = fold(keyword) or None
    # The window count is the total before LIMIT, so one query answers both in one
    # snapshot; only a page past the end needs a second one.
    rows = conn.execute(
        f"SELECT d.id, d.version, d.name, d.document, d.uploaded_at, count(*) OVER ()"
        f" {_MATCHING} ORDER BY d.id LIMIT ?2 OFFSET ?3",
        (needle, limit, offset),
    ).fetchall()
    if rows:
        return [DefinitionRecord(*r[:5]) for r in rows], int(rows[0][5])
    if offset <= 0:
        return [], 0
    (total,) = conn.execute(f"SELECT count(*) {_MATCHING}", (needle,)).fetchone()
    return [], int(total)


# -- jobs -------------------------------------------------------------------------------
def _enqueue_job(
    conn: sqlite3.Connection,
    now: float,
    *,
    run_id: str,
    seq: int,
    step_id: str,
    job_type: str,
    variables: str,
    retries: int,
) -> tuple[JobRecord, bool]:
    job_id = job_id_for(run_id, seq)
    cur = conn.execute(
        "INSERT INTO jobs (id, run_id, seq, step_id, job_type, status, variables,"
        " retries_remaining, attempt, available_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, 'QUEUED', ?, ?, 1, ?, ?, ?) ON CONFLICT DO NOTHING",
        (job_id, run_id, seq, step_id, job_type, variables, retries, now, now, now),
    )
    row = conn.execute(_JOB_BY_ID, (job_id,)).fetchone()
    return JobRecord(*row), cur.rowcount == 1


def _poll_jobs(
    conn: sqlite3.Connection,
    now: float,
    *,
    worker_id: str,
    job_types: list[str],
    limit: int,
    lease_seconds: float,
) -> list[JobRecord]:
    until = now + lease_seconds
    # Each type's range is read in index order up to the limit and the oldest of those
    # are taken, so a backlog is never sorted whole; the immediate transaction keeps
    # other pollers out meanwhile.
    candidates: list[tuple[float, str]] = []
    for job_type in job_types:
        candidates += conn.execute(
            "SELECT available_at, id FROM jobs WHERE job_type = ? AND available_at <= ?"
            " ORDER BY available_at LIMIT ?",
            (job_type, now, limit),
        ).fetchall()
    picked = [job_id for _, job_id in sorted(candidates)[:limit]]
    rows = conn.execute(
        "UPDATE jobs SET status = 'RUNNING', worker_id = ?, lock_expires_at = ?,"
        " available_at = ?, updated_at = ? WHERE id IN (SELECT value FROM json_each(?))"
        f" RETURNING {JOB_COLUMNS}",
        (worker_id, until, until, now, json.dumps(picked)),
    ).fetchall()
    return _rules.oldest_first(JobRecord(*r) for r in rows)


def _close_job(
    conn: sqlite3.Connection, job_id: str, status: str, error: str | None, now: float
) -> None:
    conn.execute(
        "UPDATE jobs SET status = ?, error = COALESCE(?, error), lock_expires_at = NULL,"
        " available_at = NULL, updated_at = ? WHERE id = ?",
        (status, error, now, job_id),
    )


def _settle_job(
    conn: sqlite3.Connection,
    now: float,
    *,
    job_id: str,
    worker_id: str,
    closes_as: str,
    outcome: Callable[[sqlite3.Connection, str, int, int, float], list[str]],
) -> tuple[JobAnswer, list[str]]:
    """Check that ``worker_id`` may close the job, then apply ``outcome``.

    ``outcome(conn, run_id, seq, attempt, now)`` writes the change and returns the topics
    to notify once the transaction commits.
    """
    row = conn.execute(
        "SELECT run_id, seq, status, worker_id, attempt FROM jobs WHERE id = ?", (job_id,)
    ).fetchone()
    status, holder = (None, None) if row is None else (row[2], row[3])
    verdict = _rules.judge_job_call(status, holder, worker_id, closes_as)
    if verdict is not None:
        return verdict, []
    run_id, seq, _, _, attempt = row
    run = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    if _rules.is_closed(None if run is None else run[0]):
        # The run ended while the worker held the job: nobody waits for its outcome.
        _close_job(conn, job_id, "CANCELLED", None, now)
        return _rules.closed_by_engine(), []
    return JobAnswer.DONE, outcome(conn, run_id, seq, attempt, now)


def _signal_run(
    conn: sqlite3.Connection, run_id: str, seq: int, payload: str, now: float
) -> list[str]:
    _, woke = insert_signal(conn, run_id, job_signal_name(seq), payload, None, now)
    return [run_topic(run_id), WORK] if woke else [run_topic(run_id)]


def _complete_job(
    conn: sqlite3.Connection, now: float, *, job_id: str, worker_id: str, variables: str
) -> tuple[JobAnswer, list[str]]:
    def complete(
        conn: sqlite3.Connection, run_id: str, seq: int, attempt: int, now: float
    ) -> list[str]:
        _close_job(conn, job_id, "COMPLETED", None, now)
        payload = job_done_payload(variables, attempt, worker_id)
        return _signal_run(conn, run_id, seq, payload, now)

    return _settle_job(
        conn, now, job_id=job_id, worker_id=worker_id, closes_as="COMPLETED", outcome=complete
    )


def _fail_job(
    conn: sqlite3.Connection,
    now: float,
    *,
    job_id: str,
    worker_id: str,
    retryable: bool,
    message: str,
) -> tuple[JobAnswer, list[str]]:
    def fail(
        conn: sqlite3.Connection, run_id: str, seq: int, attempt: int, now: float
    ) -> list[str]:
        if retryable:
            requeued = conn.execute(
                "UPDATE jobs SET status = 'QUEUED', retries_remaining = retries_remaining - 1,"
                " attempt = attempt + 1, worker_id = NULL, lock_expires_at = NULL,"
                " available_at = ?, updated_at = ? WHERE id = ? AND retries_remaining > 0",
                (now, now, job_id),
            )
            if requeued.rowcount == 1:
                return [JOBS]
        _close_job(conn, job_id, "FAILED", message, now)
        payload = job_failed_payload(message, attempt, worker_id)
        return _signal_run(conn, run_id, seq, payload, now)

    return _settle_job(
        conn, now, job_id=job_id, worker_id=worker_id, closes_as="FAILED", outcome=fail
    )


def cancel_open_jobs(conn: sqlite3.Connection, run_id: str, seq: int | None, now: float) -> int:
    """Cancel the QUEUED and RUNNING jobs of a run (or only the one at ``seq``)."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'CANCELLED', lock_expires_at = NULL, available_at = NULL,"
        f" updated_at = ?1 WHERE run_id = ?2 AND status IN {_OPEN_JOBS_SQL}"
        " AND (?3 IS NULL OR seq = ?3)",
        (now, run_id, seq),
    )
    return cur.rowcount


def _get_job(conn: sqlite3.Connection, _now: float, *, job_id: str) -> JobRecord | None:
    row = conn.execute(_JOB_BY_ID, (job_id,)).fetchone()
    return None if row is None else JobRecord(*row)


class SqliteFlows:
    """Flow definitions and external jobs on SQLite (``FlowStore``)."""

    def __init__(self, db: SqliteDb) -> None:
        self._write = db.write
        self._read = db.read
        self._notify = db.notify
        self._notifier = db.notifier

    # -- definitions ----------------------------------------------------------------
    async def put_definition(
        self, definition_id: str, name: str, document: str
    ) -> DefinitionRecord:
        put = functools.partial(
            _put_definition, definition_id=definition_id, name=name, document=document
        )
        return await self._write("store definition", put)

    async def get_definition(
        self, definition_id: str, version: int | None = None
    ) -> DefinitionRecord | None:
        get = functools.partial(_get_definition, definition_id=definition_id, version=version)
        return await self._read("read definition", get)

    async def list_definitions(
        self, *, keyword: str | None = None, offset: int = 0, limit: int = 20
    ) -> tuple[list[DefinitionRecord], int]:
        page = functools.partial(_list_definitions, keyword=keyword, offset=offset, limit=limit)
        return await self._read("list definitions", page)

    # -- jobs -----------------------------------------------------------------------
    async def enqueue_job(
        self, run_id: str, seq: int, step_id: str, job_type: str, variables: str, retries: int
    ) -> JobRecord:
        enqueue = functools.partial(
            _enqueue_job,
            run_id=run_id,
            seq=seq,
            step_id=step_id,
            job_type=job_type,
            variables=variables,
            retries=retries,
        )
        job, created = await self._write("enqueue job", enqueue)
        if created:
            self._notifier.notify(JOBS)
        return job

    async def poll_jobs(
        self, worker_id: str, job_types: Sequence[str], limit: int, lease_seconds: float
    ) -> list[JobRecord]:
        types = _rules.poll_types(job_types, limit)
        if not types:
            return []
        poll = functools.partial(
            _poll_jobs,
            worker_id=worker_id,
            job_types=types,
            limit=limit,
            lease_seconds=lease_seconds,
        )
        return await self._write("poll jobs", poll)

    async def complete_job(self, job_id: str, worker_id: str, variables: str) -> JobAnswer:
        complete = functools.partial(
            _complete_job, job_id=job_id, worker_id=worker_id, variables=variables
        )
        answer, topics = await self._write("complete job", complete)
        self._notify(topics)
        return answer

    async def fail_job(
        self, job_id: str, worker_id: str, *, retryable: bool, message: str
    ) -> JobAnswer:
        fail = functools.partial(
            _fail_job, job_id=job_id, worker_id=worker_id, retryable=retryable, message=message
        )
        answer, topics = await self._write("fail job", fail)
        self._notify(topics)
        return answer

    async def get_job(self, job_id: str) -> JobRecord | None:
        return await self._read("read job", functools.partial(_get_job, job_id=job_id))

    async def cancel_jobs(self, run_id: str, seq: int | None = None) -> int:
        def cancel(conn: sqlite3.Connection, now: float) -> int:
            return cancel_open_jobs(conn, run_id, seq, now)

        return await self._write("cancel jobs", cancel)
