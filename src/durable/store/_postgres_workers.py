"""Postgres statements of the worker registry (``WorkerStore``): one row per live worker,
and each worker's liveness lock, a session advisory lock on a connection of its own."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import asyncpg

from ..errors import StoreError
from . import _rules
from ._notify import WORK
from ._postgres_db import DRIVER_ERRORS, NOW, PostgresDb
from ._workers import WORKER_COLUMNS, WorkerInfo, WorkerRecord, worker_from_row

# holds_lock: this worker took its liveness lock before registering (migration 0015).
_REGISTER = f"""
INSERT INTO workers ({WORKER_COLUMNS}, holds_lock)
SELECT $1, $2, $3, $4, $5, $6, $7, n.t, n.t, true FROM (SELECT {NOW} AS t) n
ON CONFLICT (id) DO UPDATE SET host = $2, pid = $3, queues = $4, version = $5,
    workflows = $6, stale_after = $7, heartbeat_at = excluded.heartbeat_at, holds_lock = true
"""

# A worker's lock key: $1 the schema's prefix, then its id (every schema has its own).
_KEY = "hashtextextended($1 || {id}, 0)"

# Registered workers whose lock is free: a transaction-scoped try, let go when the
# statement ends. The table holds one row per worker process, so this reads a few rows.
# A row without holds_lock is a worker of a version without liveness locks: its lock is
# always free, so only its leases tell (a rolling upgrade).
_DEAD_PEERS = f"""
SELECT id FROM workers
WHERE id <> $2 AND holds_lock AND pg_try_advisory_xact_lock({_KEY.format(id="id")})
"""

# The lock of each worker taken over is held until this commits: the worker cannot take
# it again meanwhile, and two peers taking it over at once free its runs once. Its runs
# are found through runs_queue_leased (only runs under a lease are in it).
_TAKE_OVER = f"""
WITH dead AS MATERIALIZED (
    SELECT id FROM workers
    WHERE id = ANY($2::text[]) AND holds_lock AND pg_try_advisory_xact_lock({_KEY.format(id="id")})
), freed AS (
    UPDATE runs SET runnable_at = {_rules.TAKEN_OVER_AT}
    WHERE lease_owner IS NOT NULL AND lease_owner IN (SELECT id FROM dead)
        AND runnable_at > {NOW}
    RETURNING lease_owner
), gone AS (
    DELETE FROM workers WHERE id IN (SELECT id FROM dead)
)
SELECT d.id, (SELECT count(*) FROM freed f WHERE f.lease_owner = d.id) FROM dead d
"""


class PostgresWorkers:
    """The worker registry on Postgres."""

    def __init__(self, db: PostgresDb) -> None:
        self._db = db
        self._conn = db.conn
        self._prefix = f"durable-worker:{db.schema}:"

    async def register_worker(self, worker: WorkerInfo) -> None:
        args = (worker.host, worker.pid, json.dumps(list(worker.queues)), worker.version)
        async with self._conn("register worker") as conn:
            await conn.execute(_REGISTER, worker.id, *args, worker.known(), worker.stale_after)

    async def heartbeat_worker(self, worker_id: str) -> bool:
        async with self._conn("worker heartbeat") as conn:
            result = await conn.execute(
                f"UPDATE workers SET heartbeat_at = {NOW} WHERE id = $1", worker_id
            )
        return bool(result != "UPDATE 0")

    async def unregister_worker(self, worker_id: str) -> None:
        async with self._conn("unregister worker") as conn:
            await conn.execute("DELETE FROM workers WHERE id = $1", worker_id)

    async def list_workers(self) -> list[WorkerRecord]:
        async with self._conn("list workers") as conn:
            rows = await conn.fetch(
                f"SELECT {WORKER_COLUMNS}, ({NOW})::float8 FROM workers ORDER BY started_at, id"
            )
        return [worker_from_row(r, _rules.worker_live(r[8], r[6], r[9])) for r in rows]

    def liveness_lock(self, worker_id: str) -> PostgresLivenessLock:
        return PostgresLivenessLock(self._db, self._prefix, worker_id)

    async def take_over(self, worker_ids: Sequence[str]) -> dict[str, int]:
        if not worker_ids:
            return {}
        async with self._conn("take over dead workers") as conn, conn.transaction():
            rows = await conn.fetch(_TAKE_OVER, self._prefix, list(worker_ids))
            taken = {row[0]: int(row[1]) for row in rows}
            if any(taken.values()):
                await self._db.notify(conn, WORK)
        return taken


class PostgresLivenessLock:
    """A worker's session advisory lock, on a connection outside the pool."""

    def __init__(self, db: PostgresDb, prefix: str, worker_id: str) -> None:
        self._db = db
        self._prefix = prefix
        self._id = worker_id
        self._conn: asyncpg.Connection | None = None
        self._held = False
        self._listener: Callable[[asyncpg.Connection], None] | None = None

    async def acquire(self, on_lost: Callable[[], None]) -> bool:
        if self._held and self._conn is not None and not self._conn.is_closed():
            return True
        self._held = False
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await self._connect()

                def closed(_: asyncpg.Connection) -> None:
                    self._held = False
                    on_lost()

                self._listener = closed
                self._conn.add_termination_listener(closed)
            key = _KEY.format(id="$2")
            got = await self._conn.fetchval(
                f"SELECT pg_try_advisory_lock({key})", self._prefix, self._id
            )
        except DRIVER_ERRORS as exc:
            raise StoreError(f"postgres: taking worker {self._id!r}'s lock failed: {exc}") from exc
        self._held = bool(got)
        return self._held

    async def _connect(self) -> asyncpg.Connection:
        settings = {
            "search_path": self._db.schema,
            # pg_stat_activity shows whose lock a connection holds
            "application_name": f"durable-worker {self._id}"[:63],
        }
        return await asyncpg.connect(self._db.dsn, server_settings=settings, timeout=10)

    def held(self) -> bool:
        return self._held and self._conn is not None and not self._conn.is_closed()

    async def dead_peers(self) -> list[str]:
        conn = self._conn
        if conn is None or conn.is_closed():
            raise StoreError(f"postgres: worker {self._id!r} has no lock connection")
        try:
            rows = await conn.fetch(_DEAD_PEERS, self._prefix, self._id, timeout=5)
        except DRIVER_ERRORS as exc:
            self._held = False
            conn.terminate()  # a half-open connection: the server may still hold the lock
            raise StoreError(f"postgres: looking for dead workers failed: {exc}") from exc
        return [row[0] for row in rows]

    async def release(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None and self._listener is not None:
            conn.remove_termination_listener(self._listener)
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=5)  # the session's end lets the lock go
            except DRIVER_ERRORS:
                conn.terminate()
