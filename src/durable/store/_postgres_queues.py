"""Postgres queries of queues: the claim, wake-up times, depths, declarations, activity slots.

``PostgresQueues`` runs its queries through the store's ``PostgresDb``; its activity
slots are ``_postgres_slots``.

The claim is one statement. For each queue it computes the room left (the worker's own
cap, the queue's global concurrency limit minus its unexpired leases, its rate limit
minus the starts in the window, limits read from the ``queues`` table), then walks the
queue's priority bands from the highest down: a recursive CTE finds each band with one
index probe, and a lateral range scan of ``runs_claim`` takes the band's due runs with
``FOR UPDATE SKIP LOCKED``. Runs sleeping or leased sit at the end of their band (their
runnable_at is in the future), so a claim never reads past them within a band; but a
band holding only such runs still costs a probe, so the walk stops once the due runs
below are few next to the bands walked (``_rules.WALK``), and takes them from
``runs_queue_due`` (the queue's due runs form one range of it), sorted by priority.
"Now" is one InitPlan value, which lets it bound the index scans (``clock_timestamp()``
written in a WHERE clause is volatile, so it would only filter).

The claim commits with ``synchronous_commit = off`` (set for its own transaction, in the
statement): it does not wait for its WAL record to reach the disk. A claim lost in a
server crash is harmless: every journal write is fenced on the epoch the claim set, and
its own synchronous commit flushes the WAL up to and past the claim's record first, so
no step is durable while the claim that allowed it is not; a claim that is lost takes
with it only work that was never acknowledged.

Two claims that both count a queue's leases before either commits could together pass
its limit, so claims of limited queues first take a transaction-scoped advisory lock per
queue (in name order) and count in a later statement, whose snapshot sees every claim
committed before the lock was granted.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from ..queues import Queue
from . import _rules
from ._postgres_db import NOW, PostgresDb, local_time
from ._postgres_slots import PostgresSlots
from ._records import (
    QUEUE_COLUMNS,
    RUN_COLUMNS,
    QueueClaim,
    RunRecord,
    queue_from_row,
    queue_params,
    run_from_row,
)
from ._rules import LOOK, PER_BAND, WALK

_T = "(SELECT t FROM now_)"
_R_COLUMNS = ", ".join(f"r.{c.strip()}" for c in RUN_COLUMNS.split(","))


# The due runs of a queue, as a range of runs_queue_due. The lower bound excludes
# nothing; with it the planner takes the range for a narrow one (an unknown bound on
# each side) rather than a third of the table, and so reads the index, not the table.
_DUE = f"queue = b.name AND runnable_at > '-infinity'::float8 AND runnable_at <= {_T}"

_BANDS = f"""
bands AS (
    SELECT s.name, s.cap, (SELECT max(priority) FROM runs
        WHERE queue = s.name AND runnable_at IS NOT NULL) AS priority, 1 AS depth, true AS walk
    FROM open s
  UNION ALL
    SELECT b.name, b.cap, n.priority, b.depth + 1,
        CASE WHEN b.depth + 1 < {WALK} OR b.depth + 1 > {LOOK} OR (b.depth + 1) & b.depth <> 0
            THEN true
        ELSE (SELECT count(*) FROM (SELECT FROM runs WHERE {_DUE}
            AND priority < n.priority ORDER BY runnable_at
            LIMIT (b.depth + 1) * {PER_BAND} + 1) d) > (b.depth + 1) * {PER_BAND} END
    FROM bands b CROSS JOIN LATERAL (SELECT max(priority) AS priority FROM runs
        WHERE queue = b.name AND runnable_at IS NOT NULL AND priority < b.priority) n
    WHERE b.priority IS NOT NULL AND b.walk
)"""

# {served}: (name, cap) rows; {pick}: the due runs to take, from the bands.
_CLAIM_TEMPLATE = f"""
WITH RECURSIVE now_ AS MATERIALIZED (
    SELECT {NOW} AS t, set_config('synchronous_commit', 'off', true) AS async_commit),
