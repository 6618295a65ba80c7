"""The production store: Postgres through asyncpg.

A connection pool serves every query (asyncpg prepares and caches each statement per
connection); one more connection LISTENs, so a started run, a signal or a finished run
wakes idle workers and waiting clients in every process at once (``_postgres_db``).
Claims take runnable runs with ``FOR UPDATE SKIP LOCKED``, several per round trip
(``_postgres_queues``). Every journal write is a single statement fenced by the run's
epoch (``_postgres_runs``), and commits of many runs share statements
(``_postgres_batch``). Times are seconds since the epoch by the server's clock.
"""

from __future__ import annotations

from ._composed import Composed
from ._postgres_admin import PostgresAdmin
from ._postgres_control import PostgresControl
from ._postgres_db import PostgresDb, parse_dsn, safe_dsn
from ._postgres_diagnosis import PostgresDiagnosis
from ._postgres_flows import PostgresFlows
from ._postgres_queues import PostgresQueues
from ._postgres_retention import PostgresRetention
from ._postgres_runs import PostgresRuns
from ._postgres_schedules import PostgresSchedules
from ._postgres_workers import PostgresWorkers


class PostgresStore(Composed):
    """A Store on a Postgres database: one object per record family over one pool."""

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self._db = db = PostgresDb(dsn, pool_size=pool_size)
        self.schema = db.schema
        self.location = safe_dsn(dsn)
        self._runs = PostgresRuns(db)
        super().__init__(
            runs=self._runs,
            queues=PostgresQueues(db),
            flows=PostgresFlows(db),
            schedules=PostgresSchedules(db),
            admin=PostgresAdmin(db),
            workers=PostgresWorkers(db),
            control=PostgresControl(db),
            diagnosis=PostgresDiagnosis(db),
            retention=PostgresRetention(db),
            notifications=db,
        )

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._runs.close()
        await self._db.close()


__all__ = ["PostgresStore", "parse_dsn"]
