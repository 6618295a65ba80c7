"""The commit floor: a one-row insert per transaction, on the same database server.

Postgres: on one connection (latency: what one run's step must wait at least) and on 16
(the server's group commit: what many runs together can reach). SQLite: one connection
in WAL mode with ``synchronous=FULL`` (what the embedded store uses) and ``NORMAL``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import asyncpg


def sqlite_floor(folder: Path, synchronous: str, count: int = 2000) -> float:
    """Commits per second of a one-row insert, WAL, the given ``synchronous``."""
    path = folder / f"floor-{synchronous.lower()}-{uuid.uuid4().hex[:6]}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    start = time.perf_counter()
    for i in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (str(i),))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    path.unlink()
    return count / elapsed


async def postgres_floor(url: str, connections: int, seconds: float = 3.0) -> float:
    """Commits per second of a one-row insert on ``connections`` connections at once."""
    table = f"durable_floor_{uuid.uuid4().hex[:8]}"
    setup = await asyncpg.connect(url)
    await setup.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, v text)")
    conns = [await asyncpg.connect(url) for _ in range(connections)]
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(conn: asyncpg.Connection) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await conn.execute(f"INSERT INTO {table} (v) VALUES ('x')")
            done += 1

    try:
        start = time.perf_counter()
        await asyncio.gather(*(loop(c) for c in conns))
        elapsed = time.perf_counter() - start
    finally:
        for conn in conns:
            await conn.close()
        await setup.execute(f"DROP TABLE {table}")
        await setup.close()
    return done / elapsed
