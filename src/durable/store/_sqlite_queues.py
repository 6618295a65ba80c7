"""SQLite queries of queues: the claim, wake-up times, depths, declarations, activity slots.

``SqliteQueues`` runs its queries through the store's ``SqliteDb``; its activity slots
are ``_sqlite_slots``. Every write runs in the store's one
``BEGIN IMMEDIATE`` transaction at a time (across processes too), so counting a queue's
leases and claiming within its limit cannot race.

A claim walks each queue's priority bands from the highest down (``runs_claim`` is
ordered by queue, priority descending, runnable_at): one probe finds the next band, one
range scan takes its due runs. Runs sleeping or leased sit at the end of their band
(their runnable_at is in the future), so a claim never reads past them within a band;
but a band holding only such runs still costs a probe, so the walk stops once the due
runs below are few next to the bands walked (``_rules.checks_below``), and takes them from
``runs_queue_due`` (the queue's due runs form one range of it), sorted by priority. The
next wake-up of a queue is one probe of ``runs_queue_due``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ..queues import Queue
from . import _rules
from ._records import (
    QUEUE_COLUMNS,
    RUN_COLUMNS,
    QueueClaim,
    RunRecord,
    queue_from_row,
    queue_params,
    run_from_row,
)
from ._sqlite_db import SqliteDb
from ._sqlite_slots import SqliteSlots

_TOP_BAND = "SELECT max(priority) FROM runs WHERE queue = ? AND runnable_at IS NOT NULL"
_NEXT_BAND = (
    "SELECT max(priority) FROM runs WHERE queue = ? AND runnable_at IS NOT NULL AND priority < ?"
)
_BAND_DUE = (
    "SELECT id, priority, runnable_at FROM runs WHERE queue = ? AND priority = ?"
    " AND runnable_at IS NOT NULL AND runnable_at <= ? ORDER BY runnable_at LIMIT ?"
)
# The due runs of a queue below a priority, through runs_queue_due: counted (up to a
# budget) to choose between walking on and taking them all, then taken best first.
_DUE_BELOW = (
    "FROM runs INDEXED BY runs_queue_due WHERE queue = ? AND runnable_at IS NOT NULL"
    " AND runnable_at <= ? AND priority < ?"
)
_COUNT_BELOW = f"SELECT count(*) FROM (SELECT 1 {_DUE_BELOW} LIMIT ?)"
_REST = f"SELECT id, priority, runnable_at {_DUE_BELOW} ORDER BY priority DESC, runnable_at LIMIT ?"


def _due(
    conn: sqlite3.Connection, queue: str, cap: int, now: float
) -> list[tuple[str, int, float]]:
    """Up to ``cap`` due runs of a queue: (id, priority, runnable_at), best first."""
    got: list[tuple[str, int, float]] = []
    band = conn.execute(_TOP_BAND, (queue,)).fetchone()[0]
    depth = 1
    while band is not None:
        got += conn.execute(_BAND_DUE, (queue, band, now, cap - len(got))).fetchall()
        if len(got) >= cap:
            break
        if _rules.checks_below(depth):
            budget = depth * _rules.PER_BAND
            (below,) = conn.execute(_COUNT_BELOW, (queue, now, band, budget + 1)).fetchone()
            if below <= budget:
                got += conn.execute(_REST, (queue, now, band, cap - len(got))).fetchall()
                break
        band = conn.execute(_NEXT_BAND, (queue, band)).fetchone()[0]
        depth += 1
    return got


def _all_queues(conn: sqlite3.Connection) -> list[str]:
    """The queues that have runs with a runnable_at (a loose scan of ``runs_claim``)."""
    found: list[str] = []
    name = conn.execute("SELECT min(queue) FROM runs WHERE runnable_at IS NOT NULL").fetchone()[0]
    while name is not None:
        found.append(name)
        name = conn.execute(
            "SELECT min(queue) FROM runs WHERE runnable_at IS NOT NULL AND queue > ?", (name,)
        ).fetchone()[0]
    return found


def _stored(conn: sqlite3.Connection, names: Sequence[str]) -> dict[str, Queue]:
    marks = ", ".join("?" * len(names))
    rows = conn.execute(f"SELECT {QUEUE_COLUMNS} FROM queues WHERE name IN ({marks})", names)
    return {row[0]: queue_from_row(row) for row in rows}


def _room(conn: sqlite3.Connection, claim: QueueClaim, stored: Queue | None, now: float) -> int:
    """How many runs of the queue may start now, within its global limits."""
    leased = started = 0
    if stored is not None and stored.concurrency is not None:
        (leased,) = conn.execute(
            "SELECT count(*) FROM runs WHERE queue = ? AND lease_owner IS NOT NULL"
            " AND runnable_at > ?",
            (claim.name, now),
        ).fetchone()
    if stored is not None and stored.rate_limit is not None:
        period = stored.rate_limit[1]
        conn.execute(
            "DELETE FROM queue_starts WHERE queue = ? AND kind = 'run' AND at <= ?",
            (claim.name, now - period),
        )
        (started,) = conn.execute(
            "SELECT count(*) FROM queue_starts WHERE queue = ? AND kind = 'run' AND at > ?",
            (claim.name, now - period),
        ).fetchone()
    return _rules.queue_room(claim.cap, stored, leased, started)


def claim_runs(
    conn: sqlite3.Connection,
    owner: str,
    limit: int,
    lease_seconds: float,
    queues: Sequence[QueueClaim] | None,
    now: float,
) -> list[RunRecord]:
    """Lease up to ``limit`` due runs of ``queues`` within their limits (one transaction)."""
    if queues is None:
        queues = [QueueClaim(name, limit) for name in _all_queues(conn)]
    stored = _stored(conn, [q.name for q in queues])
    rooms = {q.name: _room(conn, q, stored.get(q.name), now) for q in queues}
    rooms = {name: min(room, limit) for name, room in rooms.items() if room > 0}
    candidates: list[tuple[str, int, float]] = []
    for name, room in rooms.items():
        candidates += _due(conn, name, room, now)
    if len(rooms) > 1:  # several queues: the best across them
        candidates.sort(key=lambda c: (-c[1], c[2]))
    order = {c[0]: n for n, c in enumerate(candidates[:limit])}
    runs: list[RunRecord] = []
    if order:
        lease = (owner, now + lease_seconds, now)
        rows = conn.execute(_TAKE.format(ids=", ".join("?" * len(order))), (*lease, *order))
        runs = sorted((run_from_row(r) for r in rows), key=lambda run: order[run.id])
    rated = {name for name, q in stored.items() if q.rate_limit is not None}
    conn.executemany(
        "INSERT INTO queue_starts (queue, kind, at) VALUES (?, 'run', ?)",
        [(run.queue, now) for run in runs if _rules.counts_as_start(run.epoch, run.queue in rated)],
    )
    return runs


_TAKE = (
    "UPDATE runs SET status = 'RUNNING', lease_owner = ?, epoch = epoch + 1, runnable_at = ?,"
    " updated_at = ? WHERE id IN ({ids}) RETURNING " + RUN_COLUMNS
)


def next_wake(
    conn: sqlite3.Connection, queues: Sequence[str] | None, limited: Sequence[str], now: float
) -> float | None:
    """When a run of ``queues`` (all when None) or ``limited`` next becomes due: one probe
    of runs_queue_due per queue (``_rules.wake_probes``)."""
    times: list[float] = []
    served = _all_queues(conn) if queues is None else queues
    for name, held_back in _rules.wake_probes(served, limited):
        after = now if held_back else float("-inf")
        (at,) = conn.execute(
            "SELECT min(runnable_at) FROM runs WHERE queue = ? AND runnable_at > ?", (name, after)
        ).fetchone()
        if at is not None:
            times.append(float(at))
    for name, queue in _stored(conn, list(limited)).items():
        if queue.rate_limit is not None:
            period = queue.rate_limit[1]
            (first,) = conn.execute(
                "SELECT min(at) FROM queue_starts WHERE queue = ? AND kind = 'run' AND at > ?",
                (name, now - period),
            ).fetchone()
            if first is not None:
                times.append(float(first) + period)
    return min(times, default=None)


def _put_queues(conn: sqlite3.Connection, queues: Sequence[Queue], now: float) -> dict[str, Queue]:
    before = _stored(conn, [q.name for q in queues])
    conn.executemany(
        f"INSERT INTO queues ({QUEUE_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency,"
        " worker_concurrency = excluded.worker_concurrency, rate_limit = excluded.rate_limit,"
        " rate_period = excluded.rate_period, updated_at = excluded.updated_at",
        [(*queue_params(q), now) for q in queues],
    )
    return _rules.changed_queues(before, queues)


class SqliteQueues(SqliteSlots):
    """The claim and queue limits on SQLite, and activity slots (``QueueStore``)."""

    def __init__(self, db: SqliteDb) -> None:
        super().__init__(db)
        self._read = db.read

    async def claim(
        self,
        owner: str,
        limit: int,
        lease_seconds: float,
        queues: Sequence[QueueClaim] | None = None,
    ) -> list[RunRecord]:
        def tx(conn: sqlite3.Connection, now: float) -> list[RunRecord]:
            return claim_runs(conn, owner, limit, lease_seconds, queues, now)

        return await self._write("claim runs", tx)

    async def next_wake_at(
        self, queues: Sequence[str] | None = None, *, limited: Sequence[str] = ()
    ) -> float | None:
        def select(conn: sqlite3.Connection, now: float) -> float | None:
            return next_wake(conn, queues, limited, now)

        return await self._read("read next wake-up", select)

    async def put_queues(self, queues: Sequence[Queue]) -> dict[str, Queue]:
        def tx(conn: sqlite3.Connection, now: float) -> dict[str, Queue]:
            return _put_queues(conn, queues, now)

        return await self._write("store queues", tx)

    async def get_queues(self, names: Sequence[str] | None = None) -> dict[str, Queue]:
        def select(conn: sqlite3.Connection, _now: float) -> dict[str, Queue]:
            if names is not None:
                return _stored(conn, names)
            rows = conn.execute(f"SELECT {QUEUE_COLUMNS} FROM queues ORDER BY name")
            return {row[0]: queue_from_row(row) for row in rows}

        return await self._read("read queues", select)

    async def queue_depths(self, names: Sequence[str] | None = None) -> dict[str, int]:
        def select(conn: sqlite3.Connection, now: float) -> dict[str, int]:
            if names is None:
                rows = conn.execute(
                    "SELECT queue, count(*) FROM runs WHERE runnable_at IS NOT NULL"
                    " AND runnable_at <= ? GROUP BY queue",
                    (now,),
                )
                return dict(rows.fetchall())
            depths = dict.fromkeys(names, 0)
            for name in depths:
                (depths[name],) = conn.execute(
                    "SELECT count(*) FROM runs WHERE queue = ? AND runnable_at IS NOT NULL"
                    " AND runnable_at <= ?",
                    (name, now),
                ).fetchone()
            return depths

        return await self._read("read queue depths", select)
