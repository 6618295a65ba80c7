"""Postgres connections kept between uses: a connection the server closed while it sat
idle is never handed out again, and concurrent uses past the pool's size all finish."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

import durable
from durable.store.postgres import parse_dsn

pytestmark = pytest.mark.anyio


async def test_a_connection_closed_while_idle_is_not_used_again(pg_dsn: str):
    async with durable.App(pg_dsn) as app:
        store = app.store
        await asyncio.gather(*(store.create_run(f"r{i}", "wf", "[]") for i in range(20)))
        admin = await asyncpg.connect(parse_dsn(pg_dsn)[0])
        try:  # the server ends every idle pooled connection of the store (LISTEN's too)
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'durable' AND pid <> pg_backend_pid()"
                " AND state = 'idle' AND datname = current_database()"
            )
        finally:
            await admin.close()
        assert ended >= 1
        await asyncio.sleep(0.2)  # the client notices the closed sockets
        for i in range(20):  # no StoreError: no dead connection is handed out
            run = await store.get_run(f"r{i}")
            assert run is not None and run.id == f"r{i}"


async def test_more_concurrent_uses_than_connections_all_finish(pg_dsn: str):
    async with durable.App(pg_dsn) as app:
        store = app.store

        async def use(i: int) -> None:
            async with asyncio.timeout(20):
                await store.create_run(f"u{i}", "wf", "[]")
                await store.get_run(f"u{i}")
                await store.acquire_queue_slot("q", "concurrency", 100, f"h{i}", 60)

        await asyncio.gather(*(use(i) for i in range(60)))
        assert len(await store.list_runs(limit=100)) == 60
