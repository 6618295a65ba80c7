"""SQLite statements of the worker registry (``WorkerStore``): one row per live worker,
and each worker's liveness lock, an OS file lock (``flock``) beside the database file."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence

from . import _rules
from ._notify import WORK
from ._sqlite_db import SqliteDb
from ._workers import WORKER_COLUMNS, WorkerInfo, WorkerRecord, worker_from_row


def lock_path(db_path: str, worker_id: str) -> str:
    """The file whose lock says ``worker_id`` lives: ``<database>-workers/<hash>.lock``."""
    name = hashlib.sha256(worker_id.encode()).hexdigest()[:32]
    return os.path.join(f"{db_path}-workers", f"{name}.lock")


_MISSING = -1
"""What ``_lock`` answers for a lock file that does not exist (nobody holds it)."""


def _lock(path: str, *, create: bool) -> int | None:
    """The lock file ``path`` opened with its lock taken, None when someone holds it;
    ``_MISSING`` when it does not exist and ``create`` is false. A file removed between
    its opening and its locking (its worker stopped, or a peer took it over) is opened
    again: a lock on a removed file would tell nobody anything."""
    while True:
        try:
            fd = _open(path) if create else os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return _MISSING
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if _names(path, fd):
            return fd
        os.close(fd)


def _open(path: str) -> int:
    """Open the lock file ``path``, creating it and its folder as needed."""
    while True:
        with contextlib.suppress(FileExistsError):
            os.mkdir(os.path.dirname(path))  # beside the database file, whose folder exists
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            continue  # a stopping peer found the folder empty and removed it meanwhile


def _names(path: str, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    was = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (was.st_dev, was.st_ino)


def _remove(path: str) -> None:
    """Remove a lock file whose lock is held, then its folder if that is empty now."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    with contextlib.suppress(OSError):  # not empty (a live worker's file), or gone already
        os.rmdir(os.path.dirname(path))


@contextlib.contextmanager
def _if_free(path: str) -> Iterator[bool]:
    """Whether nobody holds the lock of ``path`` (a missing file is free); a free lock is
    held for the block, so its worker cannot take it meanwhile."""
    fd = _lock(path, create=False)
    try:
        yield fd is not None
    finally:
        if fd is not None and fd != _MISSING:
            os.close(fd)  # lets go of the lock


class SqliteWorkers:
    """The worker registry on SQLite."""

    def __init__(self, db: SqliteDb) -> None:
        self._db = db
        self._write = db.write
        self._read = db.read

    async def register_worker(self, worker: WorkerInfo) -> None:
        def upsert(conn: sqlite3.Connection, now: float) -> None:
            conn.execute(  # holds_lock: its liveness lock is taken first (migration 0015)
                f"INSERT INTO workers ({WORKER_COLUMNS}, holds_lock)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                " queues = excluded.queues, version = excluded.version,"
                " workflows = excluded.workflows, stale_after = excluded.stale_after,"
                " heartbeat_at = excluded.heartbeat_at, holds_lock = 1",
                (
                    worker.id,
                    worker.host,
                    worker.pid,
                    json.dumps(list(worker.queues)),
                    worker.version,
                    worker.known(),
                    worker.stale_after,
                    now,
                    now,
                ),
            )

        await self._write("register worker", upsert)

    async def heartbeat_worker(self, worker_id: str) -> bool:
        def touch(conn: sqlite3.Connection, now: float) -> bool:
            sql = "UPDATE workers SET heartbeat_at = ? WHERE id = ?"
            return conn.execute(sql, (now, worker_id)).rowcount > 0

        return await self._write("worker heartbeat", touch)

    async def unregister_worker(self, worker_id: str) -> None:
        def delete(conn: sqlite3.Connection, _now: float) -> None:
            conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

        await self._write("unregister worker", delete)

    async def list_workers(self) -> list[WorkerRecord]:
        def select(conn: sqlite3.Connection, now: float) -> list[WorkerRecord]:
            sql = f"SELECT {WORKER_COLUMNS} FROM workers ORDER BY started_at, id"
            rows = conn.execute(sql).fetchall()
            return [worker_from_row(r, _rules.worker_live(r[8], r[6], now)) for r in rows]

        return await self._read("list workers", select)

    def liveness_lock(self, worker_id: str) -> SqliteLivenessLock:
        return SqliteLivenessLock(self._db, worker_id)

    async def take_over(self, worker_ids: Sequence[str]) -> dict[str, int]:
        if not worker_ids:
            return {}
        path = self._db.path

        def take(conn: sqlite3.Connection, now: float) -> dict[str, int]:
            taken: dict[str, int] = {}
            for worker_id in worker_ids:
                lock = lock_path(path, worker_id)
                with _if_free(lock) as free:
                    if not free:
                        continue
                    gone = conn.execute(
                        "DELETE FROM workers WHERE id = ? AND holds_lock", (worker_id,)
                    )
                    if gone.rowcount == 0:
                        continue  # taken over by another peer first, or an old row
                    taken[worker_id] = conn.execute(
                        "UPDATE runs SET runnable_at = ? WHERE lease_owner = ? AND runnable_at > ?",
                        (_rules.TAKEN_OVER_AT, worker_id, now),
                    ).rowcount
                    _remove(lock)
            return taken

        taken = await self._write("take over dead workers", take)
        if any(taken.values()):
            self._db.notify([WORK])
        return taken


class SqliteLivenessLock:
    """A worker's ``flock`` on its file beside the database; the kernel lets it go when
    the process dies. It is never lost while the process lives."""

    def __init__(self, db: SqliteDb, worker_id: str) -> None:
        self._db = db
        self._id = worker_id
        self._path = lock_path(db.path, worker_id)
        self._fd: int | None = None

    async def acquire(self, on_lost: Callable[[], None]) -> bool:
        if self._fd is not None:
            return True
        self._fd = _lock(self._path, create=True)
        return self._fd is not None

    def held(self) -> bool:
        return self._fd is not None

    async def dead_peers(self) -> list[str]:
        path, own = self._db.path, self._id

        def find(conn: sqlite3.Connection, _now: float) -> list[str]:
            # a row without holds_lock is a worker of a version without liveness locks:
            # its lock is always free, so only its leases tell (a rolling upgrade)
            sql = "SELECT id FROM workers WHERE id <> ? AND holds_lock"
            ids = [r[0] for r in conn.execute(sql, (own,))]
            dead = []
            for worker_id in ids:
                with _if_free(lock_path(path, worker_id)) as free:
                    if free:
                        dead.append(worker_id)
            return dead

        return await self._db.read("look for dead workers", find)

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            _remove(self._path)  # under the lock: whoever opened the file meanwhile opens again
            os.close(fd)
