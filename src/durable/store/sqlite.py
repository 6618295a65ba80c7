"""The embedded store: SQLite through the stdlib driver, run in worker threads by anyio.

One writer connection (every write is a ``BEGIN IMMEDIATE`` transaction, so processes
sharing the file serialize) and one reader connection (WAL lets reads run beside
writes): ``_sqlite_db``. Journal commits from concurrent runs are grouped into one
transaction (``_sqlite_runs``). ``synchronous=FULL`` by default: a committed step
survives power loss, not just a crashed process (``?synchronous=normal`` in the DSN
trades that for speed). Every time the store writes or compares is the App's clock.
"""

from __future__ import annotations

from .. import _clock
from ._composed import Composed
from ._sqlite_admin import SqliteAdmin
from ._sqlite_control import SqliteControl
from ._sqlite_db import SqliteDb
from ._sqlite_diagnosis import SqliteDiagnosis
from ._sqlite_flows import SqliteFlows
from ._sqlite_queues import SqliteQueues
from ._sqlite_retention import SqliteRetention
from ._sqlite_runs import SqliteRuns
from ._sqlite_schedules import SqliteSchedules
from ._sqlite_workers import SqliteWorkers


class SqliteStore(Composed):
    """A Store on one SQLite file: one object per record family over one ``SqliteDb``."""

    def __init__(
        self, path: str, *, synchronous: str = "FULL", clock: _clock.Clock = _clock.REAL
    ) -> None:
        self._db = db = SqliteDb(path, synchronous=synchronous, clock=clock)
        self.path = db.path
        self.location = f"sqlite:///{db.path}"
        self._runs = SqliteRuns(db)
        super().__init__(
            runs=self._runs,
            queues=SqliteQueues(db),
            flows=SqliteFlows(db),
            schedules=SqliteSchedules(db),
            admin=SqliteAdmin(db),
            workers=SqliteWorkers(db),
            control=SqliteControl(db),
            diagnosis=SqliteDiagnosis(db),
            retention=SqliteRetention(db),
            notifications=db,
        )

    @property
    def clock(self) -> _clock.Clock:
        """Where store calls read the time: the App's clock."""
        return self._db.clock

    @clock.setter
    def clock(self, clock: _clock.Clock) -> None:
        self._db.clock = clock

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._runs.close()
        await self._db.close()
