"""Persistence: the Store protocol, its records, and the SQLite and Postgres backends.

Nothing outside this package writes SQL. The layout:

- ``_records``: what a store reads and writes (runs, journal entries, commits, jobs...);
- ``_protocol``: the ``Store`` protocol, composed of one protocol per role;
- ``_rules``: the decisions both backends make (cancellation, links between runs, job
  calls, wake-ups, queue room), written once; the backends only run statements;
- ``sqlite`` and ``postgres``: the backends, each a connection holder (``_sqlite_db``,
  ``_postgres_db``) and one object per record family (``_<backend>_runs``, ``_queues``,
  ``_flows``, ``_schedules``, ``_admin``), bound into one store by ``_composed``.

``open_store`` picks the backend from the DSN's scheme and imports it lazily.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from .. import _clock
from ..errors import ConfigurationError
from ._admin import FleetMetrics, JobQueue, StepDurations, StepLatency
from ._diagnosis import Diagnosis, WaitingJob
from ._notify import JOBS, SCHEDULES, WORK, Subscription, event_topic, queue_topic, run_topic
from ._protocol import (
    AdminStore,
    DiagnosisStore,
    FlowStore,
    Notifications,
    QueueStore,
    RetentionStore,
    RunStore,
    ScheduleStore,
    Store,
    WorkerStore,
)
from ._records import (
    TERMINAL,
    ChildStart,
    Commit,
    DefinitionRecord,
    Fence,
    Finish,
    Firing,
    ForkStart,
    JobAnswer,
    JobRecord,
    JournalEntry,
    LeaseState,
    Outcome,
    Park,
    Planner,
    QueueClaim,
    Release,
    Restart,
    RunQuery,
    RunRecord,
    ScheduleRecord,
    SignalRecord,
    SlotGrant,
    Suspend,
)
from ._workers import WorkerInfo, WorkerRecord

DEFAULT_DSN = "sqlite:///durable.db"


def resolve_dsn(dsn: str | None) -> str:
    """The DSN to use: the argument, else ``$DURABLE_DSN``, else ``durable.db`` here."""
    return dsn or os.environ.get("DURABLE_DSN") or DEFAULT_DSN


def open_store(dsn: str, *, clock: _clock.Clock | None = None) -> Store:
    """A (not yet opened) store for a DSN.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (add
    ``?synchronous=normal`` to trade power-loss durability for speed), or
    ``postgresql://user@host:port/database`` (add ``?schema=name`` to use a schema other
    than ``durable``). ``clock`` is the App's clock, where the SQLite store reads every
    time; Postgres compares times with the database server's clock.
    """
    parts = urlsplit(dsn)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ConfigurationError(f"the SQLite DSN {dsn!r} names no file")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ConfigurationError(f"unknown SQLite DSN option(s): {', '.join(sorted(unknown))}")
        synchronous = options.get("synchronous", "FULL")
        return SqliteStore(path, synchronous=synchronous, clock=clock or _clock.REAL)
    if scheme in ("postgres", "postgresql"):
        from .postgres import PostgresStore

        return PostgresStore(dsn)
    raise ConfigurationError(
        f"unsupported DSN {dsn!r}: use sqlite:///path.db or postgresql://host/database"
    )


__all__ = [
    "DEFAULT_DSN",
    "JOBS",
    "SCHEDULES",
    "TERMINAL",
    "WORK",
    "AdminStore",
    "ChildStart",
    "Commit",
    "DefinitionRecord",
    "Diagnosis",
    "DiagnosisStore",
    "Fence",
    "Finish",
    "Firing",
    "FleetMetrics",
    "FlowStore",
    "ForkStart",
    "JobAnswer",
    "JobQueue",
    "JobRecord",
    "JournalEntry",
    "LeaseState",
    "Notifications",
    "Outcome",
    "Park",
    "Planner",
    "QueueClaim",
    "QueueStore",
    "Release",
    "Restart",
    "RetentionStore",
    "RunQuery",
    "RunRecord",
    "RunStore",
    "ScheduleRecord",
    "ScheduleStore",
    "SignalRecord",
    "SlotGrant",
    "StepDurations",
    "StepLatency",
    "Store",
    "Subscription",
    "Suspend",
    "WaitingJob",
    "WorkerInfo",
    "WorkerRecord",
    "WorkerStore",
    "event_topic",
    "open_store",
    "queue_topic",
    "resolve_dsn",
    "run_topic",
]
