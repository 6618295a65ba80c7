"""SQLite queries that link runs to each other and to clients: children, events, restarts.

``apply_links`` runs inside the commit transaction of a run, after its own row and
journal are written, for the rare commits that start children, publish events, restart
the run (continue-as-new), cancel its children or tell its parent it ended. It returns
the notification topics to fire once the transaction is durable.
"""

from __future__ import annotations

import sqlite3

from .._wire import CANCELLED_BEFORE_START, child_start_payload
from . import _rules
from ._notify import WORK, event_topic
from ._records import Commit, Finish
from ._sqlite_flows import cancel_open_jobs, insert_signal

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
    if commit.tags:
        conn.executemany(
            "INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)"
            " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            [(run_id, key, value) for key, value in commit.tags],
        )
    links = _rules.links(commit)
    if links.restart:
        conn.execute("DELETE FROM journal WHERE run_id = ?", (run_id,))
        conn.execute("DELETE FROM signals WHERE run_id = ? AND consumed_seq IS NOT NULL", (run_id,))
    if links.cancel_children:
        topics |= cancel_children(conn, [run_id], now)
    if links.parent_end is not None and commit.parent_id is not None:
        topics |= tell_parent(conn, commit.parent_id, run_id, links.parent_end, now)
    return topics


def cancel_children(conn: sqlite3.Connection, parents: list[str], now: float) -> set[str]:
    """Request cancellation of the open children of ``parents``; end never-started ones."""
    marks = ", ".join("?" * len(parents))
    never_started = conn.execute(
        f"SELECT id FROM runs WHERE parent_id IN ({marks}) AND status IN ('PENDING', 'PAUSED')"
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
    rows = conn.execute(
        f"UPDATE runs SET cancel_requested = 1, mailbox_version = mailbox_version + 1,"
        f" paused_reason = NULL, status = CASE WHEN status = 'PAUSED' THEN 'WAITING'"
        f"   ELSE status END,"
        f" runnable_at = CASE WHEN lease_owner IS NULL AND parked_reason IS NULL THEN ?"
        f"   ELSE runnable_at END, updated_at = ?"
        f" WHERE parent_id IN ({marks}) AND {_OPEN} AND NOT cancel_requested RETURNING id",
        (now, now, *parents),
    ).fetchall()
    return _rules.cancelled_topics(row[0] for row in [*never_started, *rows])


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
    adopt = _rules.adoption(row[0], row[1], row[2], row[3])
    if isinstance(adopt, Finish):
        return tell_parent(conn, parent_id, child_id, adopt, now)
    if adopt:
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
    stored, _ = insert_signal(conn, parent_id, *_rules.child_end(run_id, outcome), now)
    return _rules.told_topics(parent_id, stored)
