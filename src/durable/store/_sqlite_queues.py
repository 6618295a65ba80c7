"""SQLite queries of queues: the claim, wake-up times, depths, declarations, activity slots.

``SqliteQueues`` is mixed into ``SqliteStore``. Every write runs in the store's one
``BEGIN IMMEDIATE`` transaction at a time (across processes too), so counting a queue's
leases and claiming within its limit cannot race.

A claim walks each queue's priority bands from the highest down (``runs_claim`` is
ordered by queue, priority descending, runnable_at): one probe finds the next band, one
range scan takes its due runs. Runs sleeping or leased sit at the end of their band
(their runnable_at is in the future), so a claim never reads past them.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from .. import _clock
from ..queues import Queue
from ._notify import Notifier, queue_topic
from .base import RUN_COLUMNS, QueueClaim, RunRecord, SlotGrant, run_from_row

T = TypeVar("T")

_QUEUE_COLUMNS = "name, concurrency, worker_concurrency, rate_limit, rate_period"
_TOP_BAND = "SELECT max(priority) FROM runs WHERE queue = ? AND runnable_at IS NOT NULL"
_NEXT_BAND = (
    "SELECT max(priority) FROM runs WHERE queue = ? AND runnable_at IS NOT NULL AND priority < ?"
)


def queue_from_row(row: Sequence[object]) -> Queue:
    """A Queue from a row selected as ``_QUEUE_COLUMNS``."""
    name, concurrency, per_worker, rate, period = row
    return Queue(
        str(name),
        concurrency=concurrency,  # type: ignore[arg-type]
        worker_concurrency=per_worker,  # type: ignore[arg-type]
        rate_limit=None if rate is None else (rate, period),  # type: ignore[arg-type]
    )


def queue_params(queue: Queue) -> tuple[str, int | None, int | None, int | None, float | None]:
    rate, period = queue.rate_limit or (None, None)
    return queue.name, queue.concurrency, queue.worker_concurrency, rate, period


def _bands(conn: sqlite3.Connection, queue: str) -> list[int]:
    """The priorities of a queue's runs that have a runnable_at, highest first."""
    found: list[int] = []
    band = conn.execute(_TOP_BAND, (queue,)).fetchone()[0]
    while band is not None:
        found.append(band)
        band = conn.execute(_NEXT_BAND, (queue, band)).fetchone()[0]
    return found


def _due(
    conn: sqlite3.Connection, queue: str, cap: int, now: float
) -> list[tuple[str, int, float]]:
    """Up to ``cap`` due runs of a queue: (id, priority, runnable_at), best first."""
    got: list[tuple[str, int, float]] = []
    band = conn.execute(_TOP_BAND, (queue,)).fetchone()[0]
    while band is not None and len(got) < cap:
        got += conn.execute(
            "SELECT id, priority, runnable_at FROM runs WHERE queue = ? AND priority = ?"
            " AND runnable_at IS NOT NULL AND runnable_at <= ? ORDER BY runnable_at LIMIT ?",
            (queue, band, now, cap - len(got)),
        ).fetchall()
        if len(got) < cap:
            band = conn.execute(_NEXT_BAND, (queue, band)).fetchone()[0]
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
    rows = conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE name IN ({marks})", names)
    return {row[0]: queue_from_row(row) for row in rows}


def _room(conn: sqlite3.Connection, claim: QueueClaim, stored: Queue | None, now: float) -> int:
    """How many runs of the queue may start now, within its global limits."""
    room = claim.cap
    if stored is None:
        return room
    if stored.concurrency is not None:
        (leased,) = conn.execute(
            "SELECT count(*) FROM runs WHERE queue = ? AND lease_owner IS NOT NULL"
            " AND runnable_at > ?",
            (claim.name, now),
        ).fetchone()
        room = min(room, stored.concurrency - leased)
    if stored.rate_limit is not None:
        count, period = stored.rate_limit
        conn.execute(
            "DELETE FROM queue_starts WHERE queue = ? AND kind = 'run' AND at <= ?",
            (claim.name, now - period),
        )
        (started,) = conn.execute(
            "SELECT count(*) FROM queue_starts WHERE queue = ? AND kind = 'run' AND at > ?",
            (claim.name, now - period),
        ).fetchone()
        room = min(room, count - started)
    return room


