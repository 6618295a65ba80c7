"""SQLite queries that link runs to each other and to clients: children, events, restarts.

``apply_links`` runs inside the commit transaction of a run, after its own row and
journal are written, for the rare commits that start children, publish events, restart
the run (continue-as-new), cancel its children or tell its parent it ended. It returns
the notification topics to fire once the transaction is durable.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ..info import Status
from ._notify import WORK, Notifier, event_topic, run_topic
from ._sqlite_flows import cancel_open_jobs, insert_signal
from .base import (
    CANCELLED_BEFORE_START,
    Commit,
    Finish,
    Restart,
    child_done_payload,
    child_signal,
    child_start_payload,
)

T = TypeVar("T")

_OPEN = "status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"


def apply_links(conn: sqlite3.Connection, commit: Commit, now: float) -> set[str]:
    """Write what a commit does beyond its own run; return the topics to notify."""
    run_id = commit.fence.run_id
    topics: set[str] = set()
    for child in commit.children:
        cur = conn.execute(
            "INSERT INTO runs (id, workflow, status, args, runnable_at, created_at, updated_at,"
            " parent_id, queue, priority, trace_context)"
            " VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                child.run_id,
                child.workflow,
                child.args,
                now,
                now,
                now,
                run_id,
                child.queue,
                child.priority,
                child.trace_context,
            ),
        )
        if cur.rowcount:
            topics.add(WORK)
        else:  # the id names a run already: it is the child (starting is idempotent)
            topics |= _adopt(conn, run_id, child.run_id, now)
    if commit.events:
        conn.executemany(
            "INSERT INTO events (run_id, key, value, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            [(run_id, key, value, now) for key, value in commit.events],
        )
        topics.add(event_topic(run_id))
    outcome = commit.outcome
    if isinstance(outcome, Restart):
        conn.execute("DELETE FROM journal WHERE run_id = ?", (run_id,))
        conn.execute("DELETE FROM signals WHERE run_id = ? AND consumed_seq IS NOT NULL", (run_id,))
    if isinstance(outcome, Finish | Restart) and outcome.cancel_children:
        topics |= cancel_children(conn, [run_id], now)
    if isinstance(outcome, Finish) and commit.parent_id is not None:
        topics |= tell_parent(conn, commit.parent_id, run_id, outcome, now)
    return topics


def cancel_children(conn: sqlite3.Connection, parents: list[str], now: float) -> set[str]:
    """Request cancellation of the open children of ``parents``; end never-started ones."""
    topics: set[str] = set()
    marks = ", ".join("?" * len(parents))
    never_started = conn.execute(
        f"SELECT id FROM runs WHERE parent_id IN ({marks}) AND status = 'PENDING'"
        " AND epoch = 0 AND lease_owner IS NULL",
        parents,
    ).fetchall()
    for (child_id,) in never_started:
        cancel_open_jobs(conn, child_id, None, now)
        conn.execute(
            "UPDATE runs SET status = 'CANCELLED', error = ?, cancel_requested = 1,"
            " runnable_at = NULL, updated_at = ? WHERE id = ?",
            (CANCELLED_BEFORE_START, now, child_id),
        )
        topics.add(run_topic(child_id))
    rows = conn.execute(
        f"UPDATE runs SET cancel_requested = 1, mailbox_version = mailbox_version + 1,"
        f" runnable_at = CASE WHEN lease_owner IS NULL AND parked_reason IS NULL THEN ?"
        f"   ELSE runnable_at END, updated_at = ?"
        f" WHERE parent_id IN ({marks}) AND {_OPEN} AND NOT cancel_requested RETURNING id",
        (now, now, *parents),
    ).fetchall()
    for (child_id,) in rows:
        topics.add(run_topic(child_id))
    if rows or never_started:
        topics.add(WORK)
    return topics


def cancel_descendants(conn: sqlite3.Connection, run_id: str, now: float) -> set[str]:
    """Request cancellation of every open run below ``run_id``, generation by generation."""
    topics: set[str] = set()
    generation = [run_id]
    while generation:
        topics |= cancel_children(conn, generation, now)
        marks = ", ".join("?" * len(generation))
        generation = [
            row[0]
            for row in conn.execute(
                f"SELECT id FROM runs WHERE parent_id IN ({marks})", generation
            ).fetchall()
        ]
    return topics


def _adopt(conn: sqlite3.Connection, parent_id: str, child_id: str, now: float) -> set[str]:
    """A child start that found its id taken: wait for that run, or take its end now."""
    row = conn.execute(
        "SELECT parent_id, status, result, error FROM runs WHERE id = ?", (child_id,)
    ).fetchone()
    if row[1] in ("COMPLETED", "FAILED", "CANCELLED"):
        return tell_parent(conn, parent_id, child_id, Finish(Status(row[1]), row[2], row[3]), now)
    if row[0] is None:
        conn.execute("UPDATE runs SET parent_id = ? WHERE id = ?", (parent_id, child_id))
    return set()


def tell_parent(
    conn: sqlite3.Connection, parent_id: str, run_id: str, outcome: Finish, now: float
) -> set[str]:
    """Send a parent the end of its child, if the parent is open and started that child.

    A parent that continued as new since has a journal without that child's start: the
    end of a child from an earlier incarnation would wait in its mailbox forever.
    """
    row = conn.execute(
        f"SELECT 1 FROM runs WHERE id = ? AND {_OPEN} AND EXISTS (SELECT 1 FROM journal"
        " WHERE run_id = ? AND event = 'start' AND kind = 'child' AND payload = ?)",
        (parent_id, parent_id, child_start_payload(run_id)),
    ).fetchone()
    if row is None:
        return set()  # the parent ended first, or forgot the child: nobody waits for it
    payload = child_done_payload(run_id, str(outcome.status), outcome.result, outcome.error)
    stored, _ = insert_signal(
        conn, parent_id, child_signal(run_id), payload, f"child:{run_id}", now
    )
    return {run_topic(parent_id), WORK} if stored else set()


class SqliteLinks:
    """The Store methods of events and children, for ``SqliteStore``."""

    _notifier: Notifier

    if TYPE_CHECKING:

        async def _read(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def get_event(self, run_id: str, key: str) -> str | None:
        def select(conn: sqlite3.Connection, run_id: str, key: str) -> str | None:
            row = conn.execute(
                "SELECT value FROM events WHERE run_id = ? AND key = ?", (run_id, key)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._read("read event", functools.partial(select, run_id=run_id, key=key))

    async def child_ids(self, run_id: str) -> list[str]:
        def select(conn: sqlite3.Connection, run_id: str) -> list[str]:
            rows = conn.execute(
                "SELECT id FROM runs WHERE parent_id = ? ORDER BY created_at, id", (run_id,)
            ).fetchall()
            return [str(row[0]) for row in rows]

        return await self._read("list children", functools.partial(select, run_id=run_id))
