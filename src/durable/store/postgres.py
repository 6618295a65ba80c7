"""The production store: Postgres through asyncpg.

A connection pool serves every query (asyncpg prepares and caches each statement per
connection); one more connection LISTENs, so a started run, a signal or a finished run
wakes idle workers and waiting clients in every process at once. Claims take runnable
runs with ``FOR UPDATE SKIP LOCKED``, several per round trip. Every journal write is a
single statement whose first step updates the run's row *only if* the writer's epoch is
still the run's epoch: that row lock serializes the write with any takeover, and a
fenced-out writer inserts nothing.

Tables live in their own schema (``durable`` unless the DSN says ``?schema=name``).
Migrations run under an advisory lock, so many processes starting at once migrate once.
Times are seconds since the epoch by the server's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from ..errors import ConfigurationError, RunClosedError, RunNotFoundError, StoreError
from ..info import Status
from . import _migrate
from ._notify import JOBS, WORK, Notifier, Subscription, run_topic
from ._postgres_admin import PostgresAdmin
from ._postgres_batch import CommitBatcher, batchable
from ._postgres_flows import CANCEL_OPEN_JOBS, PostgresFlows, has_signal, insert_signal
from ._postgres_links import (
    PostgresLinks,
    apply_links,
    cancel_descendants,
    lock_parent,
    tell_parent,
)
from ._postgres_queues import PostgresQueues
from ._postgres_schedules import PostgresSchedules
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

log = logging.getLogger("durable.store")

NOW = "extract(epoch from clock_timestamp())"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)

_RENEW = f"""
UPDATE runs r SET runnable_at = {NOW} + $3
FROM unnest($1::text[], $2::int[]) AS f(id, epoch)
WHERE r.id = f.id AND r.epoch = f.epoch AND r.lease_owner = $4 AND r.runnable_at > {NOW}
RETURNING r.id, r.mailbox_version, r.cancel_requested
"""

# The first CTE is the fence: it locks the run's row and matches only under the writer's
# epoch; the journal rows and signal consumption happen only if it matched.
_COMMIT = """
WITH fence AS (
    UPDATE runs SET updated_at = {now}{outcome}
    WHERE id = $1 AND epoch = $2 AND lease_owner IS NOT NULL
    RETURNING id
), entries AS (
    INSERT INTO journal (run_id, pos, seq, event, kind, name, fingerprint, payload, created_at)
    SELECT $1, e.* FROM unnest($3::int[], $4::int[], $5::text[], $6::text[], $7::text[],
                               $8::text[], $9::text[], $10::float8[]) AS e
    WHERE EXISTS (SELECT 1 FROM fence)
), consumed AS (
    UPDATE signals s SET consumed_seq = c.seq
    FROM unnest($11::bigint[], $12::int[]) AS c(id, seq)
    WHERE s.id = c.id AND s.run_id = $1 AND EXISTS (SELECT 1 FROM fence)
){jobs}
SELECT count(*) FROM fence
"""

# Only a commit that finishes its run adds this: nobody waits for the outcome of the
# run's external jobs any more. The fence has locked the run's row first.
_FINISH_JOBS = f""", cancelled_jobs AS (
    {CANCEL_OPEN_JOBS.strip()} AND EXISTS (SELECT 1 FROM fence)
)"""

_OUTCOMES = {
    type(None): "",
    Suspend: (
        ", status = 'WAITING', lease_owner = NULL, wait_signals = $13::text[],"
        # A cancel request bumps the mailbox version too: a cancelled run that cleans
        # up with a durable wait sleeps like any other, instead of waking at once.
        # The wake-up is sent as a delay and added to the server's clock: a worker whose
        # clock is off from the server's does not wake its runs early (and loop) or late.
        f" runnable_at = CASE WHEN mailbox_version <> $14 THEN {NOW}"
        f" ELSE {NOW} + $15::float8 END"
    ),
    Finish: (
        ", status = $13, result = $14, error = $15, lease_owner = NULL, runnable_at = NULL,"
        " wait_signals = NULL"
    ),
    Park: ", status = 'WAITING', parked_reason = $13, lease_owner = NULL, runnable_at = NULL",
    Release: f", status = 'PENDING', lease_owner = NULL, runnable_at = {NOW}",
    Restart: ", args = $13",
}


def parse_dsn(dsn: str) -> tuple[str, str]:
    """The DSN for asyncpg and the schema named by its ``schema`` option."""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query)
    schema = next((v for k, v in query if k == "schema"), "durable")
    if not _IDENTIFIER.match(schema):
        raise ConfigurationError(f"schema must be a plain SQL identifier, got {schema!r}")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, rest, parts.fragment)), schema


class PostgresStore(PostgresFlows, PostgresAdmin, PostgresLinks, PostgresSchedules, PostgresQueues):
    """A Store on a Postgres database (definitions and jobs: ``_postgres_flows``; the
    claim and queues: ``_postgres_queues``)."""

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self._dsn, self.schema = parse_dsn(dsn)
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._channel = f"durable_{self.schema}"
        self._lock_key = f"durable-migrations:{self.schema}"
        self._notifier = Notifier()
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._batcher = CommitBatcher(self._conn, self._channel, self._notifier, self._commit_one)

    # -- plumbing -------------------------------------------------------------------
    async def open(self) -> None:
        settings = {"search_path": self.schema, "application_name": "durable"}
        try:
            await self._migrate()
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._pool_size,
                server_settings=settings,
                reset=_keep_session,
            )
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"cannot open Postgres store at {_safe(self._dsn)}: {exc}") from exc
        self._listener = asyncio.create_task(self._listen(), name="durable-listen")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._listening.wait()

    async def close(self) -> None:
        await self._batcher.close()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _migrate(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            await conn.execute("SELECT pg_advisory_lock(hashtext($1))", self._lock_key)
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(f'SET search_path TO "{self.schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version integer PRIMARY KEY, applied_at double precision NOT NULL)"
            )
            applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, sql in _migrate.migrations("postgres"):
                if version in applied:
                    continue
                async with conn.transaction():
                    for stmt in _migrate.statements(sql):
                        await conn.execute(stmt)
                    await conn.execute(
                        "INSERT INTO schema_migrations VALUES ($1, $2)", version, time.time()
                    )
                log.info("schema %s: applied migration %04d", self.schema, version)
        finally:
            with contextlib.suppress(*_DRIVER_ERRORS):
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._lock_key)
            await conn.close()

    @contextlib.asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise StoreError(f"postgres: {what} failed: the store is not open")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"postgres: {what} failed: {exc}") from exc

    async def _listen(self) -> None:
        """Hold a LISTEN connection; reconnect with backoff when it drops."""
        delay = 0.1
        while True:
            try:
                conn = await asyncpg.connect(self._dsn)
            except _DRIVER_ERRORS as exc:
                log.warning("postgres listener: cannot connect (%s); retry in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                await conn.add_listener(self._channel, self._on_notification)
                self._listening.set()
                delay = 0.1
                # Something may have happened while deaf.
                self._notifier.notify(WORK)
                self._notifier.notify(JOBS)
                while True:  # a cheap liveness probe: a dropped server is noticed in seconds
                    await asyncio.sleep(2.0)
                    async with asyncio.timeout(5):
                        await conn.execute("SELECT 1")
            except _DRIVER_ERRORS as exc:
                log.warning("postgres listener: connection lost (%s); reconnecting", exc)
            finally:
                conn.terminate()

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._notifier.notify(payload)

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
        sql = f"""
            WITH ins AS (
                INSERT INTO runs (id, workflow, status, args, runnable_at, created_at, updated_at,
                    business_key, flow_version, queue, priority, trace_context)
                VALUES ($1, $2, 'PENDING', $3, {NOW}, {NOW}, {NOW}, $5, $6, $7, $8, $9)
                ON CONFLICT (id) DO NOTHING RETURNING {RUN_COLUMNS}
            )
            SELECT {RUN_COLUMNS}, pg_notify($4, 'work') FROM ins
        """
        args_ = (
            run_id,
            workflow,
            args,
            self._channel,
            business_key,
            flow_version,
            queue,
            priority,
            trace_context,
        )
        async with self._conn("create run") as conn:
            for _ in range(3):
                row = await conn.fetchrow(sql, *args_)
                if row is not None:
                    self._notifier.notify(WORK)
                    return run_from_row(row), True
                found = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = $1", run_id)
                if found is not None:
                    return run_from_row(found), False
        raise StoreError(f"postgres: create run {run_id!r} failed: it was inserted and removed")

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self._conn("get run") as conn:
            row = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = $1", run_id)
        return None if row is None else run_from_row(row)

    async def list_runs(
        self,
        *,
        status: Status | None,
        workflow: str | None,
        limit: int,
        business_key: str | None = None,
    ) -> list[RunRecord]:
        # Only the filters given become conditions, so each combination gets a plan that
        # uses its index (a prepared "$1 IS NULL OR ..." would hide that from the planner).
        filters = {
            "status": None if status is None else str(status),
            "workflow": workflow,
            "business_key": business_key,
        }
        where: list[str] = []
        params: list[object] = []
        for column, value in filters.items():
            if value is not None:
                params.append(value)
                where.append(f"{column} = ${len(params)}")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        params.append(limit)
        sql = (
            f"SELECT {RUN_COLUMNS} FROM runs {clause} ORDER BY created_at DESC LIMIT ${len(params)}"
        )
        async with self._conn("list runs") as conn:
            rows = await conn.fetch(sql, *params)
        return [run_from_row(r) for r in rows]

    async def read_journal(self, run_id: str) -> list[JournalEntry]:
        async with self._conn("read journal") as conn:
            rows = await conn.fetch(
                "SELECT pos, seq, event, kind, name, fingerprint, payload, created_at"
                " FROM journal WHERE run_id = $1 ORDER BY pos",
                run_id,
            )
        return [JournalEntry(*row) for row in rows]

    async def send_signal(
        self, run_id: str, name: str, payload: str, *, dedupe_key: str | None = None
    ) -> bool:
        async with self._conn("send signal") as conn, conn.transaction():
            status = await conn.fetchval("SELECT status FROM runs WHERE id = $1 FOR UPDATE", run_id)
            if status is None:
                raise RunNotFoundError(run_id)
            if Status(status) in TERMINAL:
                # A repeat of a signal the run received before it ended stays a no-op.
                if dedupe_key is not None and await has_signal(conn, run_id, dedupe_key):
                    return False
                raise RunClosedError(run_id, status)
            stored = await insert_signal(conn, run_id, name, payload, dedupe_key)
            if stored:
                await self._notify(conn, run_topic(run_id), WORK)
        return stored

    async def _notify(self, conn: asyncpg.Connection, *topics: str) -> None:
        for topic in topics:
            await conn.execute("SELECT pg_notify($1, $2)", self._channel, topic)
            self._notifier.notify(topic)

    async def request_cancel(self, run_id: str) -> RunRecord:
        async with self._conn("cancel run") as conn, conn.transaction():
            parent_id = await conn.fetchval("SELECT parent_id FROM runs WHERE id = $1", run_id)
            if parent_id is not None:  # rows are locked parent first, on every path
                await lock_parent(conn, parent_id)
            row = await conn.fetchrow(
                "SELECT status, lease_owner, parked_reason, epoch, parent_id FROM runs"
                " WHERE id = $1 FOR UPDATE",
                run_id,
            )
            if row is None:
                raise RunNotFoundError(run_id)
            status, owner, parked, epoch = Status(row[0]), row[1], row[2], row[3]
            if status in TERMINAL:
                pass
            elif owner is None and ((status is Status.PENDING and epoch == 0) or parked):
                # Never started, or parked (its code cannot replay): nothing to unwind, so
                # end it here. A run that started once replays to run its cleanup code.
                await conn.execute(CANCEL_OPEN_JOBS, run_id)
                await conn.execute(
                    "UPDATE runs SET status = 'CANCELLED', error = $2, cancel_requested = true,"
                    f" runnable_at = NULL, updated_at = {NOW} WHERE id = $1",
                    run_id,
                    CANCELLED_BEFORE_START,
                )
                if row[4] is not None:  # a child: its parent waits for its end
                    ended = Finish(Status.CANCELLED, error=CANCELLED_BEFORE_START)
                    told = await tell_parent(conn, row[4], run_id, ended)
                    await self._notify(conn, *sorted(told))
            else:
                await conn.execute(
                    "UPDATE runs SET cancel_requested = true,"
                    " mailbox_version = mailbox_version + 1,"
                    f" runnable_at = CASE WHEN lease_owner IS NULL THEN {NOW} ELSE runnable_at END,"
                    f" updated_at = {NOW} WHERE id = $1",
                    run_id,
                )
            descendants = await cancel_descendants(conn, run_id)
            await self._notify(conn, run_topic(run_id), WORK, *sorted(descendants - {WORK}))
            found = await conn.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = $1", run_id)
        return run_from_row(found)

    # -- worker operations ----------------------------------------------------------
    async def renew(
        self, owner: str, fences: list[Fence], lease_seconds: float
    ) -> dict[str, LeaseState]:
        ids = [f.run_id for f in fences]
        epochs = [f.epoch for f in fences]
        async with self._conn("renew leases") as conn:
            rows = await conn.fetch(_RENEW, ids, epochs, lease_seconds, owner)
        return {r[0]: LeaseState(r[1], r[2]) for r in rows}

    async def pending_signals(self, run_id: str, after_id: int) -> list[SignalRecord]:
        async with self._conn("read signals") as conn:
            rows = await conn.fetch(
                "SELECT id, name, payload FROM signals"
                " WHERE run_id = $1 AND consumed_seq IS NULL AND id > $2 ORDER BY id",
                run_id,
                after_id,
            )
        return [SignalRecord(*row) for row in rows]

    async def commit(self, commit: Commit) -> None:
        if batchable(commit):  # shares a statement with other runs' commits
            await self._batcher.submit(commit)
        else:
            await self._commit_one(commit)

    async def _commit_one(self, commit: Commit) -> None:
        outcome = commit.outcome
        jobs = _FINISH_JOBS if isinstance(outcome, Finish) else ""
        sql = _COMMIT.format(now=NOW, outcome=_OUTCOMES[type(outcome)], jobs=jobs)
        args: list[Any] = [commit.fence.run_id, commit.fence.epoch, *_columns(commit.entries)]
        args += [[s for s, _ in commit.consumed_signals], [q for _, q in commit.consumed_signals]]
        match outcome:
            case Suspend(wake_at=wake_at, signal_names=names, mailbox_version=seen):
                wake_in = None if wake_at is None else max(0.0, wake_at - time.time())
                args += [list(names), seen, wake_in]
            case Finish(status=status, result=result, error=error):
                args += [str(status), result, error]
            case Park(reason=reason):
                args += [reason]
            case Restart(args=new_args):
                args += [new_args]
        async with self._conn("commit") as conn:
            links: set[str] = set()
            if commit.has_links:
                async with conn.transaction():
                    if commit.parent_id is not None:
                        await lock_parent(conn, commit.parent_id)
                    held = await conn.fetchval(sql, *args)
                    if held:
                        links = await apply_links(conn, commit)
            else:
                held = await conn.fetchval(sql, *args)
            if not held:
                raise lease_lost(commit.fence.run_id)
            if outcome is not None or links:
                topics = {run_topic(commit.fence.run_id)} if outcome is not None else set()
                if isinstance(outcome, Release | Suspend):
                    topics.add(WORK)
                await self._notify(conn, *sorted(topics | links))

    async def unpark(self, workflows: Sequence[str] | None = None) -> int:
        sql = (
            f"UPDATE runs SET parked_reason = NULL, runnable_at = {NOW}, updated_at = {NOW}"
            " WHERE parked_reason IS NOT NULL"
            " AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"
        )
        args: list[Any] = []
        if workflows is not None:
            sql += " AND parked_reason LIKE $1 AND workflow = ANY($2::text[])"
            args = [UNKNOWN_WORKFLOW_LIKE, list(workflows)]
        async with self._conn("unpark runs") as conn:
            result = await conn.execute(sql, *args)
            count = int(result.split()[-1])
            if count:
                await self._notify(conn, WORK)
        return count


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Reset nothing when a connection goes back to the pool.

    asyncpg's default sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release: one more round trip per query. The store leaves no session state
    behind on pooled connections (no session advisory locks, cursors, LISTEN or SET; the
    migration lock and LISTEN have connections of their own), and asyncpg still rolls
    back a transaction left open before calling this.
    """


def _columns(entries: Sequence[JournalEntry]) -> list[list[Any]]:
    """Journal entries as one array per column, for ``unnest``."""
    return [
        [e.pos for e in entries],
        [e.seq for e in entries],
        [e.event for e in entries],
        [e.kind for e in entries],
        [e.name for e in entries],
        [e.fingerprint for e in entries],
        [e.payload for e in entries],
        [e.created_at for e in entries],
    ]


def _safe(dsn: str) -> str:
    """The DSN without its password, for messages."""
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    if len(netloc) == 2 and ":" in netloc[0]:
        user = netloc[0].split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))
    return dsn
