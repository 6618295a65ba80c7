"""SQLite read-only queries for operators: flow runs by page, journals in bulk, fleet figures.

``SqliteAdmin`` is mixed into ``SqliteStore``; every query runs on the reader connection.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from ..info import Status
from ._admin import STEP_KIND, FleetMetrics, JobQueue, StepLatency
from .base import RUN_COLUMNS, JournalEntry, RunRecord, run_from_row

T = TypeVar("T")

# Durations of ended flow steps. A quick step is one record holding startedAt and at; a
# step that waited has a start record and an end record pointing at it ("start": seq).
# MATERIALIZED keeps json_extract away from payloads of other kinds, which need not be
# JSON (an opt-in codec may store anything).
_STEP_SECONDS = f"""
WITH steps AS MATERIALIZED (
    SELECT run_id, seq, payload FROM journal WHERE kind = '{STEP_KIND}'
), ends AS (
    SELECT run_id, json_extract(payload, '$.type') AS type,
        json_extract(payload, '$.startedAt') AS started, json_extract(payload, '$.at') AS ended,
        json_extract(payload, '$.start') AS start_seq
    FROM steps WHERE json_extract(payload, '$.status') IS NOT NULL
), durations AS (
    SELECT r.workflow AS workflow, COALESCE(e.type, json_extract(s.payload, '$.type')) AS type,
        (julianday(e.ended) - julianday(COALESCE(e.started, json_extract(s.payload, '$.at'))))
            * 86400.0 AS seconds
    FROM ends e
    JOIN runs r ON r.id = e.run_id
    LEFT JOIN steps s ON s.run_id = e.run_id AND s.seq = e.start_seq AND e.started IS NULL
)
"""


def _list_flow_runs(
    conn: sqlite3.Connection,
    *,
    definition_id: str | None,
    statuses: Sequence[Status] | None,
    business_key: str | None,
    offset: int,
    limit: int,
) -> tuple[list[RunRecord], int]:
    where = ["flow_version IS NOT NULL"]
    params: list[object] = []
    if definition_id is not None:
        where.append("workflow = ?")
        params.append(definition_id)
    if statuses is not None:
        where.append("status IN (SELECT value FROM json_each(?))")
        params.append(json.dumps([str(s) for s in statuses]))
    if business_key is not None:
        where.append("business_key = ?")
        params.append(business_key)
    clause = " AND ".join(where)
    rows = conn.execute(
        f"SELECT {RUN_COLUMNS}, count(*) OVER () FROM runs WHERE {clause}"
        " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).fetchall()
    if rows:
        return [run_from_row(r[:-1]) for r in rows], int(rows[0][-1])
    if offset <= 0:
        return [], 0
    (total,) = conn.execute(f"SELECT count(*) FROM runs WHERE {clause}", params).fetchone()
    return [], int(total)


def _read_journals(
    conn: sqlite3.Connection, *, run_ids: Sequence[str], kinds: Sequence[str] | None
) -> dict[str, list[JournalEntry]]:
    found: dict[str, list[JournalEntry]] = {run_id: [] for run_id in run_ids}
    rows = conn.execute(
        "SELECT run_id, pos, seq, event, kind, name, fingerprint, payload, created_at"
        " FROM journal WHERE run_id IN (SELECT value FROM json_each(?1))"
        " AND (?2 IS NULL OR kind IN (SELECT value FROM json_each(?2)))"
        " ORDER BY run_id, pos",
        (json.dumps(list(run_ids)), None if kinds is None else json.dumps(list(kinds))),
    )
    for row in rows:
        found[row[0]].append(JournalEntry(*row[1:]))
    return found


def _fleet_metrics(conn: sqlite3.Connection, *, bounds: Sequence[float]) -> FleetMetrics:
    now = time.time()
    conn.execute("BEGIN")  # one snapshot for every figure
    try:
        runs = [
            (workflow, Status(status), int(count))
            for workflow, status, count in conn.execute(
                "SELECT workflow, status, count(*) FROM runs GROUP BY workflow, status"
                " ORDER BY workflow, status"
            )
        ]
        (runnable,) = conn.execute(
            "SELECT count(*) FROM runs WHERE runnable_at IS NOT NULL AND runnable_at <= ?",
            (now,),
        ).fetchone()
        jobs = [
            JobQueue(job_type, int(queued), int(held), int(expired))
            for job_type, queued, held, expired in conn.execute(
                "SELECT job_type, sum(status = 'QUEUED'),"
                " sum(status = 'RUNNING' AND lock_expires_at > ?1),"
                " sum(status = 'RUNNING' AND lock_expires_at <= ?1)"
                " FROM jobs WHERE available_at IS NOT NULL GROUP BY job_type ORDER BY job_type",
                (now,),
            )
        ]
        buckets = ", ".join(f"sum(seconds <= ?{i + 1})" for i in range(len(bounds)))
        steps = [
            StepLatency(
                row[0], row[1], tuple(int(n) for n in row[4:]), int(row[2]), float(row[3] or 0)
            )
            for row in conn.execute(
                f"{_STEP_SECONDS} SELECT workflow, type, count(*), sum(seconds)"
                f"{', ' if bounds else ''}{buckets} FROM durations"
                " WHERE seconds IS NOT NULL GROUP BY workflow, type ORDER BY workflow, type",
                tuple(bounds),
            )
        ]
    finally:
        conn.execute("COMMIT")
    return FleetMetrics(runs, int(runnable), jobs, steps)


class SqliteAdmin:
    """The Store's read-only operator queries, for ``SqliteStore``."""

    if TYPE_CHECKING:

        async def _read(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def list_flow_runs(
        self,
        *,
        definition_id: str | None = None,
        statuses: Sequence[Status] | None = None,
        business_key: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[RunRecord], int]:
        page = functools.partial(
            _list_flow_runs,
            definition_id=definition_id,
            statuses=statuses,
            business_key=business_key,
            offset=offset,
            limit=limit,
        )
        return await self._read("list flow runs", page)

    async def read_journals(
        self, run_ids: Sequence[str], *, kinds: Sequence[str] | None = None
    ) -> dict[str, list[JournalEntry]]:
        if not run_ids:
            return {}
        read = functools.partial(_read_journals, run_ids=run_ids, kinds=kinds)
        return await self._read("read journals", read)

    async def fleet_metrics(self, bounds: Sequence[float]) -> FleetMetrics:
        read = functools.partial(_fleet_metrics, bounds=bounds)
        return await self._read("read fleet metrics", read)

    async def ping(self) -> None:
        await self._read("ping", lambda conn: conn.execute("SELECT 1 FROM runs LIMIT 1").fetchall())
