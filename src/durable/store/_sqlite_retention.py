"""SQLite retention: deleting finished runs in batches, and named leases.

A batch is one write transaction: it picks up to ``batch`` prunable runs
(``_rules.prune_conditions``, oldest first) and deletes them with every row they own.
Other writers wait at most one batch for the write lock, so a sweep never holds up the
workers for long. The cutoff is read once from the App's clock.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from ..info import Status
from . import _rules
from ._sqlite_db import SqliteDb

_OWNED = ("journal", "signals", "events", "jobs", "run_tags")
"""Every table whose rows belong to one run (by ``run_id``); see the migrations."""

_DOOMED = "SELECT value FROM json_each(?)"


class SqliteRetention:
    """``RetentionStore`` on SQLite."""

    def __init__(self, db: SqliteDb) -> None:
        self._db = db

    async def prune_runs(
        self,
        older_than: float,
        *,
        statuses: Sequence[Status] = (),
        dry_run: bool = False,
        batch: int = 500,
        max_runs: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        cutoff = _rules.prune_cutoff(self._db.clock.now(), older_than)
        where, values = _where(_rules.prune_conditions(cutoff, statuses))
        if dry_run:

            def count(conn: sqlite3.Connection, _now: float) -> int:
                row = conn.execute(f"SELECT count(*) FROM runs WHERE {where}", values).fetchone()
                return int(row[0])

            found = await self._db.read("count prunable runs", count)
            return found if max_runs is None else min(found, max_runs)
        done = 0
        while max_runs is None or done < max_runs:
            size = batch if max_runs is None else min(batch, max_runs - done)
            pick = f"SELECT id FROM runs WHERE {where} ORDER BY {_rules.PRUNE_ORDER} LIMIT {size}"

            def prune(conn: sqlite3.Connection, _now: float, pick: str = pick) -> int:
                ids = json.dumps([run_id for (run_id,) in conn.execute(pick, values)])
                for table in _OWNED:
                    conn.execute(f"DELETE FROM {table} WHERE run_id IN ({_DOOMED})", (ids,))
                return conn.execute(f"DELETE FROM runs WHERE id IN ({_DOOMED})", (ids,)).rowcount

            deleted = await self._db.write("prune runs", prune)
            done += deleted
            if progress is not None and deleted:
                progress(done)
            if deleted < size:
                break
        return done

    async def take_lease(self, name: str, owner: str, seconds: float) -> bool:
        def take(conn: sqlite3.Connection, now: float) -> bool:
            row = conn.execute(
                "SELECT owner, expires_at FROM leases WHERE name = ?", (name,)
            ).fetchone()
            holder, expires_at = (None, None) if row is None else row
            if not _rules.lease_takeable(holder, expires_at, owner, now):
                return False
            conn.execute(
                "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (name)"
                " DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
                (name, owner, now + seconds),
            )
            return True

        return await self._db.write("take lease", take)

    async def drop_lease(self, name: str, owner: str) -> None:
        def drop(conn: sqlite3.Connection, _now: float) -> None:
            conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

        await self._db.write("drop lease", drop)


def _where(conditions: list[tuple[str, tuple[object, ...]]]) -> tuple[str, tuple[object, ...]]:
    """The conditions joined, with ``?`` parameters, and their values."""
    parts = [template.format(*("?" * len(args))) for template, args in conditions]
    return " AND ".join(parts), tuple(value for _, args in conditions for value in args)
