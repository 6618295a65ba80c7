"""Runs started at the same moment (a fan-out) are created together, each as if alone."""

from __future__ import annotations

import anyio
import pytest

import durable
from durable.info import Status
from durable.store import LATEST_VERSION, RunQuery, RunRecord, Store

pytestmark = pytest.mark.anyio


async def test_concurrent_starts_each_get_their_own_answer(store: Store):
    await store.create_run("taken", "other", "[1]")
    await store.put_definition("FLOW::a", "A", "{}")
    answers: dict[str, tuple[RunRecord, bool] | BaseException] = {}

    async def start(key: str, run_id: str, workflow: str, **options: object) -> None:
        try:
            answers[key] = await store.create_run(run_id, workflow, f'["{key}"]', **options)  # type: ignore[arg-type]
        except durable.DurableError as exc:
            answers[key] = exc

    async with anyio.create_task_group() as tg:
        for i in range(60):
            tags = [("batch", "b1"), ("i", str(i))]
            tg.start_soon(lambda i=i, tags=tags: start(f"n{i}", f"n{i}", "wf", tags=tags))
        tg.start_soon(lambda: start("dup-a", "dup", "wf"))
        tg.start_soon(lambda: start("dup-b", "dup", "wf"))
        tg.start_soon(lambda: start("taken", "taken", "wf"))
        tg.start_soon(lambda: start("flow", "f1", "FLOW::a", flow_version=LATEST_VERSION))
        tg.start_soon(lambda: start("no-def", "f2", "FLOW::none", flow_version=LATEST_VERSION))

    for i in range(60):
        answer = answers[f"n{i}"]
        assert isinstance(answer, tuple)
        run, created = answer
        assert created and run.id == f"n{i}" and run.status is Status.PENDING
        assert run.args == f'["n{i}"]' and run.tags == {"batch": "b1", "i": str(i)}
        stored = await store.get_run(f"n{i}")
        assert stored is not None and stored.tags == {"batch": "b1", "i": str(i)}
    # the same id started twice at once: one run, created once, the other start sees it
    dup_a, dup_b = answers["dup-a"], answers["dup-b"]
    assert isinstance(dup_a, tuple) and isinstance(dup_b, tuple)
    assert sorted([dup_a[1], dup_b[1]]) == [False, True]
    assert dup_a[0].args == dup_b[0].args
    taken = answers["taken"]
    assert isinstance(taken, tuple) and taken == (taken[0], False) and taken[0].workflow == "other"
    flow = answers["flow"]
    assert isinstance(flow, tuple) and flow[1] and flow[0].flow_version == 1
    assert isinstance(answers["no-def"], durable.DefinitionNotFoundError)
    assert await store.get_run("f2") is None
    tagged = await store.list_runs(limit=100, query=RunQuery(tags=(("batch", "b1"),)))
    assert len(tagged) == 60
