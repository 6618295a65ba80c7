"""Postgres queries that link runs to each other and to clients: children, events, restarts.

``apply_links`` runs inside the commit transaction of a run, right after the fenced
statement that wrote its own row and journal, for the rare commits that start children,
publish events, restart the run (continue-as-new), cancel its children or tell its
parent it ended. It returns the notification topics to fire.
"""

from __future__ import annotations

import asyncpg

from .._wire import CANCELLED_BEFORE_START, child_start_payload
from . import _rules
from ._notify import WORK, event_topic
from ._postgres_db import NOW
from ._postgres_flows import CANCEL_OPEN_JOBS, insert_signal
from ._records import Commit, Finish

_OPEN = "status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"

_START_CHILDREN = f"""
INSERT INTO runs (id, workflow, status, args, runnable_at, created_at, updated_at, parent_id,
    queue, priority, trace_context)
SELECT c.id, c.workflow, 'PENDING', c.args, {NOW}, {NOW}, {NOW}, $4, c.queue, c.priority,
    c.trace_context
FROM unnest($1::text[], $2::text[], $3::text[], $5::text[], $6::int[], $7::text[])
    AS c(id, workflow, args, queue, priority, trace_context)
ON CONFLICT (id) DO NOTHING
"""

_PUT_EVENTS = f"""
INSERT INTO events (run_id, key, value, updated_at)
SELECT $1, e.key, e.value, {NOW} FROM unnest($2::text[], $3::text[]) AS e(key, value)
ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value,
    updated_at = excluded.updated_at
"""

_PUT_TAGS = """
INSERT INTO run_tags (run_id, key, value)
SELECT $1, t.key, t.value FROM unnest($2::text[], $3::text[]) AS t(key, value)
ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value
"""

_END_NEVER_STARTED = f"""
UPDATE runs SET status = 'CANCELLED', error = $2, cancel_requested = true,
    runnable_at = NULL, updated_at = {NOW}
WHERE parent_id = ANY($1::text[]) AND status IN ('PENDING', 'PAUSED') AND epoch = 0
    AND lease_owner IS NULL
RETURNING id
"""

_REQUEST_CANCEL = f"""
UPDATE runs SET cancel_requested = true, mailbox_version = mailbox_version + 1,
    paused_reason = NULL, status = CASE WHEN status = 'PAUSED' THEN 'WAITING' ELSE status END,
    runnable_at = CASE WHEN lease_owner IS NULL AND parked_reason IS NULL THEN {NOW}
        ELSE runnable_at END,
    updated_at = {NOW}
WHERE parent_id = ANY($1::text[]) AND {_OPEN} AND NOT cancel_requested
RETURNING id
"""


async def apply_links(conn: asyncpg.Connection, commit: Commit) -> set[str]:
    """Write what a commit does beyond its own run; return the topics to notify."""
    run_id = commit.fence.run_id
    topics: set[str] = set()
    if commit.children:
        result = await conn.execute(
            _START_CHILDREN,
            [c.run_id for c in commit.children],
            [c.workflow for c in commit.children],
            [c.args for c in commit.children],
            run_id,
            [c.queue for c in commit.children],
            [c.priority for c in commit.children],
            [c.trace_context for c in commit.children],
        )
        if not result.endswith(f" {len(commit.children)}"):  # some ids name runs already
            for child in commit.children:
                topics |= await _adopt(conn, run_id, child.run_id)
        if not result.endswith(" 0"):
            topics.add(WORK)
    if commit.events:
        keys = [key for key, _ in commit.events]
        values = [value for _, value in commit.events]
        await conn.execute(_PUT_EVENTS, run_id, keys, values)
        topics.add(event_topic(run_id))
    if commit.tags:
        tags = dict(commit.tags)  # the latest value of a key wins
        await conn.execute(_PUT_TAGS, run_id, list(tags), list(tags.values()))
    links = _rules.links(commit)
    if links.restart:
        await conn.execute("DELETE FROM journal WHERE run_id = $1", run_id)
        await conn.execute(
            "DELETE FROM signals WHERE run_id = $1 AND consumed_seq IS NOT NULL", run_id
        )
    if links.cancel_children:
        topics |= await cancel_children(conn, [run_id])
    if links.parent_end is not None and commit.parent_id is not None:
        topics |= await tell_parent(conn, commit.parent_id, run_id, links.parent_end)
    return topics


async def cancel_children(conn: asyncpg.Connection, parents: list[str]) -> set[str]:
    """Request cancellation of the open children of ``parents``; end never-started ones."""
    ended = await conn.fetch(_END_NEVER_STARTED, parents, CANCELLED_BEFORE_START)
    for row in ended:
        await conn.execute(CANCEL_OPEN_JOBS, row[0])
    requested = await conn.fetch(_REQUEST_CANCEL, parents)
    return _rules.cancelled_topics(row[0] for row in [*ended, *requested])


async def cancel_descendants(conn: asyncpg.Connection, *run_ids: str) -> set[str]:
    """Request cancellation of every open run below ``run_ids``, generation by generation
    (two statements per generation, however many runs)."""
    topics: set[str] = set()
    generation = list(run_ids)
    while generation:
        topics |= await cancel_children(conn, generation)
        rows = await conn.fetch("SELECT id FROM runs WHERE parent_id = ANY($1::text[])", generation)
        generation = [row[0] for row in rows]
    return topics


async def _adopt(conn: asyncpg.Connection, parent_id: str, child_id: str) -> set[str]:
    """A child start that found its id taken: wait for that run, or take its end now.

    Children this commit created just now have this parent already and are open: no-ops.
    """
    row = await conn.fetchrow(
        "SELECT parent_id, status, result, error FROM runs WHERE id = $1", child_id
    )
    adopt = _rules.adoption(row[0], row[1], row[2], row[3])
    if isinstance(adopt, Finish):
        return await tell_parent(conn, parent_id, child_id, adopt)
    if adopt:
        await conn.execute("UPDATE runs SET parent_id = $2 WHERE id = $1", child_id, parent_id)
    return set()


async def lock_parent(conn: asyncpg.Connection, parent_id: str) -> None:
    """Lock a parent's row before its child's: the order every other path takes."""
    await conn.execute("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", parent_id)


async def tell_parent(
    conn: asyncpg.Connection, parent_id: str, run_id: str, outcome: Finish
) -> set[str]:
    """Send a parent the end of its child, if the parent is open and started that child.

    A parent that continued as new since has a journal without that child's start: the
    end of a child from an earlier incarnation would wait in its mailbox forever.
    """
    open_ = await conn.fetchval(
        f"SELECT 1 FROM runs WHERE id = $1 AND {_OPEN} AND EXISTS (SELECT 1 FROM journal"
        " WHERE run_id = $1 AND event = 'start' AND kind = 'child' AND payload = $2)",
        parent_id,
        child_start_payload(run_id),
    )
    if open_ is None:
        return set()  # the parent ended first, or forgot the child: nobody waits for it
    stored = await insert_signal(conn, parent_id, *_rules.child_end(run_id, outcome))
    return _rules.told_topics(parent_id, stored)
