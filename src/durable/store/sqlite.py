"""The embedded store: SQLite through the stdlib driver, run in worker threads by anyio.

One writer connection (every write is a ``BEGIN IMMEDIATE`` transaction, so processes
sharing the file serialize) and one reader connection (WAL lets reads run beside
writes). Journal commits from concurrent runs are grouped into one transaction: while
one batch is being written the next one gathers, so a busy worker pays one fsync for
many steps. ``synchronous=FULL`` by default: a committed step survives power loss, not
just a crashed process (``?synchronous=normal`` in the DSN trades that for speed).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .. import _clock
from ..errors import (
    ConfigurationError,
    RunClosedError,
    RunNotFoundError,
    StoreError,
)
from ..info import Status
from . import _migrate
from ._notify import WORK, Notifier, Subscription, run_topic
from ._sqlite_admin import SqliteAdmin
from ._sqlite_flows import SqliteFlows, cancel_open_jobs, fold, has_signal, insert_signal
from ._sqlite_links import SqliteLinks, apply_links, cancel_descendants, tell_parent
from ._sqlite_queues import SqliteQueues
from ._sqlite_schedules import SqliteSchedules
from .base import (
    CANCELLED_BEFORE_START,
    RUN_COLUMNS,
    TERMINAL,
    UNKNOWN_WORKFLOW_LIKE,
    Commit,
    Fence,
    Finish,
    JournalEntry,
    LeaseState,
    Park,
    Release,
    Restart,
    RunRecord,
    SignalRecord,
    Suspend,
    lease_lost,
    run_from_row,
)

T = TypeVar("T")

_TERMINAL_SQL = "('COMPLETED', 'FAILED', 'CANCELLED')"

_hubs: dict[str, Notifier] = {}
_hubs_lock = threading.Lock()


def _hub(path: str) -> Notifier:
    """One notifier per database file, shared by every store of this process."""
    with _hubs_lock:
        return _hubs.setdefault(path, Notifier())


async def _in_thread(
    what: str,
    limiter: anyio.CapacityLimiter,
    call: Callable[[Callable[[sqlite3.Connection], T]], T],
    fn: Callable[[sqlite3.Connection], T],
) -> T:
    """Run ``call(fn)`` in a worker thread, one at a time per connection.

    The thread runs in a task of its own: cancelling the caller (a worker stopping)
    must not release the connection while its transaction is still in the thread.
    """
    task = asyncio.ensure_future(anyio.to_thread.run_sync(call, fn, limiter=limiter))
    try:
        return await asyncio.shield(task)
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite: {what} failed: {exc}") from exc


class SqliteStore(SqliteFlows, SqliteAdmin, SqliteLinks, SqliteSchedules, SqliteQueues):
    """A Store on one SQLite file (definitions and jobs: ``_sqlite_flows``; the claim and
    queues: ``_sqlite_queues``)."""

    def __init__(self, path: str, *, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigurationError(
                f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}"
            )
        self.path = os.path.realpath(path) if path != ":memory:" else path
        if path == ":memory:":
            raise ConfigurationError("an in-memory SQLite database cannot be shared; use a file")
        self._synchronous = synchronous.upper()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_limiter = anyio.CapacityLimiter(1)
        self._read_limiter = anyio.CapacityLimiter(1)
        self._pending: list[tuple[Commit, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._notifier = _hub(self.path)
        self.clock: _clock.Clock = _clock.REAL
        """Where store calls read the time (``durable.testing`` sets a virtual clock)."""

    # -- plumbing -------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=60000")
        conn.create_function("durable_fold", 1, fold, deterministic=True)
        return conn

    async def open(self) -> None:
        def setup() -> None:
            self._writer = self._connect()
            self._reader = self._connect()
            self._tx(self._migrate)

        try:
            await anyio.to_thread.run_sync(setup, limiter=self._write_limiter)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

        def shut() -> None:
            for conn in (self._writer, self._reader):
                if conn is not None:
                    conn.close()
            self._writer = self._reader = None

        # Holding both limiters waits out calls still running in threads.
        async with self._read_limiter:
            await anyio.to_thread.run_sync(shut, limiter=self._write_limiter)

    def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._writer
        assert conn is not None, "store is not open"
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

    async def _write(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self.clock.virtual:
            return await self._virtual(what, self._write_limiter, self._tx, fn)
        return await _in_thread(what, self._write_limiter, self._tx, fn)

    async def _virtual(
        self,
        what: str,
        limiter: anyio.CapacityLimiter,
        call: Callable[[Callable[[sqlite3.Connection], T]], T],
        fn: Callable[[sqlite3.Connection], T],
    ) -> T:
        """A store call under a virtual clock: it reads that clock and counts as busy."""
        clock = self.clock
        assert isinstance(clock, _clock.VirtualClock)
        return await clock.track(_in_thread(what, limiter, call, clock.bind(fn)))

    async def _read(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call(fn: Callable[[sqlite3.Connection], T]) -> T:
            assert self._reader is not None, "store is not open"
            return fn(self._reader)

        if self.clock.virtual:
            return await self._virtual(what, self._read_limiter, call, fn)
        return await _in_thread(what, self._read_limiter, call, fn)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        for version, sql in _migrate.migrations("sqlite"):
            if version in applied:
                continue
            for stmt in _migrate.statements(sql):
                conn.execute(stmt)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))

    def subscribe(self, topic: str) -> Subscription:
        return self._notifier.subscribe(topic)

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
    ) -> tuple[RunRecord, bool]:
        def insert(conn: sqlite3.Connection) -> tuple[RunRecord, bool]:
            now = _clock.now()
            values = (run_id, workflow, args, now, now, now, business_key, flow_version)
            cur = conn.execute(
                "INSERT INTO runs (id, workflow, status, args, runnable_at, created_at,"
                " updated_at, business_key, flow_version, queue, priority, trace_context)"
                " VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (*values, queue, priority, trace_context),
            )
            row = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            return run_from_row(row), cur.rowcount == 1

        run, created = await self._write("create run", insert)
        if created:
            self._notifier.notify(WORK)
        return run, created

    async def get_run(self, run_id: str) -> RunRecord | None:
        def select(conn: sqlite3.Connection) -> RunRecord | None:
            row = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            return None if row is None else run_from_row(row)

        return await self._read("get run", select)

    async def list_runs(
        self,
        *,
        status: Status | None,
        workflow: str | None,
        limit: int,
        business_key: str | None = None,
    ) -> list[RunRecord]:
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(str(status))
        if workflow is not None:
            where.append("workflow = ?")
            params.append(workflow)
        if business_key is not None:
            where.append("business_key = ?")
            params.append(business_key)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT {RUN_COLUMNS} FROM runs {clause} ORDER BY created_at DESC LIMIT ?"

        def select(conn: sqlite3.Connection) -> list[RunRecord]:
            return [run_from_row(r) for r in conn.execute(sql, (*params, limit))]

        return await self._read("list runs", select)

    async def read_journal(self, run_id: str) -> list[JournalEntry]:
        def select(conn: sqlite3.Connection) -> list[JournalEntry]:
            rows = conn.execute(
                "SELECT pos, seq, event, kind, name, fingerprint, payload, created_at "
                "FROM journal WHERE run_id = ? ORDER BY pos",
                (run_id,),
            )
            return [JournalEntry(*row) for row in rows]

        return await self._read("read journal", select)

    async def send_signal(
        self, run_id: str, name: str, payload: str, *, dedupe_key: str | None = None
    ) -> bool:
        def insert(conn: sqlite3.Connection) -> tuple[bool, bool]:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(run_id)
            if Status(row[0]) in TERMINAL:
                # A repeat of a signal the run received before it ended stays a no-op.
                if dedupe_key is not None and has_signal(conn, run_id, dedupe_key):
                    return False, False
                raise RunClosedError(run_id, row[0])
            return insert_signal(conn, run_id, name, payload, dedupe_key, _clock.now())

        stored, woke = await self._write("send signal", insert)
        if stored:
            self._notifier.notify(run_topic(run_id))
        if woke:
            self._notifier.notify(WORK)
        return stored

    async def request_cancel(self, run_id: str) -> RunRecord:
        def update(conn: sqlite3.Connection) -> RunRecord:
            row = conn.execute(
                "SELECT status, lease_owner, parked_reason, epoch, parent_id FROM runs"
                " WHERE id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                raise RunNotFoundError(run_id)
            status, owner, parked, epoch = Status(row[0]), row[1], row[2], row[3]
            now = _clock.now()
            if status in TERMINAL:
                pass
            elif owner is None and ((status is Status.PENDING and epoch == 0) or parked):
                # Never started, or parked (its code cannot replay): nothing to unwind, so
                # end it here. A run that started once replays to run its cleanup code.
                cancel_open_jobs(conn, run_id, None, now)
                conn.execute(
                    "UPDATE runs SET status = 'CANCELLED', error = ?, cancel_requested = 1,"
                    " runnable_at = NULL, updated_at = ? WHERE id = ?",
                    (CANCELLED_BEFORE_START, now, run_id),
                )
                if row[4] is not None:  # a child: its parent waits for its end
                    ended = Finish(Status.CANCELLED, error=CANCELLED_BEFORE_START)
                    topics.update(tell_parent(conn, row[4], run_id, ended, now))
            else:
                conn.execute(
                    "UPDATE runs SET cancel_requested = 1, mailbox_version = mailbox_version + 1,"
                    " runnable_at = CASE WHEN lease_owner IS NULL THEN ? ELSE runnable_at END,"
                    " updated_at = ? WHERE id = ?",
                    (now, now, run_id),
                )
            topics.update(cancel_descendants(conn, run_id, now))
            found = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
            return run_from_row(found.fetchone())

        topics: set[str] = {run_topic(run_id), WORK}
        run = await self._write("cancel run", update)
        for topic in topics:
            self._notifier.notify(topic)
        return run

    # -- worker operations ----------------------------------------------------------
    async def renew(
        self, owner: str, fences: list[Fence], lease_seconds: float
    ) -> dict[str, LeaseState]:
        def update(conn: sqlite3.Connection) -> dict[str, LeaseState]:
            now = _clock.now()
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
        def select(conn: sqlite3.Connection) -> list[SignalRecord]:
            rows = conn.execute(
                "SELECT id, name, payload FROM signals"
                " WHERE run_id = ? AND consumed_seq IS NULL AND id > ? ORDER BY id",
                (run_id, after_id),
            )
            return [SignalRecord(*row) for row in rows]

        return await self._read("read signals", select)

    async def commit(self, commit: Commit) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((commit, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        if isinstance(self.clock, _clock.VirtualClock):
            await self.clock.track(future)
        else:
            await future

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

    async def _write_batch(self, batch: list[tuple[Commit, asyncio.Future[None]]]) -> None:
        """Apply a batch in one transaction and settle its futures (raises if it fails)."""
        commits = [c for c, _ in batch]
        lost, topics = await self._write("commit", functools.partial(self._apply, commits=commits))
        for commit, future in batch:
            if future.done():
                continue
            if commit.fence.run_id in lost:
                future.set_exception(lease_lost(commit.fence.run_id))
            else:
                future.set_result(None)
        self._notify_outcomes(c for c in commits if c.fence.run_id not in lost)
        for topic in topics:
            self._notifier.notify(topic)

    def _notify_outcomes(self, commits: Any) -> None:
        work = False
        for commit in commits:
            if commit.outcome is not None:
                self._notifier.notify(run_topic(commit.fence.run_id))
                work = work or isinstance(commit.outcome, Suspend | Release)
        if work:
            self._notifier.notify(WORK)

    @staticmethod
    def _apply(conn: sqlite3.Connection, *, commits: list[Commit]) -> tuple[set[str], set[str]]:
        """Apply a batch of commits in one transaction.

        Returns the runs whose fence failed and the topics their links want notified.
        """
        lost: set[str] = set()
        topics: set[str] = set()
        now = _clock.now()
        for commit in commits:
            run_id, epoch = commit.fence.run_id, commit.fence.epoch
            row = conn.execute(
                "SELECT 1 FROM runs WHERE id = ? AND epoch = ? AND lease_owner IS NOT NULL",
                (run_id, epoch),
            ).fetchone()
            if row is None:
                lost.add(run_id)
                continue
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
            _apply_outcome(conn, run_id, commit.outcome, now)
            if commit.has_links:
                topics |= apply_links(conn, commit, now)
        return lost, topics

    async def unpark(self, workflows: Sequence[str] | None = None) -> int:
        def update(conn: sqlite3.Connection) -> int:
            now = _clock.now()
            sql = (
                "UPDATE runs SET parked_reason = NULL, runnable_at = ?, updated_at = ?"
                f" WHERE parked_reason IS NOT NULL AND status NOT IN {_TERMINAL_SQL}"
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


def _fail(batch: list[tuple[Commit, asyncio.Future[None]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


def _apply_outcome(
    conn: sqlite3.Connection,
    run_id: str,
    outcome: Suspend | Finish | Park | Release | Restart | None,
    now: float,
) -> None:
    match outcome:
        case None:
            pass
        case Suspend(wake_at=wake_at, signal_names=names, mailbox_version=seen):
            conn.execute(
                "UPDATE runs SET status = 'WAITING', lease_owner = NULL, wait_signals = ?,"
                " updated_at = ?, runnable_at = CASE"
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
                "UPDATE runs SET status = 'PENDING', lease_owner = NULL, runnable_at = ?,"
                " updated_at = ? WHERE id = ?",
                (now, now, run_id),
            )
