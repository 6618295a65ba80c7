"""Postgres statements of the worker registry (``WorkerStore``): one row per live worker."""

from __future__ import annotations

import json

from . import _rules
from ._postgres_db import NOW, PostgresDb
from ._workers import WORKER_COLUMNS, WorkerInfo, WorkerRecord, worker_from_row

_REGISTER = f"""
INSERT INTO workers ({WORKER_COLUMNS})
SELECT $1, $2, $3, $4, $5, $6, $7, n.t, n.t FROM (SELECT {NOW} AS t) n
ON CONFLICT (id) DO UPDATE SET host = $2, pid = $3, queues = $4, version = $5,
    workflows = $6, stale_after = $7, heartbeat_at = excluded.heartbeat_at
"""


class PostgresWorkers:
    """The worker registry on Postgres."""

    def __init__(self, db: PostgresDb) -> None:
        self._conn = db.conn

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
