"""Shared fixtures. Store-dependent tests run on SQLite and on Postgres.

Postgres comes from ``$DURABLE_TEST_DSN`` when set, else from a throwaway server started
with the ``pgserver`` wheel; each test gets a schema of its own.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

import durable


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    configured = os.environ.get("DURABLE_TEST_DSN")
    if configured:
        yield configured
        return
    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="durable-pg-"), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def with_option(dsn: str, key: str, value: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}{key}={value}"


async def _drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    from durable.store.postgres import parse_dsn

    conn = await asyncpg.connect(parse_dsn(dsn)[0])
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def pg_dsn(postgres_dsn: str) -> Iterator[str]:
    """A DSN on the test server with a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield with_option(postgres_dsn, "schema", schema)
    asyncio.run(_drop_schema(postgres_dsn, schema))


@pytest.fixture(params=["sqlite", "postgres"])
def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'durable.db'}"
    return str(request.getfixturevalue("pg_dsn"))


@pytest.fixture
async def app(dsn: str) -> AsyncIterator[durable.App]:
    async with durable.App(dsn) as app:
        yield app


async def wait_for_status(
    handle: durable.Handle[object], *statuses: durable.Status, timeout: float = 15.0
) -> durable.RunDescription:
    """Poll until the run reaches one of ``statuses``."""
    with anyio.fail_after(timeout):
        while True:
            desc = await handle.describe()
            if desc.status in statuses:
                return desc
            await anyio.sleep(0.02)


@pytest.fixture
def wait_status():  # type: ignore[no-untyped-def]
    return wait_for_status