def claim_runs(
    conn: sqlite3.Connection,
    owner: str,
    limit: int,
    lease_seconds: float,
    queues: Sequence[QueueClaim] | None,
) -> list[RunRecord]:
    """Lease up to ``limit`` due runs of ``queues`` within their limits (one transaction)."""
    now = _clock.now()
    if queues is None:
        queues = [QueueClaim(name, limit) for name in _all_queues(conn)]
    stored = _stored(conn, [q.name for q in queues])
    rooms = {q.name: _room(conn, q, stored.get(q.name), now) for q in queues}
    rooms = {name: min(room, limit) for name, room in rooms.items() if room > 0}
    lease = (owner, now + lease_seconds, now)
    if len(rooms) == 1:
        runs = _claim_one(conn, *rooms.popitem(), lease)
    else:
        runs = _claim_many(conn, rooms, limit, lease)
    rated = {name for name, q in stored.items() if q.rate_limit is not None}
    conn.executemany(
        "INSERT INTO queue_starts (queue, kind, at) VALUES (?, 'run', ?)",
        [(run.queue, now) for run in runs if run.epoch == 1 and run.queue in rated],
    )
    return runs


_TAKE = (
    "UPDATE runs SET status = 'RUNNING', lease_owner = ?, epoch = epoch + 1, runnable_at = ?,"
    " updated_at = ? WHERE id IN ({ids}) RETURNING " + RUN_COLUMNS
)


def _claim_one(
    conn: sqlite3.Connection, queue: str, room: int, lease: tuple[str, float, float]
) -> list[RunRecord]:
    """One queue (the common case): take each band's due runs in place, highest first."""
    runs: list[RunRecord] = []
    band = conn.execute(_TOP_BAND, (queue,)).fetchone()[0]
    while band is not None and len(runs) < room:
        ids = (
            "SELECT id FROM runs WHERE queue = ? AND priority = ? AND runnable_at IS NOT NULL"
            " AND runnable_at <= ? ORDER BY runnable_at LIMIT ?"
        )
        args = (*lease, queue, band, lease[2], room - len(runs))
        runs += [run_from_row(r) for r in conn.execute(_TAKE.format(ids=ids), args)]
        if len(runs) < room:
            band = conn.execute(_NEXT_BAND, (queue, band)).fetchone()[0]
    return runs


def _claim_many(
    conn: sqlite3.Connection, rooms: dict[str, int], limit: int, lease: tuple[str, float, float]
) -> list[RunRecord]:
    """Several queues: the best ``limit`` of each queue's best runs, in claim order."""
    candidates: list[tuple[str, int, float]] = []
    for name, room in rooms.items():
        candidates += _due(conn, name, room, lease[2])
    candidates.sort(key=lambda c: (-c[1], c[2]))
    order = {c[0]: n for n, c in enumerate(candidates[:limit])}
    if not order:
        return []
    rows = conn.execute(_TAKE.format(ids=", ".join("?" * len(order))), (*lease, *order))
    return sorted((run_from_row(r) for r in rows), key=lambda run: order[run.id])


def _next_wake(
    conn: sqlite3.Connection, queues: Sequence[str] | None, limited: Sequence[str]
) -> float | None:
    now = _clock.now()
    if queues is None and not limited:
        row = conn.execute("SELECT min(runnable_at) FROM runs WHERE runnable_at IS NOT NULL")
        found = row.fetchone()[0]
        return None if found is None else float(found)
    times: list[float] = []
    held_back = set(limited)
    for name in [*(queues or ()), *limited]:
        after = now if name in held_back else float("-inf")
        for band in _bands(conn, name):
            row = conn.execute(
                "SELECT runnable_at FROM runs WHERE queue = ? AND priority = ?"
                " AND runnable_at IS NOT NULL AND runnable_at > ? ORDER BY runnable_at LIMIT 1",
                (name, band, after),
            ).fetchone()
            if row is not None:
                times.append(float(row[0]))
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


def _put_queues(conn: sqlite3.Connection, *, queues: Sequence[Queue]) -> dict[str, Queue]:
    before = _stored(conn, [q.name for q in queues])
    conn.executemany(
        f"INSERT INTO queues ({_QUEUE_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency,"
        " worker_concurrency = excluded.worker_concurrency, rate_limit = excluded.rate_limit,"
        " rate_period = excluded.rate_period, updated_at = excluded.updated_at",
        [(*queue_params(q), time.time()) for q in queues],
    )
    return {q.name: before[q.name] for q in queues if q.name in before and before[q.name] != q}