served AS (
    SELECT u.name, u.cap, q.concurrency, q.rate_limit, q.rate_period
    FROM {{served}} LEFT JOIN queues q ON q.name = u.name
), room AS (
    SELECT s.name, s.rate_limit, s.rate_period, LEAST(s.cap,
        CASE WHEN s.concurrency IS NULL THEN s.cap ELSE s.concurrency - (
            SELECT count(*) FROM runs WHERE queue = s.name AND lease_owner IS NOT NULL
                AND runnable_at > {_T}) END,
        CASE WHEN s.rate_limit IS NULL THEN s.cap ELSE s.rate_limit - (
            SELECT count(*) FROM queue_starts WHERE queue = s.name AND kind = 'run'
                AND at > {_T} - s.rate_period) END) AS cap
    FROM served s
), open AS (SELECT * FROM room WHERE cap > 0),
{_BANDS}, band_runs AS (
    SELECT c.id, c.queue, c.priority, c.runnable_at, b.cap
    FROM bands b CROSS JOIN LATERAL (
        SELECT * FROM (SELECT id, queue, priority, runnable_at FROM runs
            WHERE queue = b.name AND priority = b.priority AND runnable_at <= {_T}
            ORDER BY runnable_at LIMIT LEAST(b.cap, $2) FOR UPDATE SKIP LOCKED) band
      UNION ALL
        SELECT * FROM (SELECT id, queue, priority, runnable_at FROM runs
            WHERE NOT b.walk AND id = ANY(ARRAY(SELECT id FROM runs WHERE {_DUE}
                AND priority < b.priority ORDER BY runnable_at LIMIT {LOOK * PER_BAND}))
                AND runnable_at <= {_T}
            ORDER BY priority DESC, runnable_at LIMIT LEAST(b.cap, $2) FOR UPDATE SKIP LOCKED
        ) rest
    ) c
    WHERE b.priority IS NOT NULL
), picked AS ({{pick}}
), claimed AS (
    UPDATE runs r SET status = 'RUNNING', lease_owner = $1, epoch = r.epoch + 1,
        runnable_at = {_T} + $3, updated_at = {_T}
    WHERE r.id = ANY(ARRAY(SELECT id FROM picked))
    RETURNING {_R_COLUMNS}
), pruned AS (
    DELETE FROM queue_starts s USING room r
    WHERE s.queue = r.name AND s.kind = 'run' AND r.rate_limit IS NOT NULL
        AND s.at <= {_T} - r.rate_period
), started AS (
    INSERT INTO queue_starts (queue, kind, at)
    SELECT c.queue, 'run', {_T} FROM claimed c JOIN room r ON r.name = c.queue
    WHERE c.epoch = 1 AND r.rate_limit IS NOT NULL
)
SELECT * FROM claimed
"""

_PICK_ONE = """
    SELECT id FROM band_runs LIMIT COALESCE((SELECT LEAST(cap, $2) FROM open), 0)"""

_PICK_MANY = """
    SELECT id FROM (
        SELECT id, priority, runnable_at, cap,
            row_number() OVER (PARTITION BY queue ORDER BY priority DESC, runnable_at) AS n
        FROM band_runs) ranked
    WHERE n <= cap ORDER BY priority DESC, runnable_at LIMIT $2"""


def _values(count: int, first: int, types: tuple[str, str]) -> str:
    """``(VALUES ($n::a, $n+1::b), ...)``: scalar parameters, one row per queue.

    Not arrays: with an array parameter the planner thinks a generic plan costlier than
    one made for the values at hand and plans the statement again at every call.
    """
    rows = (
        f"(${first + 2 * n}::{types[0]}, ${first + 2 * n + 1}::{types[1]})" for n in range(count)
    )
    return f"(VALUES {', '.join(rows)})"


@functools.cache
def claim_sql(count: int) -> str:
    """The claim from ``count`` queues: ($1 owner, $2 limit, $3 lease, then name, cap...)."""
    return _CLAIM_TEMPLATE.format(
        served=f"{_values(count, 4, ('text', 'int'))} AS u(name, cap)",
        # One queue (the common case): its bands come highest first, so the first rows
        # they yield are the ones to take, and the scan stops there (no sort, no extra
        # locks). Several: the best runs across them, at most each queue's room of each.
        pick=_PICK_ONE if count == 1 else _PICK_MANY,
    )


# The queues that have runs with a runnable_at: a loose index scan, one probe a queue.
_FOUND = """found AS (
    (SELECT queue FROM runs WHERE runnable_at IS NOT NULL ORDER BY queue LIMIT 1)
  UNION ALL
    SELECT (SELECT queue FROM runs WHERE runnable_at IS NOT NULL AND queue > f.queue
        ORDER BY queue LIMIT 1) FROM found f WHERE f.queue IS NOT NULL
)"""

# Those queues, and whether a global limit is stored for each (claims then lock it).
_ALL_QUEUES = f"""
WITH RECURSIVE {_FOUND}
SELECT f.queue, q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL
FROM found f LEFT JOIN queues q ON q.name = f.queue WHERE f.queue IS NOT NULL
"""

_LOCK = """
SELECT pg_advisory_xact_lock(hashtextextended($1 || s.name, 0))
FROM (SELECT unnest($2::text[]) AS name ORDER BY 1) s
"""

# One probe of runs_queue_due per queue. Limited queues count only future times: their
# due runs may be held back by the limit, and a freed slot is announced instead. A rate
# window frees a start at its first start plus the period. Parameters: name, held, ...
_NEXT_WAKE_TEMPLATE = f"""
WITH now_ AS MATERIALIZED (SELECT {NOW} AS t),
served AS (SELECT u.name, u.held FROM {{served}} AS u(name, held)),
times AS (
    SELECT (SELECT min(runnable_at) FROM runs WHERE queue = v.name
        AND runnable_at > CASE WHEN v.held THEN {_T} ELSE '-infinity'::float8 END) AS at
    FROM served v
  UNION ALL
    SELECT min(s.at) + q.rate_period FROM served v
    JOIN queues q ON q.name = v.name AND v.held AND q.rate_limit IS NOT NULL
    JOIN queue_starts s ON s.queue = q.name AND s.kind = 'run' AND s.at > {_T} - q.rate_period
    GROUP BY q.name, q.rate_period
)
SELECT min(at) - {_T} FROM times
"""


@functools.cache
def next_wake_sql(count: int) -> str:
    return _NEXT_WAKE_TEMPLATE.format(served=_values(count, 1, ("text", "bool")))


_DEPTHS = f"""
WITH now_ AS MATERIALIZED (SELECT {NOW} AS t)
SELECT u.name, (SELECT count(*) FROM runs WHERE queue = u.name AND runnable_at <= {_T})
FROM unnest($1::text[]) AS u(name)
"""

_ALL_DEPTHS = f"""
WITH RECURSIVE now_ AS MATERIALIZED (SELECT {NOW} AS t), {_FOUND}
SELECT f.queue, d.depth FROM found f CROSS JOIN LATERAL (
    SELECT count(*) AS depth FROM runs WHERE queue = f.queue AND runnable_at <= {_T}) d
