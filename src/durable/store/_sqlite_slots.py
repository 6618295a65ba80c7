"""SQLite queries of activity slots: take, renew and free rows of ``queue_slots``.

``SqliteSlots`` is the slot part of ``SqliteQueues``. A queue's limit of ``n``
(kind ``concurrency``: attempts at once; ``rate``: starts per period) is rows ``0..n-1``,
each held until its ``expires_at`` (NULL: free). Taking one is a probe of
``queue_slots_free`` for a free or lapsed row, whatever ``n``; rows are created one at a
time, only when every existing one is busy. Rows at or above a lowered limit are never
taken again and go once free; while one is still held, the queue's held rows are counted
instead. Every write runs in the store's one ``BEGIN IMMEDIATE`` transaction at a time,
so counting and taking cannot race.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence

from . import _rules
from ._notify import queue_topic
from ._records import SlotGrant
from ._sqlite_db import SqliteDb


def _free_slot(conn: sqlite3.Connection, queue: str, kind: str, slots: int, now: float) -> int:
    """A free or lapsed row below ``slots``, else the next row to create (maybe ``slots``)."""
    row = conn.execute(
        "SELECT slot FROM queue_slots WHERE queue = ? AND kind = ? AND expires_at IS NULL"
        " AND slot < ? LIMIT 1",
        (queue, kind, slots),
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT slot FROM queue_slots WHERE queue = ? AND kind = ? AND expires_at <= ?"
            " AND slot < ? ORDER BY expires_at LIMIT 1",
            (queue, kind, now, slots),
        ).fetchone()
    if row is not None:
        return int(row[0])
    (top,) = conn.execute(
        "SELECT max(slot) FROM queue_slots WHERE queue = ? AND kind = ? AND slot < ?",
        (queue, kind, slots),
    ).fetchone()
    return _rules.next_slot(top, slots)


def acquire_slot(
    conn: sqlite3.Connection,
    queue: str,
    kind: str,
    slots: int,
    holder: str,
    hold: float,
    now: float,
) -> tuple[str | None, float | None]:
    """Take one of ``slots`` slots of ``(queue, kind)``: (token, None), or (None, retry at)."""
    key = (queue, kind, slots)
    conn.execute(
        "DELETE FROM queue_slots WHERE queue = ? AND kind = ? AND slot >= ?"
        " AND (expires_at IS NULL OR expires_at <= ?)",
        (*key, now),
    )
    above = conn.execute(
        "SELECT 1 FROM queue_slots WHERE queue = ? AND kind = ? AND slot >= ?"
        " AND +expires_at > ?",  # through the key: the few rows above the limit
        (*key, now),
    ).fetchone()
    held = 0
    if above is not None:  # left held by a higher limit: count every held row
        (held,) = conn.execute(
            "SELECT count(*) FROM queue_slots WHERE queue = ? AND kind = ? AND expires_at > ?",
            (queue, kind, now),
        ).fetchone()
    room = _rules.slot_gate(above is not None, held, slots)
    slot = _free_slot(conn, *key, now) if room else slots
    if slot < slots:
        token = uuid.uuid4().hex
        conn.execute(
            "INSERT INTO queue_slots (queue, kind, slot, holder, token, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (queue, kind, slot) DO UPDATE SET"
            " holder = excluded.holder, token = excluded.token, expires_at = excluded.expires_at",
            (queue, kind, slot, holder, token, now + hold),
        )
        return token, None
    (retry_at,) = conn.execute(
        "SELECT min(expires_at) FROM queue_slots WHERE queue = ? AND kind = ? AND expires_at > ?",
        (queue, kind, now),
    ).fetchone()
    return None, retry_at


class SqliteSlots:
    """Activity slot queries of the SQLite store."""

    def __init__(self, db: SqliteDb) -> None:
        self._write = db.write
        self._notifier = db.notifier

    async def acquire_queue_slot(
        self, queue: str, kind: str, slots: int, holder: str, hold_seconds: float
    ) -> SlotGrant:
        def tx(conn: sqlite3.Connection, now: float) -> tuple[str | None, float | None]:
            return acquire_slot(conn, queue, kind, slots, holder, hold_seconds, now)

        token, retry_at = await self._write("acquire queue slot", tx)
        return SlotGrant(token, retry_at)

    async def renew_queue_slots(self, tokens: Sequence[str], hold_seconds: float) -> set[str]:
        def tx(conn: sqlite3.Connection, now: float) -> set[str]:
            until = now + hold_seconds
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
        def tx(conn: sqlite3.Connection, _now: float) -> None:
            conn.execute(
                "UPDATE queue_slots SET holder = NULL, token = NULL, expires_at = NULL"
                " WHERE token = ? AND queue = ? AND kind = 'concurrency'",
                (token, queue),
            )

        await self._write("release queue slot", tx)
        self._notifier.notify(queue_topic(queue))
