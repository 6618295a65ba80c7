"""The Postgres connection holder: the pool, migrations, the LISTEN connection, the clock.

Every record family of the Postgres store (``_postgres_runs``, ``_postgres_queues``,
``_postgres_flows``, ``_postgres_schedules``, ``_postgres_admin``) takes one
``PostgresDb`` and runs its queries through ``conn``. Tables live in their own schema
(``durable`` unless the DSN says ``?schema=name``). Migrations run under an advisory
lock, so many processes starting at once migrate once.

Times are seconds since the epoch by the database server's clock (``NOW``), so that
workers whose clocks disagree still agree on what is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from ..errors import ConfigurationError, StoreError
from . import _migrate
from ._notify import JOBS, WORK, Notifier, Subscription

log = logging.getLogger("durable.store")

NOW = "extract(epoch from clock_timestamp())"
"""The server's now in seconds since the epoch, as SQL: the one clock of the store."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)
REFUSED = (asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError)
"""A database or role that does not exist, a wrong password (``InvalidPasswordError`` is
one of the latter): a configuration error, where an unreachable server is a StoreError."""


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


def local_time(left: float | None) -> float | None:
    """A time the server gave as seconds from its now, on this process's clock.

    The server's clock decides when something is due; the caller sleeps by its own.
    """
    return None if left is None else time.time() + float(left)


def delay_until(at: float | None) -> float | None:
    """A time on this process's clock as seconds from now, for the server to add to its
    own now: a worker whose clock is off from the server's neither wakes its runs early
    (and loops) nor late."""
    return None if at is None else max(0.0, at - time.time())