WHERE f.queue IS NOT NULL AND d.depth > 0
"""

_PUT_QUEUE = f"""
INSERT INTO queues ({QUEUE_COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, {NOW})
ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency,
    worker_concurrency = excluded.worker_concurrency, rate_limit = excluded.rate_limit,
    rate_period = excluded.rate_period, updated_at = excluded.updated_at
"""


class PostgresQueues(PostgresSlots):
    """The claim and queue limits on Postgres, and activity slots (``QueueStore``)."""

    def __init__(self, db: PostgresDb) -> None:
        super().__init__(db)
        self._queue_lock = f"durable-queue:{db.schema}:"

    async def claim(
        self,
        owner: str,
        limit: int,
        lease_seconds: float,
        queues: Sequence[QueueClaim] | None = None,
    ) -> list[RunRecord]:
        async with self._conn("claim runs") as conn:
            if queues is None:
                rows = await conn.fetch(_ALL_QUEUES)
                queues = [QueueClaim(name, limit, bool(limited)) for name, limited in rows]
            if not queues:
                return []
            sql = claim_sql(len(queues))
            args = [owner, limit, lease_seconds, *(v for q in queues for v in (q.name, q.cap))]
            locked = sorted({q.name for q in queues if q.limited})
            if locked:
                async with conn.transaction():
                    await conn.execute(_LOCK, self._queue_lock, locked)
                    rows = await conn.fetch(sql, *args)
            else:
                rows = await conn.fetch(sql, *args)
        return sorted((run_from_row(r) for r in rows), key=lambda run: -run.priority)

    async def next_wake_at(
        self, queues: Sequence[str] | None = None, *, limited: Sequence[str] = ()
    ) -> float | None:
        async with self._conn("read next wake-up") as conn:
            if queues is None:  # every queue that has runs, one probe each
                queues = [row[0] for row in await conn.fetch(_ALL_QUEUES)]
            probes = _rules.wake_probes(queues, limited)
            args = [v for pair in probes for v in pair]
            left = await conn.fetchval(next_wake_sql(len(probes)), *args) if probes else None
        return local_time(left)

    async def put_queues(self, queues: Sequence[Queue]) -> dict[str, Queue]:
        names = [q.name for q in queues]
        async with self._conn("store queues") as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT {QUEUE_COLUMNS} FROM queues WHERE name = ANY($1::text[])"
                " ORDER BY name FOR UPDATE",
                names,
            )
            before = {row[0]: queue_from_row(row) for row in rows}
            for queue in sorted(queues, key=lambda q: q.name):
                await conn.execute(_PUT_QUEUE, *queue_params(queue))
        return _rules.changed_queues(before, queues)

    async def get_queues(self, names: Sequence[str] | None = None) -> dict[str, Queue]:
        async with self._conn("read queues") as conn:
            if names is None:
                rows = await conn.fetch(f"SELECT {QUEUE_COLUMNS} FROM queues ORDER BY name")
            else:
                rows = await conn.fetch(
                    f"SELECT {QUEUE_COLUMNS} FROM queues WHERE name = ANY($1::text[])",
                    list(names),
                )
        return {row[0]: queue_from_row(row) for row in rows}

    async def queue_depths(self, names: Sequence[str] | None = None) -> dict[str, int]:
        async with self._conn("read queue depths") as conn:
            if names is None:
                rows = await conn.fetch(_ALL_DEPTHS)
            else:
                rows = await conn.fetch(_DEPTHS, list(names))
        return {row[0]: int(row[1]) for row in rows}
