"""Postgres: ``diagnose`` reads a run and what may hold it up in one statement."""

from __future__ import annotations

import json
from typing import Any

from ._diagnosis import JOB_PREFIX, TASK_PREFIX, Diagnosis, WaitingJob
from ._postgres_db import NOW, PostgresDb
from ._records import RUN_COLUMNS, journal_entries, queue_from_row, run_from_row

_R = ", ".join(f"r.{column.strip()}" for column in RUN_COLUMNS.split(","))
_OPEN = "r.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"
# A worker is live per _rules.worker_live: its heartbeat at most stale_after old.
_LIVE = f"({NOW}) - w.heartbeat_at <= w.stale_after"

_DIAGNOSE = f"""
SELECT {_R},
    (SELECT json_object_agg(t.key, t.value) FROM run_tags t WHERE t.run_id = r.id)::text,
    ({NOW})::float8,
    ARRAY(SELECT c.id FROM runs c WHERE c.parent_id = r.id ORDER BY c.created_at, c.id),
    (SELECT json_agg(json_build_array(j.pos, j.seq, j.event, j.kind, j.name, j.fingerprint,
                                      j.payload, j.created_at) ORDER BY j.pos)::text
     FROM journal j WHERE {_OPEN} AND j.run_id = r.id AND (
        (j.event IN ('retry', 'timer', 'start') AND NOT EXISTS (
            SELECT 1 FROM journal e WHERE e.run_id = j.run_id AND e.seq = j.seq AND e.pos > j.pos
                AND e.event IN ('result', 'error')))
        OR (j.kind = 'step' AND '{TASK_PREFIX}' || j.seq = ANY(r.wait_signals)))),
    (SELECT json_agg(json_build_array(b.seq, b.step_id, b.job_type, b.status, b.attempt,
                                      b.worker_id) ORDER BY b.seq)::text
     FROM jobs b WHERE {_OPEN} AND b.run_id = r.id
        AND '{JOB_PREFIX}' || b.seq = ANY(r.wait_signals)),
    CASE WHEN {_OPEN} THEN (SELECT count(*) FROM workers w
        WHERE w.queues::jsonb ? r.queue AND {_LIVE}) ELSE 0 END,
    r.lease_owner IS NOT NULL AND EXISTS (
        SELECT 1 FROM workers w WHERE w.id = r.lease_owner AND {_LIVE}),
    q.name, q.concurrency, q.worker_concurrency, q.rate_limit, q.rate_period,
    CASE WHEN {_OPEN} AND q.concurrency IS NOT NULL THEN (SELECT count(*) FROM runs x
        WHERE x.queue = r.queue AND x.lease_owner IS NOT NULL) ELSE 0 END,
    CASE WHEN {_OPEN} AND q.rate_limit IS NOT NULL THEN (SELECT count(*) FROM queue_starts s
        WHERE s.queue = r.queue AND s.kind = 'run' AND s.at > ({NOW}) - q.rate_period)
        ELSE 0 END,
    CASE WHEN {_OPEN} AND r.lease_owner IS NULL AND r.runnable_at <= ({NOW})
        THEN (SELECT count(*) FROM runs x WHERE x.queue = r.queue AND x.lease_owner IS NULL
            AND x.runnable_at <= ({NOW}) AND x.id <> r.id
            AND (x.priority > r.priority
                 OR (x.priority = r.priority AND x.runnable_at < r.runnable_at)))
        ELSE 0 END
FROM runs r LEFT JOIN queues q ON q.name = r.queue
WHERE r.id = $1
"""
_AT = 25  # where the columns after the run's (and its tags) begin


class PostgresDiagnosis:
    """``diagnose`` on Postgres."""

    def __init__(self, db: PostgresDb) -> None:
        self._conn = db.conn

    async def diagnose(self, run_id: str) -> Diagnosis | None:
        async with self._conn("diagnose run") as conn:
            row = await conn.fetchrow(_DIAGNOSE, run_id)
        if row is None:
            return None
        row = tuple(row)
        now, children, records, jobs, live, holder = row[_AT : _AT + 6]
        queue = row[_AT + 6 : _AT + 11]
        leased, started, ahead = row[_AT + 11 : _AT + 14]
        return Diagnosis(
            run=run_from_row(row[:_AT]),
            now=now,
            children=tuple(children),
            open_records=tuple(journal_entries(_rows(records))),
            jobs=tuple(WaitingJob(*job) for job in _rows(jobs)),
            live_workers=int(live),
            holder_live=bool(holder),
            queue=None if queue[0] is None else queue_from_row(queue),
            leased=int(leased),
            started=int(started),
            ahead=int(ahead),
        )


def _rows(text: str | None) -> list[Any]:
    return [] if text is None else list(json.loads(text))
