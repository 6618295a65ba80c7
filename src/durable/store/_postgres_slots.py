"""Postgres queries of activity slots: take, renew and free rows of ``queue_slots``.

``PostgresSlots`` is the slot part of ``PostgresQueues``. A queue's limit of
``n`` (kind ``concurrency``: attempts at once; ``rate``: starts per period) is rows
``0..n-1``, each held until its ``expires_at`` (NULL: free). A slot is taken with one
statement: a free or lapsed row found through ``queue_slots_free`` (one probe each,
whatever ``n``) and locked with ``SKIP LOCKED``, so concurrent callers never take one row
twice; rows are created one at a time, only when every existing one is busy.

A lowered limit leaves rows at or above the new ``n`` that may still be held. While one
is, the rows below ``n`` no longer bound the count, so a caller that sees such a row
counts every held row of the queue instead, under a transaction-scoped advisory lock
per queue and kind, in a statement that starts after the lock is granted. Rows above
the limit are never taken again, so once a statement sees none held, none is.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from ._notify import queue_topic
from ._postgres_db import NOW, PostgresDb, local_time
from ._records import SlotGrant

_T = "(SELECT t FROM now_)"

# Parameters: $1 queue, $2 kind, $3 slots (the limit), $4 holder, $5 token, $6 hold.
# Answers: granted, open (the gate passed), room (a row could still be created), and
# the seconds until the next held row's hold ends. Each lookup is written so that even a
# table never analyzed is read through the right index: the highest row through the key
# (rows are made in order, so rows above the limit exist only if it lies above), a free
# or lapsed row through queue_slots_free (its order; ``slot + 0`` keeps the key out),
# and the row taken is the one locked (by its ctid: it cannot move while locked).
_ACQUIRE_TEMPLATE = f"""
WITH now_ AS MATERIALIZED (SELECT {NOW} AS t),
top AS MATERIALIZED (SELECT max(slot) AS slot FROM queue_slots WHERE queue = $1 AND kind = $2),
pruned AS (
    DELETE FROM queue_slots WHERE (queue, kind, slot) IN (
        SELECT queue, kind, slot FROM queue_slots WHERE (SELECT slot FROM top) >= $3
            AND queue = $1 AND kind = $2 AND slot >= $3
            AND (expires_at IS NULL OR expires_at <= {_T})
        FOR UPDATE SKIP LOCKED)
), gate AS MATERIALIZED (SELECT {{gate}} AS open),
pick AS (
    SELECT row_id FROM (
        SELECT * FROM (SELECT ctid AS row_id FROM queue_slots WHERE queue = $1 AND kind = $2
            AND expires_at IS NULL AND slot + 0 < $3 ORDER BY expires_at DESC LIMIT 1
            FOR UPDATE SKIP LOCKED) free
      UNION ALL
        SELECT * FROM (SELECT ctid AS row_id FROM queue_slots WHERE queue = $1 AND kind = $2
            AND expires_at <= {_T} AND slot + 0 < $3 ORDER BY expires_at LIMIT 1
            FOR UPDATE SKIP LOCKED) lapsed
    ) f WHERE (SELECT open FROM gate) LIMIT 1
), taken AS (
    UPDATE queue_slots SET holder = $4, token = $5, expires_at = {_T} + $6
    WHERE ctid = (SELECT row_id FROM pick)
    RETURNING slot
), next_slot AS MATERIALIZED (
    SELECT LEAST(COALESCE((SELECT slot FROM top) + 1, 0), $3) AS slot
), created AS (
    INSERT INTO queue_slots (queue, kind, slot, holder, token, expires_at)
    SELECT $1, $2, n.slot, $4, $5, {_T} + $6 FROM next_slot n
    WHERE n.slot < $3 AND (SELECT open FROM gate) AND NOT EXISTS (SELECT FROM pick)
    ON CONFLICT DO NOTHING
    RETURNING slot
)
SELECT EXISTS (SELECT FROM taken) OR EXISTS (SELECT FROM created),
    (SELECT open FROM gate), (SELECT slot FROM next_slot) < $3,
    (SELECT min(expires_at) FROM queue_slots WHERE queue = $1 AND kind = $2
        AND expires_at > {_T}) - {_T}
"""

# The gate is ``_rules.slot_gate``; the row created is ``_rules.next_slot``.
# No row at or above the limit is held: the rows below it bound the count by themselves.
_ACQUIRE = _ACQUIRE_TEMPLATE.format(
    gate=f"""CASE WHEN COALESCE((SELECT slot FROM top), -1) < $3 THEN true
        ELSE NOT EXISTS (SELECT FROM queue_slots WHERE queue = $1 AND kind = $2
            AND slot >= $3 AND expires_at + 0 > {_T}) END"""
)
# Some are: count every held row (run under the lock, see the module docstring).
_ACQUIRE_COUNTED = _ACQUIRE_TEMPLATE.format(
    gate=f"""(SELECT count(*) FROM queue_slots WHERE queue = $1 AND kind = $2
        AND expires_at > {_T}) < $3"""
)

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"

_RELEASE = """
WITH freed AS (
    UPDATE queue_slots SET holder = NULL, token = NULL, expires_at = NULL
    WHERE token = $2 AND queue = $1 AND kind = 'concurrency'
    RETURNING 1
)
SELECT pg_notify($3, $4)
"""


class PostgresSlots:
    """Activity slot queries of the Postgres store."""

    def __init__(self, db: PostgresDb) -> None:
        self._slot_lock = f"durable-slots:{db.schema}"
        self._conn = db.conn
        self._channel = db.channel
        self._notifier = db.notifier

    async def acquire_queue_slot(
        self, queue: str, kind: str, slots: int, holder: str, hold_seconds: float
    ) -> SlotGrant:
        token = uuid.uuid4().hex
        args = (queue, kind, slots, holder, token, hold_seconds)
        async with self._conn("acquire queue slot") as conn:
            for _ in range(3):
                granted, open_, room, left = await conn.fetchrow(_ACQUIRE, *args)
                if not open_:  # rows above a lowered limit are still held
                    async with conn.transaction():
                        await conn.execute(_LOCK, f"{self._slot_lock}:{kind}:{queue}")
                        granted, open_, room, left = await conn.fetchrow(_ACQUIRE_COUNTED, *args)
                if granted or not (open_ and room):
                    break
                # room for a new row, yet none was made: another caller made that row
                # at the same moment; look again
        if granted:
            return SlotGrant(token)
        return SlotGrant(None, local_time(left))

    async def renew_queue_slots(self, tokens: Sequence[str], hold_seconds: float) -> set[str]:
        if not tokens:
            return set()
        async with self._conn("renew queue slots") as conn:
            rows = await conn.fetch(
                f"UPDATE queue_slots SET expires_at = {NOW} + $2"
                " WHERE token = ANY($1::text[]) RETURNING token",
                list(tokens),
                hold_seconds,
            )
        return {row[0] for row in rows}

    async def release_queue_slot(self, queue: str, token: str) -> None:
        topic = queue_topic(queue)
        async with self._conn("release queue slot") as conn:
            await conn.execute(_RELEASE, queue, token, self._channel, topic)
        self._notifier.notify(topic)
