"""Commits of many runs written together (group commit) stay fenced one by one."""

from __future__ import annotations

import time

import anyio
import pytest

import durable
from durable.store import Commit, Fence, Finish, JournalEntry, Store

pytestmark = pytest.mark.anyio


def entry(pos: int, seq: int, payload: str = "1") -> JournalEntry:
    return JournalEntry(pos, seq, "result", "activity", "a", None, payload, time.time())


async def _commit(store: Store, commit: Commit, outcomes: dict[str, object]) -> None:
    try:
        await store.commit(commit)
    except durable.DurableError as exc:
        outcomes[commit.fence.run_id] = exc
    else:
        outcomes[commit.fence.run_id] = None


async def test_concurrent_commits_of_many_runs_are_each_fenced(store: Store):
    ids = [f"r{i}" for i in range(40)]
    for run_id in ids:
        await store.create_run(run_id, "wf", "{}")
    claimed = {run.id: run for run in await store.claim("w1", 100, 30)}
    assert set(claimed) == set(ids)
    commits = []
    for i, run_id in enumerate(ids):
        epoch = claimed[run_id].epoch
        if run_id == "r7":
            epoch -= 1  # a writer whose lease was taken over
        outcome = Finish(durable.Status.COMPLETED, result=str(i)) if i % 2 else None
        commits.append(Commit(Fence(run_id, epoch), [entry(0, 1), entry(1, 2)], outcome=outcome))
    outcomes: dict[str, object] = {}
    async with anyio.create_task_group() as tg:
        for commit in commits:
            tg.start_soon(_commit, store, commit, outcomes)
    assert isinstance(outcomes.pop("r7"), durable.LeaseLostError)
    assert all(outcome is None for outcome in outcomes.values())
    assert await store.read_journal("r7") == []
    for i, run_id in enumerate(ids):
        if run_id == "r7":
            continue
        assert [e.pos for e in await store.read_journal(run_id)] == [0, 1]
        run = await store.get_run(run_id)
        assert run is not None
        if i % 2:
            assert run.status is durable.Status.COMPLETED and run.result == str(i)
        else:
            assert run.status is durable.Status.RUNNING


async def test_a_failing_commit_fails_only_its_own_run(store: Store):
    ids = [f"r{i}" for i in range(10)]
    for run_id in ids:
        await store.create_run(run_id, "wf", "{}")
    claimed = {run.id: run for run in await store.claim("w1", 100, 30)}
    for run_id in ids:  # position 0 is taken in every journal
        await store.commit(Commit(Fence(run_id, claimed[run_id].epoch), [entry(0, 1)]))
    outcomes: dict[str, object] = {}
    async with anyio.create_task_group() as tg:
        for run_id in ids:
            pos = 0 if run_id == "r3" else 1  # r3 writes position 0 again: refused
            commit = Commit(Fence(run_id, claimed[run_id].epoch), [entry(pos, 2)])
            tg.start_soon(_commit, store, commit, outcomes)
    assert isinstance(outcomes.pop("r3"), durable.StoreError)
    assert all(outcome is None for outcome in outcomes.values())
    assert [e.pos for e in await store.read_journal("r3")] == [0]
    for run_id in ids:
        if run_id != "r3":
            assert [e.pos for e in await store.read_journal(run_id)] == [0, 1]
