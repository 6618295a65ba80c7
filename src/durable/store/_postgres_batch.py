"""Group commit on Postgres: the journal commits of many runs in one statement.

A busy worker finishes steps of many runs at once. Committing each on its own costs a
round trip and a WAL flush per step; here the commits that arrive while earlier ones
are being written wait and then go together, in one statement (one transaction, one
WAL flush), as the SQLite store's ``_flush`` does. With nothing in flight a commit goes
at once, alone, so a lone run's latency is unchanged.

Every commit of a batch is still fenced on its own: the statement locks the rows of the
batch's runs (in id order, so two batches never deadlock each other) whose epoch is
still the writer's, and writes the journal rows, consumed signals and outcome only for
those. A run whose fence failed gets ``LeaseLostError``; the others commit. If the
statement fails as a whole (a lost connection, a deadlock with another writer), each
commit of the batch is retried on its own, so one bad commit fails only its own run.

Only the hot path is batched: commits that journal progress or finish a run, with no
links to other runs (children, events, parents, restarts; see ``Commit.has_links``).
Suspensions, parks and releases take the single-commit path of the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from ._coalesce import Coalescer
from ._notify import Notifier, run_topic
from ._postgres_db import NOW
from ._postgres_flows import CANCEL_OPEN_JOBS
from ._records import Commit, Finish
from ._rules import lease_lost

_CANCEL_JOBS_OF_FINISHED = CANCEL_OPEN_JOBS.replace(
    "WHERE run_id = $1", "WHERE run_id IN (SELECT id FROM fence WHERE finished)"
)
assert _CANCEL_JOBS_OF_FINISHED != CANCEL_OPEN_JOBS, "CANCEL_OPEN_JOBS changed its shape"

_BATCH = f"""
WITH c AS (
    SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[])
        AS c(run_id, epoch, status, result, error)
), locked AS (
    SELECT r.id FROM runs r JOIN c ON c.run_id = r.id
    WHERE r.epoch = c.epoch AND r.lease_owner IS NOT NULL
    ORDER BY r.id FOR UPDATE OF r
), fence AS (
    UPDATE runs r SET updated_at = {NOW},
        status = COALESCE(c.status, r.status),
        result = CASE WHEN c.status IS NULL THEN r.result ELSE c.result END,
        error = CASE WHEN c.status IS NULL THEN r.error ELSE c.error END,
        lease_owner = CASE WHEN c.status IS NULL THEN r.lease_owner END,
        runnable_at = CASE WHEN c.status IS NULL THEN r.runnable_at END,
        wait_signals = CASE WHEN c.status IS NULL THEN r.wait_signals END
    FROM c WHERE r.id = c.run_id AND r.id IN (SELECT id FROM locked)
    RETURNING r.id, c.status IS NOT NULL AS finished, r.paused_reason IS NOT NULL AS pausing
), entries AS (
    INSERT INTO journal (run_id, pos, seq, event, kind, name, fingerprint, payload, created_at)
    SELECT e.* FROM unnest($6::text[], $7::int[], $8::int[], $9::text[], $10::text[],
                           $11::text[], $12::text[], $13::text[], $14::float8[])
        AS e(run_id, pos, seq, event, kind, name, fingerprint, payload, created_at)
    WHERE e.run_id IN (SELECT id FROM fence)
), consumed AS (
    UPDATE signals s SET consumed_seq = x.seq
    FROM unnest($15::text[], $16::bigint[], $17::int[]) AS x(run_id, id, seq)
    WHERE s.id = x.id AND s.run_id = x.run_id AND x.run_id IN (SELECT id FROM fence)
), cancelled_jobs AS (
    {_CANCEL_JOBS_OF_FINISHED.strip()}
), notified AS (
    SELECT pg_notify($18, 'run:' || id) FROM fence WHERE finished
)
SELECT id, finished, pausing, (SELECT count(*) FROM notified) FROM fence
"""


def batchable(commit: Commit) -> bool:
    """Whether a commit can share a statement with others (see the module)."""
    return not commit.has_links and (commit.outcome is None or isinstance(commit.outcome, Finish))


class CommitBatcher(Coalescer[Commit, bool]):
    """Groups the batchable commits of one store into shared statements.

    ``submit`` returns whether the run is asked to pause (``RunStore.commit``), or raises
    ``LeaseLostError`` when the commit's fence failed.
    """

    def __init__(
        self,
        connect: Callable[[str], contextlib.AbstractAsyncContextManager[asyncpg.Connection]],
        channel: str,
        notifier: Notifier,
        commit_one: Callable[[Commit], Awaitable[bool]],
    ) -> None:
        super().__init__(self._write, commit_one, key=_run_id)
        self._connect = connect
        self._channel = channel
        self._notifier = notifier

    async def _write(self, commits: list[Commit]) -> list[bool | BaseException]:
        """Apply the batch; per commit, whether its run is asked to pause, or the
        ``LeaseLostError`` of a failed fence."""
        finishes = [c.outcome if isinstance(c.outcome, Finish) else None for c in commits]
        entries = [(c.fence.run_id, e) for c in commits for e in c.entries]
        consumed = [(c.fence.run_id, s, q) for c in commits for s, q in c.consumed_signals]
        args: list[Any] = [
            [c.fence.run_id for c in commits],
            [c.fence.epoch for c in commits],
            [None if f is None else str(f.status) for f in finishes],
            [None if f is None else f.result for f in finishes],
            [None if f is None else f.error for f in finishes],
            [run_id for run_id, _ in entries],
            [e.pos for _, e in entries],
            [e.seq for _, e in entries],
            [e.event for _, e in entries],
            [e.kind for _, e in entries],
            [e.name for _, e in entries],
            [e.fingerprint for _, e in entries],
            [e.payload for _, e in entries],
            [e.created_at for _, e in entries],
            [run_id for run_id, _, _ in consumed],
            [signal for _, signal, _ in consumed],
            [seq for _, _, seq in consumed],
            self._channel,
        ]
        async with self._connect("commit") as conn:
            rows = await conn.fetch(_BATCH, *args)
        held = {row[0]: (row[1], row[2]) for row in rows}
        results: list[bool | BaseException] = []
        for commit in commits:
            run_id = commit.fence.run_id
            found = held.get(run_id)
            if found is None:
                results.append(lease_lost(run_id))
                continue
            finished, pausing = found
            if finished:
                self._notifier.notify(run_topic(run_id))
            results.append(pausing)
        return results


def _run_id(commit: Commit) -> str:
    return commit.fence.run_id