def _acquire(
    conn: sqlite3.Connection, queue: str, kind: str, slots: int, holder: str, hold: float
) -> tuple[str | None, float | None]:
    now = time.time()
    conn.execute(
        "WITH RECURSIVE n(slot) AS (SELECT 0 UNION ALL SELECT slot + 1 FROM n WHERE slot + 1 < ?)"
        " INSERT OR IGNORE INTO queue_slots (queue, kind, slot) SELECT ?, ?, slot FROM n",
        (slots, queue, kind),
    )
    token = uuid.uuid4().hex
    row = conn.execute(
        "UPDATE queue_slots SET holder = ?, token = ?, expires_at = ?"
        " WHERE queue = ? AND kind = ? AND slot = (SELECT slot FROM queue_slots"
        "   WHERE queue = ? AND kind = ? AND slot < ? AND (expires_at IS NULL OR expires_at <= ?)"
        "   ORDER BY slot LIMIT 1) RETURNING slot",
        (holder, token, now + hold, queue, kind, queue, kind, slots, now),
    ).fetchone()
    if row is not None:
        return token, None
    (retry_at,) = conn.execute(
        "SELECT min(expires_at) FROM queue_slots WHERE queue = ? AND kind = ? AND slot < ?",
        (queue, kind, slots),
    ).fetchone()
    return None, retry_at


class SqliteQueues:
    """Queue queries of the SQLite store."""

    _notifier: Notifier

    if TYPE_CHECKING:

        async def _write(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _read(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def claim(
        self,
        owner: str,
        limit: int,
        lease_seconds: float,
        queues: Sequence[QueueClaim] | None = None,
    ) -> list[RunRecord]:
        def tx(conn: sqlite3.Connection) -> list[RunRecord]:
            return claim_runs(conn, owner, limit, lease_seconds, queues)

        return await self._write("claim runs", tx)

    async def next_wake_at(
        self, queues: Sequence[str] | None = None, *, limited: Sequence[str] = ()
    ) -> float | None:
        def select(conn: sqlite3.Connection) -> float | None:
            return _next_wake(conn, queues, limited)

        return await self._read("read next wake-up", select)

    async def put_queues(self, queues: Sequence[Queue]) -> dict[str, Queue]:
        def tx(conn: sqlite3.Connection) -> dict[str, Queue]:
            return _put_queues(conn, queues=queues)

        return await self._write("store queues", tx)

    async def get_queues(self, names: Sequence[str] | None = None) -> dict[str, Queue]:
        def select(conn: sqlite3.Connection) -> dict[str, Queue]:
            if names is not None:
                return _stored(conn, names)
            rows = conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues ORDER BY name")
            return {row[0]: queue_from_row(row) for row in rows}

        return await self._read("read queues", select)

    async def queue_depths(self, names: Sequence[str] | None = None) -> dict[str, int]:
        def select(conn: sqlite3.Connection) -> dict[str, int]:
            now = time.time()
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

    async def acquire_queue_slot(
        self, queue: str, kind: str, slots: int, holder: str, hold_seconds: float
    ) -> SlotGrant:
        def tx(conn: sqlite3.Connection) -> tuple[str | None, float | None]:
            return _acquire(conn, queue, kind, slots, holder, hold_seconds)

        token, retry_at = await self._write("acquire queue slot", tx)
        return SlotGrant(token, retry_at)

    async def renew_queue_slots(self, tokens: Sequence[str], hold_seconds: float) -> set[str]:
        def tx(conn: sqlite3.Connection) -> set[str]:
            until = time.time() + hold_seconds
            held: set[str] = set()
            for token in tokens:
                row = conn.execute(
                    "UPDATE queue_slots SET expires_at = ? WHERE token = ? RETURNING token",
                    (until, token),
                ).fetchone()
                if row is not None:
                    held.add(row[0])
            return held

        return await self._write("renew queue slots", tx) if tokens else set()

    async def release_queue_slot(self, queue: str, token: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE queue_slots SET holder = NULL, token = NULL, expires_at = NULL"
                " WHERE queue = ? AND kind = 'concurrency' AND token = ?",
                (queue, token),
            )

        await self._write("release queue slot", tx)
        self._notifier.notify(queue_topic(queue))

    async def publish(self, *topics: str) -> None:
        for topic in topics:
            self._notifier.notify(topic)
