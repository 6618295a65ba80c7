"""Postgres queries of runs: creation, journals, signals, cancellation, leases, commits.

Every journal write is a single statement whose first step updates the run's row *only
if* the writer's epoch is still the run's epoch: that row lock serializes the write with
any takeover, and a fenced-out writer inserts nothing. Commits without links to other
runs are grouped with other runs' commits (``_postgres_batch``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..errors import DefinitionNotFoundError, RunNotFoundError, StoreError
from ..info import Status
from . import _rules
from ._notify import WORK, run_topic
from ._postgres_batch import CommitBatcher, batchable
from ._postgres_db import NOW, PostgresDb, delay_until
from ._postgres_flows import CANCEL_OPEN_JOBS, CANCEL_OPEN_JOBS_OF_MANY, has_signal, insert_signal
from ._postgres_links import apply_links, cancel_descendants, lock_parent, tell_parent
from ._postgres_starts import NewRun, StartBatcher
from ._records import (
    JOURNAL_COLUMNS,
    LATEST_VERSION,
    RUN_COLUMNS,
    Commit,
    Fence,
    Finish,
    JournalEntry,
    LeaseState,
    Park,
    Release,
    Restart,
    RunQuery,
    RunRecord,
    SignalRecord,
    Suspend,
    journal_entries,
    run_from_row,
)
from ._rules import Cancel

_RENEW = f"""
UPDATE runs r SET runnable_at = {NOW} + $3
FROM unnest($1::text[], $2::int[]) AS f(id, epoch)
WHERE r.id = f.id AND r.epoch = f.epoch AND r.lease_owner = $4 AND r.runnable_at > {NOW}
RETURNING r.id, r.mailbox_version, r.cancel_requested
"""

# The first CTE is the fence: it locks the run's row and matches only under the writer's
# epoch; the journal rows and signal consumption happen only if it matched.
_COMMIT = """
WITH fence AS (
    UPDATE runs SET updated_at = {now}{outcome}
    WHERE id = $1 AND epoch = $2 AND lease_owner IS NOT NULL
    RETURNING id, paused_reason IS NOT NULL AS pausing
), entries AS (
    INSERT INTO journal (run_id, pos, seq, event, kind, name, fingerprint, payload, created_at)
    SELECT $1, e.* FROM unnest($3::int[], $4::int[], $5::text[], $6::text[], $7::text[],
                               $8::text[], $9::text[], $10::float8[]) AS e
    WHERE EXISTS (SELECT 1 FROM fence)
), consumed AS (
    UPDATE signals s SET consumed_seq = c.seq
    FROM unnest($11::bigint[], $12::int[]) AS c(id, seq)
    WHERE s.id = c.id AND s.run_id = $1 AND EXISTS (SELECT 1 FROM fence)
){jobs}
SELECT count(*), bool_or(pausing) FROM fence
"""

# Only a commit that finishes its run adds this: nobody waits for the outcome of the
# run's external jobs any more. The fence has locked the run's row first.
_FINISH_JOBS = f""", cancelled_jobs AS (
    {CANCEL_OPEN_JOBS.strip()} AND EXISTS (SELECT 1 FROM fence)
)"""

# A run asked to pause is given back PAUSED by the commit that releases it.
_WAITING_OR_PAUSED = "CASE WHEN paused_reason IS NULL THEN 'WAITING' ELSE 'PAUSED' END"

_OUTCOMES = {
    type(None): "",
    Suspend: (
        f", status = {_WAITING_OR_PAUSED}, lease_owner = NULL, wait_signals = $13::text[],"
        # A cancel request bumps the mailbox version too: a cancelled run that cleans
        # up with a durable wait sleeps like any other, instead of waking at once.
        # The wake-up is sent as a delay and added to the server's clock (``delay_until``).
        f" runnable_at = CASE WHEN paused_reason IS NOT NULL THEN NULL"
        f" WHEN mailbox_version <> $14 THEN {NOW} ELSE {NOW} + $15::float8 END"
    ),
    Finish: (
        ", status = $13, result = $14, error = $15, lease_owner = NULL, runnable_at = NULL,"
        " wait_signals = NULL"
    ),
    Park: ", status = 'WAITING', parked_reason = $13, lease_owner = NULL, runnable_at = NULL",
    Release: (
        ", status = CASE WHEN paused_reason IS NULL THEN 'PENDING' ELSE 'PAUSED' END,"
        f" lease_owner = NULL, runnable_at = CASE WHEN paused_reason IS NULL THEN {NOW} END"
    ),
    Restart: ", args = $13",
}

# The tags are inserted by the same statement, only when the run is new. A flow run
# started at LATEST_VERSION is pinned here to its definition's latest version, if any.
_CREATE = f"""
WITH ins AS (
    INSERT INTO runs (id, workflow, status, args, runnable_at, created_at, updated_at,
        business_key, flow_version, queue, priority, trace_context)
    SELECT $1, $2, 'PENDING', $3, {NOW}, {NOW}, {NOW}, $5, v.version, $7, $8, $9
    FROM (SELECT CASE WHEN $6::int = {LATEST_VERSION}
        THEN (SELECT max(version) FROM definitions WHERE id = $2) ELSE $6::int END AS version) v
    WHERE v.version IS NOT NULL OR $6::int IS NULL
    ON CONFLICT (id) DO NOTHING RETURNING {RUN_COLUMNS}
), tagged AS (
    INSERT INTO run_tags (run_id, key, value)
    SELECT ins.id, t.key, t.value FROM ins, unnest($10::text[], $11::text[]) AS t(key, value)
)
SELECT {RUN_COLUMNS}, pg_notify($4, 'work') FROM ins
"""
_TAGS = "(SELECT json_object_agg(key, value) FROM run_tags t WHERE t.run_id = runs.id)::text"
BY_ID = f"SELECT {RUN_COLUMNS}, {_TAGS} FROM runs WHERE id = $1"

# One batch of a bulk cancel: open runs not yet asked to cancel, skipping rows a commit
# holds now (the next batch takes them).
_CANCEL_BATCH = """
SELECT id, status, lease_owner, parked_reason, epoch, parent_id FROM runs
WHERE {where} ORDER BY id LIMIT {limit} FOR UPDATE SKIP LOCKED
"""
_END_MANY = f"""
UPDATE runs SET status = 'CANCELLED', error = $2, cancel_requested = true,
    runnable_at = NULL, updated_at = {NOW}
