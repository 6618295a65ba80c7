"""SQLite queries of runs: creation, journals, signals, cancellation, leases, commits.

Journal commits from concurrent runs are grouped into one transaction: while one batch
is being written the next one gathers, so a busy worker pays one fsync for many steps.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterable, Sequence

from .. import _clock
from ..errors import RunNotFoundError
from ..info import Status
from . import _rules
from ._notify import WORK, run_topic
from ._records import (
    JOURNAL_COLUMNS,
    RUN_COLUMNS,
    Commit,
    Fence,
    Finish,
    JournalEntry,
    LeaseState,
    Outcome,
    Park,
    Release,
    Restart,
    RunQuery,
    RunRecord,
    SignalRecord,
    Suspend,
    journal_entries,
    run_from_row,
)
from ._rules import Cancel
from ._sqlite_db import SqliteDb
from ._sqlite_flows import cancel_open_jobs, has_signal, insert_signal
from ._sqlite_links import apply_links, cancel_descendants, tell_parent

_TAGS = "(SELECT json_group_object(key, value) FROM run_tags t WHERE t.run_id = runs.id)"
BY_ID = f"SELECT {RUN_COLUMNS}, {_TAGS} FROM runs WHERE id = ?"
Pending = list[tuple[Commit, "asyncio.Future[bool]"]]


class SqliteRuns:
    """The run operations of the SQLite store (``RunStore``)."""

    def __init__(self, db: SqliteDb) -> None:
        self._db = db
        self._write = db.write
        self._read = db.read
        self._notify = db.notify
        self._notifier = db.notifier
        self._pending: Pending = []
        self._flusher: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Wait for the commits being written."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    # -- client operations ----------------------------------------------------------
    async def create_run(
        self,
        run_id: str,
        workflow: str,
        args: str,
        *,
        business_key: str | None = None,
        flow_version: int | None = None,
        queue: str = "default",
        priority: int = 0,
        trace_context: str | None = None,
        tags: Sequence[tuple[str, str]] = (),
    ) -> tuple[RunRecord, bool]:
        def insert(conn: sqlite3.Connection, now: float) -> tuple[RunRecord, bool]:
            values = (run_id, workflow, args, now, now, now, business_key, flow_version)
            cur = conn.execute(
                "INSERT INTO runs (id, workflow, status, args, runnable_at, created_at,"
                " updated_at, business_key, flow_version, queue, priority, trace_context)"
                " VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (*values, queue, priority, trace_context),
            )
            if cur.rowcount == 1 and tags:
                conn.executemany(
                    "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)",
                    [(run_id, key, value) for key, value in tags],
                )
            row = conn.execute(BY_ID, (run_id,)).fetchone()
            return run_from_row(row), cur.rowcount == 1

        run, created = await self._write("create run", insert)
        if created:
            self._notifier.notify(WORK)
        return run, created

    async def get_run(self, run_id: str) -> RunRecord | None:
        def select(conn: sqlite3.Connection, _now: float) -> RunRecord | None:
            row = conn.execute(BY_ID, (run_id,)).fetchone()
            return None if row is None else run_from_row(row)

        return await self._read("get run", select)

    async def list_runs(
        self,
        *,
        status: Status | None = None,
        workflow: str | None = None,
        limit: int,
        business_key: str | None = None,
        query: RunQuery | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        query = _rules.merged_query(query, status, workflow, business_key)
        where, values = where_clause(_rules.query_conditions(query, before))
        sql = f"SELECT {RUN_COLUMNS}, {_TAGS} FROM runs {where} ORDER BY created_at DESC, id DESC"
        params = (*values, limit)

        def select(conn: sqlite3.Connection, _now: float) -> list[RunRecord]:
            return [run_from_row(r) for r in conn.execute(f"{sql} LIMIT ?", params)]

        return await self._read("list runs", select)

    async def bulk_cancel(self, query: RunQuery, *, dry_run: bool = False, batch: int = 500) -> int:
        conditions = [*_rules.query_conditions(query), (_rules.BULK_CANCELLABLE, ())]
        where, values = where_clause(conditions)
        if dry_run:

            def count(conn: sqlite3.Connection, _now: float) -> int:
                return int(conn.execute(f"SELECT count(*) FROM runs {where}", values).fetchone()[0])

            return await self._read("count runs", count)
        sql = (
            "SELECT id, status, lease_owner, parked_reason, epoch, parent_id FROM runs"
            f" {where} ORDER BY id LIMIT {int(batch)}"
        )

        def cancel(conn: sqlite3.Connection, now: float) -> int:
            rows = conn.execute(sql, values).fetchall()
            for run_id, *_ in rows:  # one transaction per batch, no round trips
                _cancel(conn, run_id, now, topics)
            return len(rows)

        done = 0
        while True:
            topics: set[str] = set()
            taken = await self._write("cancel runs", cancel)
            self._notify(topics)
            done += taken
            if taken < batch:
                return done

    async def read_journal(self, run_id: str) -> list[JournalEntry]:
        def select(conn: sqlite3.Connection, _now: float) -> list[JournalEntry]:
            rows = conn.execute(
                f"SELECT {JOURNAL_COLUMNS} FROM journal WHERE run_id = ? ORDER BY pos", (run_id,)
            )
            return journal_entries(rows)

        return await self._read("read journal", select)

    async def send_signal(
        self, run_id: str, name: str, payload: str, *, dedupe_key: str | None = None
    ) -> bool:
        def insert(conn: sqlite3.Connection, now: float) -> tuple[bool, bool]:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if not _rules.signal_target(run_id, None if row is None else row[0]):
                repeated = dedupe_key is not None and has_signal(conn, run_id, dedupe_key)
                return _rules.closed_signal(run_id, row[0], repeated), False
            return insert_signal(conn, run_id, name, payload, dedupe_key, now)

        stored, woke = await self._write("send signal", insert)
        if stored:
            self._notifier.notify(run_topic(run_id))
        if woke:
            self._notifier.notify(WORK)
        return stored

    async def request_cancel(self, run_id: str) -> RunRecord:
        def update(conn: sqlite3.Connection, now: float) -> RunRecord:
            _cancel(conn, run_id, now, topics)
            return run_from_row(conn.execute(BY_ID, (run_id,)).fetchone())

        topics: set[str] = {run_topic(run_id), WORK}
        run = await self._write("cancel run", update)
        self._notify(topics)
        return run

    async def get_event(self, run_id: str, key: str) -> str | None:
        def select(conn: sqlite3.Connection, _now: float) -> str | None:
            row = conn.execute(
                "SELECT value FROM events WHERE run_id = ? AND key = ?", (run_id, key)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._read("read event", select)

    async def child_ids(self, run_id: str) -> list[str]:
        def select(conn: sqlite3.Connection, _now: float) -> list[str]:
            rows = conn.execute(
                "SELECT id FROM runs WHERE parent_id = ? ORDER BY created_at, id", (run_id,)
            ).fetchall()
            return [str(row[0]) for row in rows]

        return await self._read("list children", select)

    # -- worker operations ----------------------------------------------------------
    async def renew(
        self, owner: str, fences: list[Fence], lease_seconds: float
    ) -> dict[str, LeaseState]:
        def update(conn: sqlite3.Connection, now: float) -> dict[str, LeaseState]:
            until = now + lease_seconds
            held: dict[str, LeaseState] = {}
            for fence in fences:
                row = conn.execute(
                    "UPDATE runs SET runnable_at = ? WHERE id = ? AND epoch = ? AND lease_owner = ?"
                    " AND runnable_at > ? RETURNING mailbox_version, cancel_requested",
                    (until, fence.run_id, fence.epoch, owner, now),
                ).fetchone()
                if row is not None:
                    held[fence.run_id] = LeaseState(row[0], bool(row[1]))
            return held

        return await self._write("renew leases", update)

    async def pending_signals(self, run_id: str, after_id: int) -> list[SignalRecord]:
        def select(conn: sqlite3.Connection, _now: float) -> list[SignalRecord]:
            rows = conn.execute(
                "SELECT id, name, payload FROM signals"
                " WHERE run_id = ? AND consumed_seq IS NULL AND id > ? ORDER BY id",
                (run_id, after_id),
            )
            return [SignalRecord(*row) for row in rows]

        return await self._read("read signals", select)

    async def commit(self, commit: Commit) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((commit, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        clock = self._db.clock
        if isinstance(clock, _clock.VirtualClock):
            await clock.track(future)
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._write_batch(batch)
                except Exception as exc:
                    if len(batch) == 1:
                        _fail(batch, exc)
                        continue
                    # One commit failed the whole transaction: give each its own.
                    for item in batch:
                        try:
                            await self._write_batch([item])
                        except Exception as alone:
                            _fail([item], alone)
                except BaseException as exc:
                    _fail(batch, exc)
                    raise
        finally:
            self._flusher = None

    async def _write_batch(self, batch: Pending) -> None:
        """Apply a batch in one transaction and settle its futures (raises if it fails)."""
        commits = [c for c, _ in batch]

        def apply(conn: sqlite3.Connection, now: float) -> tuple[set[str], set[str], set[str]]:
            return _apply(conn, commits, now)

        lost, pausing, topics = await self._write("commit", apply)
        for commit, future in batch:
            if future.done():
                continue
            if commit.fence.run_id in lost:
                future.set_exception(_rules.lease_lost(commit.fence.run_id))
            else:
                future.set_result(commit.fence.run_id in pausing)
        for commit in commits:
            if commit.fence.run_id not in lost:
                topics.update(_rules.outcome_topics(commit.fence.run_id, commit.outcome))
        self._notify(topics)


def _fail(batch: Pending, exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


def _apply(
    conn: sqlite3.Connection, commits: Iterable[Commit], now: float
) -> tuple[set[str], set[str], set[str]]:
    """Apply a batch of commits in one transaction.

    Returns the runs whose fence failed, the runs asked to pause, and the topics their
    links want notified.
    """
    lost: set[str] = set()
    pausing: set[str] = set()
    topics: set[str] = set()
    for commit in commits:
        run_id, epoch = commit.fence.run_id, commit.fence.epoch
        row = conn.execute(
            "SELECT paused_reason IS NOT NULL FROM runs"
            " WHERE id = ? AND epoch = ? AND lease_owner IS NOT NULL",
            (run_id, epoch),
        ).fetchone()
        if row is None:
            lost.add(run_id)
            continue
        if row[0] or commit.pause is not None:
            pausing.add(run_id)
        conn.executemany(
            "INSERT INTO journal (run_id, pos, seq, event, kind, name, fingerprint, payload,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    e.pos,
                    e.seq,
                    e.event,
                    e.kind,
                    e.name,
                    e.fingerprint,
                    e.payload,
                    e.created_at,
                )
                for e in commit.entries
            ],
        )
        for signal_id, seq in commit.consumed_signals:
            conn.execute(
                "UPDATE signals SET consumed_seq = ? WHERE id = ? AND run_id = ?",
                (seq, signal_id, run_id),
            )
        if commit.pause is not None:
            conn.execute(
                "UPDATE runs SET paused_reason = COALESCE(paused_reason, ?) WHERE id = ?",
                (commit.pause, run_id),
            )
        _apply_outcome(conn, run_id, commit.outcome, now)
        if commit.has_links:
            topics |= apply_links(conn, commit, now)
    return lost, pausing, topics


def _apply_outcome(
    conn: sqlite3.Connection, run_id: str, outcome: Outcome | None, now: float
) -> None:
    match outcome:
        case None:
            pass
        case Suspend(wake_at=wake_at, signal_names=names, mailbox_version=seen):
            conn.execute(
                "UPDATE runs SET lease_owner = NULL, wait_signals = ?, updated_at = ?,"
                " status = CASE WHEN paused_reason IS NULL THEN 'WAITING' ELSE 'PAUSED' END,"
                " runnable_at = CASE WHEN paused_reason IS NOT NULL THEN NULL"
                "   WHEN mailbox_version <> ? THEN ? ELSE ? END"
                " WHERE id = ?",
                (json.dumps(list(names)), now, seen, now, wake_at, run_id),
            )
        case Finish(status=status, result=result, error=error):
            conn.execute(
                "UPDATE runs SET status = ?, result = ?, error = ?, lease_owner = NULL,"
                " runnable_at = NULL, wait_signals = NULL, updated_at = ? WHERE id = ?",
                (str(status), result, error, now, run_id),
            )
            # Nobody waits for the outcome of the run's external jobs any more.
            cancel_open_jobs(conn, run_id, None, now)
        case Park(reason=reason):
            conn.execute(
                "UPDATE runs SET status = 'WAITING', parked_reason = ?, lease_owner = NULL,"
                " runnable_at = NULL, updated_at = ? WHERE id = ?",
                (reason, now, run_id),
            )
        case Restart(args=args):
            conn.execute(
                "UPDATE runs SET args = ?, updated_at = ? WHERE id = ?", (args, now, run_id)
            )
        case Release():
            conn.execute(
                "UPDATE runs SET lease_owner = NULL, updated_at = ?,"
                " status = CASE WHEN paused_reason IS NULL THEN 'PENDING' ELSE 'PAUSED' END,"
                " runnable_at = CASE WHEN paused_reason IS NULL THEN ? END WHERE id = ?",
                (now, now, run_id),
            )


def _cancel(conn: sqlite3.Connection, run_id: str, now: float, topics: set[str]) -> None:
    """Apply ``cancel_action`` to one run inside the caller's transaction."""
    row = conn.execute(
        "SELECT status, lease_owner, parked_reason, epoch, parent_id FROM runs WHERE id = ?",
        (run_id,),
    ).fetchone()
    if row is None:
        raise RunNotFoundError(run_id)
    action = _rules.cancel_action(row[0], row[1], row[2], row[3])
    if action is not Cancel.NOTHING:
        topics |= _rules.cancelled_topics([run_id])
    if action is Cancel.END:
        cancel_open_jobs(conn, run_id, None, now)
        conn.execute(
            "UPDATE runs SET status = 'CANCELLED', error = ?, cancel_requested = 1,"
            " runnable_at = NULL, updated_at = ? WHERE id = ?",
            (_rules.ENDED_UNSTARTED.error, now, run_id),
        )
        if row[4] is not None:  # a child: its parent waits for its end
            topics.update(tell_parent(conn, row[4], run_id, _rules.ENDED_UNSTARTED, now))
    elif action is Cancel.REQUEST:
        conn.execute(
            "UPDATE runs SET cancel_requested = 1, mailbox_version = mailbox_version + 1,"
            " paused_reason = NULL,"
            " status = CASE WHEN status = 'PAUSED' THEN 'WAITING' ELSE status END,"
            " runnable_at = CASE WHEN lease_owner IS NULL THEN ? ELSE runnable_at END,"
            " updated_at = ? WHERE id = ?",
            (now, now, run_id),
        )
    topics.update(cancel_descendants(conn, run_id, now))


def where_clause(
    conditions: list[tuple[str, tuple[object, ...]]],
) -> tuple[str, tuple[object, ...]]:
    """A WHERE clause with ``?`` parameters for ``query_conditions``, and its values."""
    parts = [template.format(*("?" * len(args))) for template, args in conditions]
    values = tuple(value for _, args in conditions for value in args)
    return (f"WHERE {' AND '.join(parts)}" if parts else ""), values
