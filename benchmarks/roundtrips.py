"""Counting the durable store's database round trips, by statement.

Postgres: every call of asyncpg's ``execute``/``fetch``/``fetchrow``/``fetchval``/
``executemany`` is one round trip (``BEGIN``/``COMMIT`` of a transaction count as their
own). SQLite: every write transaction and every read the store hands to its threads.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import asyncpg.connection

from durable.store._sqlite_db import SqliteDb

_METHODS = ("execute", "executemany", "fetch", "fetchrow", "fetchval")


def _label(sql: str) -> str:
    text = re.sub(r"\s+", " ", sql).strip()
    return text[:70]


class Counter_:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()

    def report(self) -> dict[str, Any]:
        return {
            "total": sum(self.calls.values()),
            "by_statement": [
                {"what": what, "calls": n, "ms_total": round(self.seconds[what] * 1000, 1)}
                for what, n in self.calls.most_common()
            ],
        }


def install() -> Counter_:
    """Start counting (before the store opens); returns the counter."""
    counter = Counter_()
    for name in _METHODS:
        original = getattr(asyncpg.connection.Connection, name)

        def wrap(original: Any = original) -> Any:
            async def counted(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                label = _label(query)
                start = time.perf_counter()
                try:
                    return await original(self, query, *args, **kwargs)
                finally:
                    counter.calls[label] += 1
                    counter.seconds[label] += time.perf_counter() - start

            return counted

        setattr(asyncpg.connection.Connection, name, wrap())
    # The store's objects bind ``db.write``/``db.read`` when the store is built: patched
    # here first, every transaction they hand to the threads is counted.
    for name in ("write", "read"):
        original = getattr(SqliteDb, name)

        def wrap_sqlite(original: Any = original, kind: str = name) -> Any:
            async def counted(self: Any, what: str, fn: Any) -> Any:
                label = f"sqlite {kind}: {what}"
                start = time.perf_counter()
                try:
                    return await original(self, what, fn)
                finally:
                    counter.calls[label] += 1
                    counter.seconds[label] += time.perf_counter() - start

            return counted

        setattr(SqliteDb, name, wrap_sqlite())
    return counter