WHERE id = ANY($1::text[])
"""
_REQUEST_MANY = f"""
UPDATE runs SET cancel_requested = true, mailbox_version = mailbox_version + 1,
    paused_reason = NULL, status = CASE WHEN status = 'PAUSED' THEN 'WAITING' ELSE status END,
    runnable_at = CASE WHEN lease_owner IS NULL THEN {NOW} ELSE runnable_at END,
    updated_at = {NOW}
WHERE id = ANY($1::text[])
"""


class PostgresRuns:
    """The run operations of the Postgres store (``RunStore``)."""

    def __init__(self, db: PostgresDb) -> None:
        self._conn = db.conn
        self._notify = db.notify
        self._notifier = db.notifier
        self._channel = db.channel
        self._batcher = CommitBatcher(db.conn, db.channel, db.notifier, self._commit_one)
        self._starts = StartBatcher(db.conn, db.channel, db.notifier, self._create_one)

    async def close(self) -> None:
        """Wait for the commits and starts being written."""
        await self._batcher.close()
        await self._starts.close()

    # -- client operations ----------------------------------------------------------
    async def create_run(
        self,
        run_id: str,
        workflow: str,
        args: str,
        *,
        business_key: str | None = None,
        flow_version: int | None = None,
        queue: str = "default",
        priority: int = 0,
        trace_context: str | None = None,
        tags: Sequence[tuple[str, str]] = (),
    ) -> tuple[RunRecord, bool]:
        start = NewRun(
            run_id, workflow, args, business_key, flow_version, queue, priority,
            trace_context, tags,
        )  # fmt: skip
        return await self._starts.submit(start)

    async def _create_one(self, start: NewRun) -> tuple[RunRecord, bool]:
        run_id, workflow, args = start.run_id, start.workflow, start.args
        flow_version, tags = start.flow_version, start.tags
        keys, values = [k for k, _ in tags], [v for _, v in tags]
        extra = (
            self._channel, start.business_key, flow_version, start.queue, start.priority,
            start.trace_context,
        )  # fmt: skip
        async with self._conn("create run") as conn:
            for _ in range(3):
                row = await conn.fetchrow(_CREATE, run_id, workflow, args, *extra, keys, values)
                if row is not None:
                    self._notifier.notify(WORK)
                    return replace(run_from_row(row), tags=dict(tags)), True
                found = await conn.fetchrow(BY_ID, run_id)
                if found is not None:
                    return run_from_row(found), False
                if flow_version == LATEST_VERSION:
                    raise DefinitionNotFoundError(f"no definition {workflow!r} is stored")
        raise StoreError(f"postgres: create run {run_id!r} failed: it was inserted and removed")

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self._conn("get run") as conn:
            row = await conn.fetchrow(BY_ID, run_id)
        return None if row is None else run_from_row(row)

    async def list_runs(
        self,
        *,
        status: Status | None = None,
        workflow: str | None = None,
        limit: int,
        business_key: str | None = None,
        query: RunQuery | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        query = _rules.merged_query(query, status, workflow, business_key)
        where, values = where_clause(_rules.query_conditions(query, before))
        sql = (
            f"SELECT {RUN_COLUMNS}, {_TAGS} FROM runs {where}"
            f" ORDER BY created_at DESC, id DESC LIMIT ${len(values) + 1}"
        )
        async with self._conn("list runs") as conn:
            rows = await conn.fetch(sql, *values, limit)
        return [run_from_row(r) for r in rows]

    async def bulk_cancel(self, query: RunQuery, *, dry_run: bool = False, batch: int = 500) -> int:
        conditions = [*_rules.query_conditions(query), (_rules.BULK_CANCELLABLE, ())]
        where, values = where_clause(conditions)
        if dry_run:
            async with self._conn("count runs") as conn:
                return int(await conn.fetchval(f"SELECT count(*) FROM runs {where}", *values))
        sql = _CANCEL_BATCH.format(where=where.removeprefix("WHERE "), limit=int(batch))
        done = tries = 0
        while True:
            async with self._conn("cancel runs") as conn, conn.transaction():
                rows = await conn.fetch(sql, *values)
                plan = _rules.bulk_cancel_plan([tuple(r) for r in rows])
                topics = _rules.cancelled_topics([*plan.end, *plan.request])
                if plan.end:
                    await conn.execute(_END_MANY, plan.end, _rules.ENDED_UNSTARTED.error)
                    await conn.execute(CANCEL_OPEN_JOBS_OF_MANY, plan.end)
                if plan.request:
                    await conn.execute(_REQUEST_MANY, plan.request)
                if rows:
                    topics |= await cancel_descendants(conn, *plan.end, *plan.request)
                if topics:
                    await self._notify(conn, *sorted(topics))
            for run_id in plan.children:  # parent first: the single cancel's lock order
                await self.request_cancel(run_id)
            done += len(rows)
            if not rows:
                if tries >= 50 or not await self._any(where, values):
                    return done
                tries += 1  # rows a commit held: take them once it is written
                await asyncio.sleep(0.02)

    async def _any(self, where: str, values: list[object]) -> bool:
        async with self._conn("count runs") as conn:
            return bool(await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM runs {where})", *values))

    async def read_journal(self, run_id: str) -> list[JournalEntry]:
        async with self._conn("read journal") as conn:
            rows = await conn.fetch(
                f"SELECT {JOURNAL_COLUMNS} FROM journal WHERE run_id = $1 ORDER BY pos", run_id
            )
        return journal_entries(rows)

    async def send_signal(
        self, run_id: str, name: str, payload: str, *, dedupe_key: str | None = None
    ) -> bool:
        async with self._conn("send signal") as conn, conn.transaction():
            status = await conn.fetchval("SELECT status FROM runs WHERE id = $1 FOR UPDATE", run_id)
            if not _rules.signal_target(run_id, status):
                repeated = dedupe_key is not None and await has_signal(conn, run_id, dedupe_key)
                return _rules.closed_signal(run_id, status, repeated)
            stored = await insert_signal(conn, run_id, name, payload, dedupe_key)
            if stored:
                await self._notify(conn, run_topic(run_id), WORK)
        return stored

    async def request_cancel(self, run_id: str) -> RunRecord:
        async with self._conn("cancel run") as conn, conn.transaction():
            parent_id = await conn.fetchval("SELECT parent_id FROM runs WHERE id = $1", run_id)
            if parent_id is not None:  # rows are locked parent first, on every path
                await lock_parent(conn, parent_id)
            row = await conn.fetchrow(
                "SELECT status, lease_owner, parked_reason, epoch, parent_id FROM runs"
                " WHERE id = $1 FOR UPDATE",
                run_id,
            )
            if row is None:
                raise RunNotFoundError(run_id)
            action = _rules.cancel_action(row[0], row[1], row[2], row[3])
            topics = {run_topic(run_id), WORK}
            if action is Cancel.END:
                await conn.execute(CANCEL_OPEN_JOBS, run_id)
                await conn.execute(
                    "UPDATE runs SET status = 'CANCELLED', error = $2, cancel_requested = true,"
                    f" runnable_at = NULL, updated_at = {NOW} WHERE id = $1",
                    run_id,
                    _rules.ENDED_UNSTARTED.error,
                )
                if row[4] is not None:  # a child: its parent waits for its end
                    topics |= await tell_parent(conn, row[4], run_id, _rules.ENDED_UNSTARTED)
            elif action is Cancel.REQUEST:
                await conn.execute(
                    "UPDATE runs SET cancel_requested = true,"
                    " mailbox_version = mailbox_version + 1, paused_reason = NULL,"
                    " status = CASE WHEN status = 'PAUSED' THEN 'WAITING' ELSE status END,"
                    f" runnable_at = CASE WHEN lease_owner IS NULL THEN {NOW} ELSE runnable_at END,"
                    f" updated_at = {NOW} WHERE id = $1",
                    run_id,
                )
            topics |= await cancel_descendants(conn, run_id)
            await self._notify(conn, *sorted(topics))
            found = await conn.fetchrow(BY_ID, run_id)
        return run_from_row(found)

    async def get_event(self, run_id: str, key: str) -> str | None:
        async with self._conn("read event") as conn:
            value = await conn.fetchval(
                "SELECT value FROM events WHERE run_id = $1 AND key = $2", run_id, key
            )
        return None if value is None else str(value)

    async def child_ids(self, run_id: str) -> list[str]:
        async with self._conn("list children") as conn:
            rows = await conn.fetch(
                "SELECT id FROM runs WHERE parent_id = $1 ORDER BY created_at, id", run_id
            )
        return [str(row[0]) for row in rows]

    # -- worker operations ----------------------------------------------------------
    async def renew(
        self, owner: str, fences: list[Fence], lease_seconds: float
    ) -> dict[str, LeaseState]:
        ids = [f.run_id for f in fences]
        epochs = [f.epoch for f in fences]
        async with self._conn("renew leases") as conn:
            rows = await conn.fetch(_RENEW, ids, epochs, lease_seconds, owner)
        return {r[0]: LeaseState(r[1], r[2]) for r in rows}

    async def pending_signals(self, run_id: str, after_id: int) -> list[SignalRecord]:
        async with self._conn("read signals") as conn:
            rows = await conn.fetch(
                "SELECT id, name, payload FROM signals"
                " WHERE run_id = $1 AND consumed_seq IS NULL AND id > $2 ORDER BY id",
                run_id,
                after_id,
            )
        return [SignalRecord(*row) for row in rows]

    async def commit(self, commit: Commit) -> bool:
        if batchable(commit):  # shares a statement with other runs' commits
            return await self._batcher.submit(commit)
        return await self._commit_one(commit)

    async def _commit_one(self, commit: Commit) -> bool:
        outcome = commit.outcome
        jobs = _FINISH_JOBS if isinstance(outcome, Finish) else ""
        changes = _OUTCOMES[type(outcome)]
        args: list[Any] = [
            commit.fence.run_id,
            commit.fence.epoch,
            *journal_columns(commit.entries),
        ]
        args += [[s for s, _ in commit.consumed_signals], [q for _, q in commit.consumed_signals]]
        match outcome:
            case Suspend(wake_at=wake_at, signal_names=names, mailbox_version=seen):
                args += [list(names), seen, delay_until(wake_at)]
            case Finish(status=status, result=result, error=error):
                args += [str(status), result, error]
            case Park(reason=reason):
                args += [reason]
            case Restart(args=new_args):
                args += [new_args]
        if commit.pause is not None:
            args.append(commit.pause)
            changes += f", paused_reason = COALESCE(paused_reason, ${len(args)})"
        sql = _COMMIT.format(now=NOW, outcome=changes, jobs=jobs)
        async with self._conn("commit") as conn:
            links: set[str] = set()
            if commit.has_links:
                async with conn.transaction():
                    if commit.parent_id is not None:
                        await lock_parent(conn, commit.parent_id)
                    held, pausing = await conn.fetchrow(sql, *args)
                    if held:
                        links = await apply_links(conn, commit)
            else:
                held, pausing = await conn.fetchrow(sql, *args)
            if not held:
                raise _rules.lease_lost(commit.fence.run_id)
            topics = links.union(_rules.outcome_topics(commit.fence.run_id, outcome))
            if topics:
                await self._notify(conn, *sorted(topics))
        return bool(pausing)


def where_clause(
    conditions: list[tuple[str, tuple[object, ...]]], first: int = 1
) -> tuple[str, list[object]]:
    """A WHERE clause with parameters ``$first``, ... for ``query_conditions``, and their
    values."""
    parts: list[str] = []
    values: list[object] = []
    for template, args in conditions:
        marks = [f"${first - 1 + len(values) + n}" for n in range(1, len(args) + 1)]
        parts.append(template.format(*marks))
        values.extend(args)
    return (f"WHERE {' AND '.join(parts)}" if parts else ""), values


def journal_columns(entries: Sequence[JournalEntry]) -> list[list[Any]]:
    """Journal entries as one array per column, for ``unnest``."""
    return [
        [e.pos for e in entries],
        [e.seq for e in entries],
        [e.event for e in entries],
        [e.kind for e in entries],
        [e.name for e in entries],
        [e.fingerprint for e in entries],
        [e.payload for e in entries],
        [e.created_at for e in entries],
    ]
