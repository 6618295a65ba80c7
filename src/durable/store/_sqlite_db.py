"""The SQLite connection holder: two connections, their threads, migrations, the clock.

One writer connection (every write is a ``BEGIN IMMEDIATE`` transaction, so processes
sharing the file serialize) and one reader connection (WAL lets reads run beside
writes), each used by one worker thread at a time. Every record family of the SQLite
store (``_sqlite_runs``, ``_sqlite_queues``, ``_sqlite_flows``, ``_sqlite_schedules``,
``_sqlite_admin``) takes one ``SqliteDb`` and runs its queries through ``write`` and
``read``.

Every "now" of the store is the App's clock (``clock``), read once per call in the
thread that runs it and handed to the call: a virtual clock (``durable.testing``) moves
the store's time with the executor's and the worker's.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

import anyio
import anyio.to_thread

from .. import _clock
from ..errors import ConfigurationError, StoreError
from . import _migrate
from ._notify import Notifier, Subscription

T = TypeVar("T")

Call = Callable[[sqlite3.Connection, float], T]
"""A store call's body: it runs in a worker thread with a connection and the clock's now."""

_hubs: dict[str, Notifier] = {}
_hubs_lock = threading.Lock()


def _hub(path: str) -> Notifier:
    """One notifier per database file, shared by every store of this process."""
    with _hubs_lock:
        return _hubs.setdefault(path, Notifier())


def fold(text: str | None) -> str | None:
    """Lower-case for keyword search (SQLite's own ``lower`` knows ASCII only)."""
    return None if text is None else text.lower()


class SqliteDb:
    """The connections of one database file, and the notifications of its stores."""

    def __init__(self, path: str, *, synchronous: str = "FULL", clock: _clock.Clock) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigurationError(
                f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}"
            )
        if path == ":memory:":
            raise ConfigurationError("an in-memory SQLite database cannot be shared; use a file")
        self.path = os.path.realpath(path)
        self.clock = clock
        """Where store calls read the time (``durable.testing`` sets a virtual clock)."""
        self.notifier = _hub(self.path)
        self._synchronous = synchronous.upper()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_limiter = anyio.CapacityLimiter(1)
        self._read_limiter = anyio.CapacityLimiter(1)

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
        def shut() -> None:
            for conn in (self._writer, self._reader):
                if conn is not None:
                    conn.close()
            self._writer = self._reader = None

        # Holding both limiters waits out calls still running in threads.
        async with self._read_limiter:
            await anyio.to_thread.run_sync(shut, limiter=self._write_limiter)

    @staticmethod
    def _migrate(conn: sqlite3.Connection, now: float) -> None:
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
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, now))

    def _tx(self, fn: Call[T]) -> T:
        """``fn`` in one write transaction; now is read once the database lock is held."""
        conn = self._writer
        assert conn is not None, "store is not open"
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, self.clock.now())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

    def _on_reader(self, fn: Call[T]) -> T:
        assert self._reader is not None, "store is not open"
        return fn(self._reader, self.clock.now())

    async def write(self, what: str, fn: Call[T]) -> T:
        """Run ``fn`` in a write transaction in the writer's thread."""
        return await self._in_thread(what, self._write_limiter, self._tx, fn)

    async def read(self, what: str, fn: Call[T]) -> T:
        """Run ``fn`` on the reader connection in its thread."""
        return await self._in_thread(what, self._read_limiter, self._on_reader, fn)

    async def _in_thread(
        self,
        what: str,
        limiter: anyio.CapacityLimiter,
        call: Callable[[Call[T]], T],
        fn: Call[T],
    ) -> T:
        """Run ``call(fn)`` in a worker thread, one at a time per connection.

        The thread runs in a task of its own: cancelling the caller (a worker stopping)
        must not release the connection while its transaction is still in the thread.
        Under a virtual clock the call counts as busy until its caller has the answer.
        """
        task = asyncio.ensure_future(anyio.to_thread.run_sync(call, fn, limiter=limiter))
        try:
            clock = self.clock
            if isinstance(clock, _clock.VirtualClock):
                return await clock.track(asyncio.shield(task))
            return await asyncio.shield(task)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {what} failed: {exc}") from exc

    def notify(self, topics: Iterable[str]) -> None:
        """Wake subscribers of ``topics`` (in this process: the file has no other channel)."""
        for topic in topics:
            self.notifier.notify(topic)

    async def publish(self, *topics: str) -> None:
        self.notify(topics)

    def subscribe(self, topic: str) -> Subscription:
        return self.notifier.subscribe(topic)