class PostgresDb:
    """The pool every query uses, and the notifications of one schema."""

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self.dsn, self.schema = parse_dsn(dsn)
        self.channel = f"durable_{self.schema}"
        """The NOTIFY channel; payloads are topics (``_notify``)."""
        self.notifier = Notifier()
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self.idle: list[asyncpg.Connection] = []
        """Connections back from a clean use, kept out of the pool (``_Use``)."""
        self.waiting = 0
        """Uses waiting for the pool to hand them a connection: while there are any,
        connections go back to the pool, not to ``idle``."""
        self._lock_key = f"durable-migrations:{self.schema}"
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def open(self) -> None:
        settings = {
            "search_path": self.schema,
            "application_name": "durable",
            # The store's statements are prepared once per connection and their parameters
            # are keys and times: a generic plan fits every call, and re-planning each
            # execution (the server's choice when a custom plan looks cheaper) costs more.
            "plan_cache_mode": "force_generic_plan",
        }
        try:
            await self._migrate()
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self._pool_size,
                server_settings=settings,
                reset=_keep_session,
            )
        except REFUSED as exc:  # retrying cannot fix these: the DSN must change
            raise ConfigurationError(
                f"the Postgres server at {safe_dsn(self.dsn)} refused the DSN: {exc}"
            ) from exc
        except DRIVER_ERRORS as exc:
            raise StoreError(f"cannot open Postgres store at {safe_dsn(self.dsn)}: {exc}") from exc
        self._listener = asyncio.create_task(self._listen(), name="durable-listen")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._listening.wait()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            idle, self.idle = self.idle, []
            for conn in idle:
                await pool.release(conn)
            await pool.close()

    async def _migrate(self) -> None:
        conn = await asyncpg.connect(self.dsn)
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
                    await conn.execute(f"INSERT INTO schema_migrations VALUES ($1, {NOW})", version)
                log.info("schema %s: applied migration %04d", self.schema, version)
        finally:
            with contextlib.suppress(*DRIVER_ERRORS):
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._lock_key)
            await conn.close()

    def conn(self, what: str) -> _Use:
        """A pooled connection; driver errors become StoreError naming ``what``."""
        return _Use(self, what)

    async def notify(self, conn: asyncpg.Connection, *topics: str) -> None:
        """Wake ``topics`` everywhere once ``conn``'s transaction commits (here: now)."""
        for topic in topics:
            await conn.execute("SELECT pg_notify($1, $2)", self.channel, topic)
            self.notifier.notify(topic)

    async def publish(self, *topics: str) -> None:
        async with self.conn("publish") as conn:
            await conn.execute(
                "SELECT pg_notify($1, t) FROM unnest($2::text[]) AS t", self.channel, list(topics)
            )
        for topic in topics:
            self.notifier.notify(topic)

    def subscribe(self, topic: str) -> Subscription:
        return self.notifier.subscribe(topic)

    async def _listen(self) -> None:
        """Hold a LISTEN connection; reconnect with backoff when it drops."""
        delay = 0.1
        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
            except DRIVER_ERRORS as exc:
                log.warning("postgres listener: cannot connect (%s); retry in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                await conn.add_listener(self.channel, self._on_notification)
                self._listening.set()
                delay = 0.1
                # Something may have happened while deaf.
                self.notifier.notify(WORK)
                self.notifier.notify(JOBS)
                while True:  # a cheap liveness probe: a dropped server is noticed in seconds
                    await asyncio.sleep(2.0)
                    async with asyncio.timeout(5):
                        await conn.execute("SELECT 1")
            except DRIVER_ERRORS as exc:
                log.warning("postgres listener: connection lost (%s); reconnecting", exc)
            finally:
                conn.terminate()

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.notifier.notify(payload)


class _Use:
    """One use of a pooled connection (``async with db.conn(what) as conn``).

    A connection back from a clean use (no error, no open transaction) is kept in the
    store's idle list and handed to the next use as it is: asyncpg's acquire and release
    cost an event-loop task and several loop turns per query, which on the hot path
    (a commit per step) are as much as the round trip itself. The asyncpg pool still
    opens connections (up to its size) and takes back any connection a use left in
    doubt: an error, a cancellation, an open transaction. While uses wait for the pool
    (all its connections are out), a connection goes back to the pool for them.
    """

    __slots__ = ("_conn", "_db", "_pool", "_what")

    def __init__(self, db: PostgresDb, what: str) -> None:
        self._db = db
        self._what = what

    async def __aenter__(self) -> asyncpg.Connection:
        db = self._db
        pool = self._pool = db._pool
        if pool is None:
            raise StoreError(f"postgres: {self._what} failed: the store is not open")
        while db.idle:
            conn = db.idle.pop()
            if _reusable(conn):
                self._conn = conn
                return conn
            await pool.release(conn)  # closed while idle: the pool replaces it
        db.waiting += 1
        try:
            self._conn = await pool.acquire()
        except DRIVER_ERRORS as exc:
            raise StoreError(f"postgres: {self._what} failed: {exc}") from exc
        finally:
            db.waiting -= 1
        return self._conn

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        conn, db, pool = self._conn, self._db, self._pool
        if kind is None and db._pool is pool and not db.waiting and _reusable(conn):
            db.idle.append(conn)
            return
        assert pool is not None
        await pool.release(conn)  # the pool resets or replaces it (or closes it)
        if exc is not None and isinstance(exc, DRIVER_ERRORS):
            raise StoreError(f"postgres: {self._what} failed: {exc}") from exc


def _reusable(conn: asyncpg.Connection) -> bool:
    """Whether ``conn`` can serve the next use as it is: open, no transaction left open.

    A connection the server closed is taken back by the pool on its own, which detaches
    the proxy we hold: asking it anything then raises InterfaceError."""
    try:
        return not conn.is_closed() and not conn.is_in_transaction()
    except asyncpg.InterfaceError:
        return False


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Reset nothing when a connection goes back to the pool.

    asyncpg's default sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release: one more round trip per query. The store leaves no session state
    behind on pooled connections (no session advisory locks, cursors, LISTEN or SET; the
    migration lock and LISTEN have connections of their own), and asyncpg still rolls
    back a transaction left open before calling this.
    """


def safe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    if len(netloc) == 2 and ":" in netloc[0]:
        user = netloc[0].split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))
    return dsn
