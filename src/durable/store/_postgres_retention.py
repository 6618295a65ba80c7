"""Postgres retention: deleting finished runs in batches, and named leases.

A batch is one statement: it picks up to ``batch`` prunable runs (``_rules.
prune_conditions``, oldest first on ``runs_created``) with ``FOR UPDATE SKIP LOCKED``, so
a run another transaction is changing (a retry, a late cancel) is left for later, and
deletes them with every row they own: journal, signals, events, jobs and tags. The
cutoff is read once from the server's clock, so a sweep has one fixed end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..info import Status
from . import _rules
from ._postgres_db import NOW, PostgresDb

_OWNED = ("journal", "signals", "events", "jobs", "run_tags")
"""Every table whose rows belong to one run (by ``run_id``); see the migrations."""

_PRUNE = """
WITH doomed AS (
    SELECT id FROM runs WHERE {where}
    ORDER BY {order} LIMIT {limit} FOR UPDATE SKIP LOCKED
), {owned}
DELETE FROM runs WHERE id IN (SELECT id FROM doomed) RETURNING id
""".replace(
    "{owned}",
    ", ".join(
        f"{table}_gone AS (DELETE FROM {table} WHERE run_id IN (SELECT id FROM doomed))"
        for table in _OWNED
    ),
)

# _rules.lease_takeable, inlined: the upsert changes the row only when it may.
_TAKE_LEASE = f"""
INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, {NOW} + $3)
ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
WHERE leases.owner = EXCLUDED.owner OR leases.expires_at <= {NOW}
RETURNING owner
"""


class PostgresRetention:
    """``RetentionStore`` on Postgres."""

    def __init__(self, db: PostgresDb) -> None:
        self._conn = db.conn

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
        async with self._conn("read the clock") as conn:
            now = float(await conn.fetchval(f"SELECT {NOW}"))
        conditions = _rules.prune_conditions(_rules.prune_cutoff(now, older_than), statuses)
        where, values = _where(conditions)
        if dry_run:
            async with self._conn("count prunable runs") as conn:
                found = int(
                    await conn.fetchval(f"SELECT count(*) FROM runs WHERE {where}", *values)
                )
            return found if max_runs is None else min(found, max_runs)
        done = 0
        while max_runs is None or done < max_runs:
            size = batch if max_runs is None else min(batch, max_runs - done)
            sql = _PRUNE.format(where=where, order=_rules.PRUNE_ORDER, limit=int(size))
            async with self._conn("prune runs") as conn:
                deleted = len(await conn.fetch(sql, *values))
            done += deleted
            if progress is not None and deleted:
                progress(done)
            if deleted < size:
                break
        return done

    async def take_lease(self, name: str, owner: str, seconds: float) -> bool:
        async with self._conn("take lease") as conn:
            return await conn.fetchval(_TAKE_LEASE, name, owner, seconds) is not None

    async def drop_lease(self, name: str, owner: str) -> None:
        async with self._conn("drop lease") as conn:
            await conn.execute("DELETE FROM leases WHERE name = $1 AND owner = $2", name, owner)


def _where(conditions: list[tuple[str, tuple[object, ...]]]) -> tuple[str, list[object]]:
    """The conditions joined, with ``$n`` parameters, and their values."""
    parts: list[str] = []
    values: list[object] = []
    for template, args in conditions:
        marks = [f"${len(values) + n}" for n in range(1, len(args) + 1)]
        parts.append(template.format(*marks))
        values.extend(args)
    return " AND ".join(parts), values
