"""SQLite read-only queries for operators: flow runs by page, journals in bulk, fleet figures.

``SqliteAdmin`` runs its queries through the store's ``SqliteDb``, on the reader
connection but for ``unpark``.
Step durations are read in chunks, each a turn of its own on that connection, so a
scrape never holds it for long.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence

from .._wire import UNKNOWN_WORKFLOW_LIKE, Kind
from ..info import Status
from ._admin import (
    CHUNK_ROWS,
    FleetMetrics,
    JobQueue,
    StepDurations,
    StepRow,
    StepTally,
)
from ._notify import WORK
from ._records import (
    JOURNAL_COLUMNS,
    RUN_COLUMNS,
    JournalEntry,
    RunRecord,
    journal_entries,
    run_from_row,
)
from ._sqlite_db import SqliteDb

_STEP_COLUMNS = "j.run_id, j.pos, j.payload, j.created_at, r.workflow"
_STEPS_MADE = (
    f"SELECT {_STEP_COLUMNS} FROM journal j LEFT JOIN runs r ON r.id = j.run_id"
    f" WHERE j.kind = '{Kind.STEP}' AND {{after}} ORDER BY j.created_at, j.run_id, j.pos LIMIT ?"
)
_STEPS_LOGGED = (
    f"SELECT l.id, {_STEP_COLUMNS} FROM journal_steps l"
    f" LEFT JOIN journal j ON j.run_id = l.run_id AND j.pos = l.pos AND j.kind = '{Kind.STEP}'"
    " LEFT JOIN runs r ON r.id = l.run_id WHERE l.id > ? ORDER BY l.id LIMIT ?"
)
_STEP_START = (
    f"SELECT payload FROM journal WHERE run_id = ? AND kind = '{Kind.STEP}' AND seq = ? LIMIT 1"
)
Key = tuple[str, int]


def _list_flow_runs(
    conn: sqlite3.Connection,
    _now: float,
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
    # The page walks an index and stops; the total is a count of its own (a window count
    # would build every matching row). One snapshot for both.
    conn.execute("BEGIN")
    try:
        rows = conn.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE {clause}"
            " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
        if offset <= 0 and len(rows) < limit:
            total = len(rows)  # the whole list is this page
        else:
            (total,) = conn.execute(f"SELECT count(*) FROM runs WHERE {clause}", params).fetchone()
    finally:
        conn.execute("COMMIT")
    return [run_from_row(r) for r in rows], int(total)


def _read_journals(
    conn: sqlite3.Connection, _now: float, *, run_ids: Sequence[str], kinds: Sequence[str] | None
) -> dict[str, list[JournalEntry]]:
    found: dict[str, list[JournalEntry]] = {run_id: [] for run_id in run_ids}
    rows = conn.execute(
        f"SELECT run_id, {JOURNAL_COLUMNS}"
        " FROM journal WHERE run_id IN (SELECT value FROM json_each(?1))"
        " AND (?2 IS NULL OR kind IN (SELECT value FROM json_each(?2)))"
        " ORDER BY run_id, pos",
        (json.dumps(list(run_ids)), None if kinds is None else json.dumps(list(kinds))),
    ).fetchall()
    for row, entry in zip(rows, journal_entries(row[1:] for row in rows), strict=True):
        found[row[0]].append(entry)
    return found


def _fleet_metrics(conn: sqlite3.Connection, now: float) -> FleetMetrics:
    conn.execute("BEGIN")  # one snapshot for every figure
    try:
        # status first: the order of runs_status_workflow, read without the table
        runs = [
            (workflow, Status(status), int(count))
            for status, workflow, count in conn.execute(
                "SELECT status, workflow, count(*) FROM runs GROUP BY status, workflow"
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
    finally:
        conn.execute("COMMIT")
    return FleetMetrics(sorted(runs), int(runnable), jobs)


def _settle(conn: sqlite3.Connection, tally: StepTally, rows: list[StepRow]) -> None:
    """Tally step records, reading the start records their ends point at."""
    wanted = tally.add(rows)
    if wanted:
        starts = []
        for run_id, seq in wanted:
            row = conn.execute(_STEP_START, (run_id, seq)).fetchone()
            starts.append((run_id, seq, None if row is None else row[0]))
        tally.add_starts(starts)


def _last_logged(conn: sqlite3.Connection, _now: float) -> int:
    (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM journal_steps").fetchone()
    return int(last)


def _steps_made(
    conn: sqlite3.Connection, _now: float, *, tally: StepTally, after: tuple[float, str, int] | None
) -> tuple[list[Key], tuple[float, str, int] | None]:
    """One chunk of the step records made since ``tally.since``, in (created_at, key)
    order after ``after``: their keys and where the next chunk starts (None: done)."""
    params: tuple[object, ...]
    if after is None:
        query, params = _STEPS_MADE.format(after="j.created_at >= ?"), (tally.since,)
    else:
        query = _STEPS_MADE.format(after="(j.created_at, j.run_id, j.pos) > (?, ?, ?)")
        params = after
    rows: list[StepRow] = conn.execute(query, (*params, CHUNK_ROWS)).fetchall()
    _settle(conn, tally, rows)
    last = (rows[-1][3], rows[-1][0], rows[-1][1]) if len(rows) == CHUNK_ROWS else None
    return [(row[0], row[1]) for row in rows], last


def _steps_logged(
    conn: sqlite3.Connection, _now: float, *, tally: StepTally, after: int, skip: set[Key]
) -> tuple[int, bool]:
    """One chunk of the step records logged after id ``after`` (but those in ``skip``):
    the last id read and whether more may follow."""
    rows = conn.execute(_STEPS_LOGGED, (after, CHUNK_ROWS)).fetchall()
    if not rows:
        return after, False
    found = [row[1:] for row in rows if row[4] is not None and (row[1], row[2]) not in skip]
    _settle(conn, tally, found)
    return int(rows[-1][0]), len(rows) == CHUNK_ROWS


class SqliteAdmin:
    """Operator queries on SQLite (``AdminStore``)."""

    def __init__(self, db: SqliteDb) -> None:
        self._write = db.write
        self._read = db.read
        self._notifier = db.notifier

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

    async def fleet_metrics(self) -> FleetMetrics:
        return await self._read("read fleet metrics", _fleet_metrics)

    async def step_durations(
        self, bounds: Sequence[float], *, since: float, position: str | None = None
    ) -> StepDurations:
        # Chunks, each a turn of its own on the reader connection, so other reads
        # interleave. The position is the last journal_steps id read (commit order).
        tally = StepTally(bounds, since)
        skip: set[Key] = set()
        if position is None or not position.isdigit():
            # First call: the records made since `since`, by time, then those logged
            # while that ran (read once: `skip`).
            last = await self._read("read step records", _last_logged)
            after: tuple[float, str, int] | None = None
            while True:
                read = functools.partial(_steps_made, tally=tally, after=after)
                keys, after = await self._read("read step records", read)
                skip.update(keys)
                if after is None:
                    break
        else:
            last = int(position)
        more = True
        while more:
            read_logged = functools.partial(_steps_logged, tally=tally, after=last, skip=skip)
            last, more = await self._read("read step records", read_logged)
        return StepDurations(tally.result(), str(last), tally.rows)

    async def ping(self) -> None:
        def ping(conn: sqlite3.Connection, _now: float) -> None:
            conn.execute("SELECT 1 FROM runs LIMIT 1").fetchall()

        await self._read("ping", ping)

    async def unpark(self, workflows: Sequence[str] | None = None) -> int:
        def update(conn: sqlite3.Connection, now: float) -> int:
            sql = (
                "UPDATE runs SET parked_reason = NULL, updated_at = ?,"
                " runnable_at = CASE WHEN paused_reason IS NULL THEN ? END"  # paused: on resume
                " WHERE parked_reason IS NOT NULL"
                " AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"
            )
            if workflows is None:
                return conn.execute(sql, (now, now)).rowcount
            marks = ", ".join("?" * len(workflows))
            sql += f" AND parked_reason LIKE ? AND workflow IN ({marks})"
            return conn.execute(sql, (now, now, UNKNOWN_WORKFLOW_LIKE, *workflows)).rowcount

        count = await self._write("unpark runs", update)
        if count:
            self._notifier.notify(WORK)
        return count
