"""SQLite statements of the worker registry (``WorkerStore``): one row per live worker."""

from __future__ import annotations

import json
import sqlite3

from . import _rules
from ._sqlite_db import SqliteDb
from ._workers import WORKER_COLUMNS, WorkerInfo, WorkerRecord, worker_from_row


class SqliteWorkers:
    """The worker registry on SQLite."""

    def __init__(self, db: SqliteDb) -> None:
        self._write = db.write
        self._read = db.read

    async def register_worker(self, worker: WorkerInfo) -> None:
        def upsert(conn: sqlite3.Connection, now: float) -> None:
            conn.execute(
                f"INSERT INTO workers ({WORKER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                " queues = excluded.queues, version = excluded.version,"
                " workflows = excluded.workflows, stale_after = excluded.stale_after,"
                " heartbeat_at = excluded.heartbeat_at",
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
