"""Handle.fork(): a new run from a copy of a journal's prefix; the original is untouched."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

import durable

pytestmark = pytest.mark.anyio

calls: Counter[str] = Counter()
fixed = {"ok": False}


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    fixed["ok"] = False


@durable.activity
async def fk_step(label: str) -> str:
    calls[label] += 1
    return label


@durable.activity(retry=durable.RetryPolicy(max_attempts=1))
async def fk_ship(label: str) -> str:
    calls[f"ship-{label}"] += 1
    if not fixed["ok"]:
        raise ConnectionError("the carrier is down")
    return f"shipped {label}"


@durable.workflow(name="fk-four")
async def four(ctx: durable.Context, order: str) -> list[str]:
    ctx.set_event("order", order)
    return [await fk_step(f"{order}-{name}") for name in ("a", "b", "c", "d")]


@durable.workflow(name="fk-ship")
async def ship(ctx: durable.Context, order: str) -> list[str]:
    return [await fk_step(f"{order}-pack"), await fk_ship(order)]


def seq_of(history: list[durable.HistoryEvent], payload: str) -> int:
    return next(e.seq for e in history if e.event == "result" and e.payload == payload)


async def test_a_fork_runs_nothing_before_its_cut_again_and_leaves_the_original(app):
    async with app.worker():
        original = await app.start(four, "o1", id="fk-orig")
        assert await original.result(timeout=15) == ["o1-a", "o1-b", "o1-c", "o1-d"]
        before = await original.history()
        at = seq_of(before, "o1-c")
        fork = await original.fork(at, id="fk-copy")
        assert await fork.result(timeout=15) == ["o1-a", "o1-b", "o1-c", "o1-d"]
    assert calls == {"o1-a": 1, "o1-b": 1, "o1-c": 2, "o1-d": 2}  # only c and d again
    assert await original.history() == before
    assert (await original.describe()).status is durable.Status.COMPLETED
    desc = await fork.describe()
    assert desc.forked_from == ("fk-orig", at)
    assert await fork.get_event("order") == "o1"  # published before the cut: copied


async def test_a_fork_with_new_arguments_uses_them_from_the_cut_on(app):
    async with app.worker():
        original = await app.start(four, "o2", id="fk-args")
        await original.result(timeout=15)
        at = seq_of(await original.history(), "o2-c")
        fork = await original.fork(at, args=["o9"])
        assert await fork.result(timeout=15) == ["o2-a", "o2-b", "o9-c", "o9-d"]
    assert calls["o2-a"] == 1 and calls["o9-c"] == 1


async def test_a_fork_at_the_failure_point_after_a_fix_completes(app):
    async with app.worker():
        original = await app.start(ship, "o3", id="fk-failed")
        with pytest.raises(durable.WorkflowFailed, match="carrier"):
            await original.result(timeout=15)
        fixed["ok"] = True
        fork = await original.fork()
        assert await fork.result(timeout=15) == ["o3-pack", "shipped o3"]
    assert calls == {"o3-pack": 1, "ship-o3": 2}
    assert (await original.describe()).status is durable.Status.FAILED
    assert (await fork.describe()).forked_from == ("fk-failed", 2)


async def test_bad_fork_arguments_are_refused_naming_the_run(app):
    async with app.worker():
        original = await app.start(four, "o4", id="fk-bad")
        await original.result(timeout=15)
    with pytest.raises(durable.InvalidInputError, match="'fk-bad' at 99"):
        await original.fork(99)
    with pytest.raises(durable.InvalidInputError, match="code-first"):
        await original.fork(1, variables={"x": 1})
    await original.fork(1, id="fk-taken")
    with pytest.raises(durable.RunConflictError, match="'fk-taken'"):
        await original.fork(1, id="fk-taken")


@durable.activity(name="fork-test.mark")
async def mark(task: dict[str, Any]) -> dict[str, Any]:
    calls[task["stepId"]] += 1
    return {task["stepId"]: task["variables"].get("amount")}


def step(step_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "type": kind, **fields}


async def test_a_flow_forked_at_a_step_with_edited_variables(app):
    await app.definitions.upload(
        {
            "id": "FORK::flow",
            "name": "Fork flow",
            "steps": [
                step("first", "SERVICE_TASK", jobType="fork-test.mark", nextStep="second"),
                step("second", "SERVICE_TASK", jobType="fork-test.mark", nextStep="third"),
                step("third", "SERVICE_TASK", jobType="fork-test.mark", nextStep="done"),
                step("done", "END"),
            ],
        }
    )
    async with app.worker():
        original = await app.start_flow("FORK::flow", variables={"amount": 10}, id="fk-flow")
        result = await original.result(timeout=15)
        assert result["third"] == 10
        fork = await original.fork("second", variables={"amount": 25})
        forked = await fork.result(timeout=15)
    assert forked["first"] == 10 and forked["second"] == 25 and forked["third"] == 25
    assert calls == {"first": 1, "second": 2, "third": 2}
    desc = await fork.describe()
    assert desc.forked_from == ("fk-flow", "second")
    assert desc.variables is not None and desc.variables["amount"] == 25
    assert [s.step_id for s in await fork.steps()] == ["first", "second", "third", "done"]
    with pytest.raises(durable.InvalidInputError, match="never ran"):
        await original.fork("nowhere")
