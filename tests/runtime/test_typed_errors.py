"""Typed exceptions: workflow code catches an activity's or a child's own exception type."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

import durable
from durable.testing import History, replay

pytestmark = pytest.mark.anyio

seen: list[dict[str, Any]] = []
FAST = durable.RetryPolicy(max_attempts=2, initial_interval=0.01, max_interval=0.01)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    seen.clear()


class CardDeclined(Exception):
    """Its constructor takes other arguments than ``args``: plain pickling fails on it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Vanishing(Exception):
    pass


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


@durable.activity(name="typed.charge", retry=FAST)
async def charge(order_id: str) -> str:
    raise CardDeclined("insufficient-funds", f"card for {order_id} declined")


@durable.activity(name="typed.vanish", retry=FAST)
async def vanish() -> None:
    raise Vanishing("gone soon")


@durable.activity(name="typed.locked", retry=FAST)
async def locked() -> None:
    raise Unpicklable("holds a lock")


@durable.workflow(name="typed.order")
async def order(ctx: durable.Context, order_id: str, wait: bool = False) -> dict[str, Any]:
    try:
        await charge(order_id)
    except CardDeclined as e:
        outcome = {
            "type": type(e).__name__,
            "code": e.code,
            "args": list(e.args),
            "message": str(e),
            "activity_error": isinstance(e, durable.ActivityError),
            "attempts": e.attempts if isinstance(e, durable.ActivityError) else None,
            "replaying": ctx.info.replaying,
        }
        seen.append(outcome)
    if wait:
        await ctx.wait_signal("go")
    return outcome


@durable.workflow(name="typed.fallback")
async def fallback(ctx: durable.Context, which: str) -> dict[str, Any]:
    try:
        await (vanish() if which == "vanish" else locked())
    except durable.ActivityError as e:
        seen.append({"class": type(e), "error_type": e.error_type, "message": e.error_message})
    await ctx.wait_signal("go")
    return {"done": which}


@durable.workflow(name="typed.child")
async def declining_child(ctx: durable.Context, order_id: str) -> str:
    raise CardDeclined("expired", f"card for {order_id} expired")


@durable.workflow(name="typed.parent")
async def parent(ctx: durable.Context, order_id: str) -> dict[str, Any]:
    try:
        await ctx.child(declining_child, order_id, id=f"{ctx.info.run_id}-child")
    except CardDeclined as e:
        return {
            "code": e.code,
            "args": list(e.args),
            "message": str(e),
            "workflow_failed": isinstance(e, durable.WorkflowFailed),
            "status": e.status if isinstance(e, durable.WorkflowFailed) else None,
        }
    return {}


async def test_workflow_catches_the_activitys_own_exception_type(app: durable.App) -> None:
    async with app.worker():
        handle = await app.start(order, "o-1", id="typed-1")
        result = await handle.result(timeout=20)
    assert result == {
        "type": "CardDeclined",
        "code": "insufficient-funds",
        "args": ["card for o-1 declined"],
        "message": "activity 'typed.charge' failed after 2 attempts: CardDeclined: "
        "card for o-1 declined",
        "activity_error": True,
        "attempts": 2,
        "replaying": False,
    }
    # the journal keeps the portable form beside the copy; callers see the portable form
    errors = [e.payload for e in await handle.history() if e.event == "error"]
    assert errors[0]["type"] == "CardDeclined"
    assert errors[0]["message"] == "card for o-1 declined"
    assert "pickle" in errors[0]


async def test_the_type_survives_replay_by_another_worker(app: durable.App) -> None:
    async with app.worker():
        handle = await app.start(order, "o-2", True, id="typed-2")
        await _wait_for(lambda: len(seen) == 1)
    async with app.worker():  # a new worker: the run is replayed from its journal
        await handle.signal("go")
        result = await handle.result(timeout=20)
    assert [s["replaying"] for s in seen] == [False, True]
    assert seen[0] | {"replaying": True} == seen[1] == result | {"replaying": True}
    assert result["code"] == "insufficient-funds"


async def test_testing_replay_sees_the_type(app: durable.App) -> None:
    async with app.worker():
        handle = await app.start(order, "o-3", id="typed-3")
        await handle.result(timeout=20)
    seen.clear()
    history = await History.fetch(app, handle.run_id)
    assert replay(order, history).outcome == "returned"
    assert seen and seen[0]["code"] == "insufficient-funds" and seen[0]["replaying"]


async def test_a_class_gone_at_replay_falls_back_to_activity_error(
    app: durable.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app.worker():
        handle = await app.start(fallback, "vanish", id="typed-vanish")
        await _wait_for(lambda: len(seen) == 1)
    assert seen[0]["class"] is not durable.ActivityError
    assert issubclass(seen[0]["class"], Vanishing)
    monkeypatch.delattr(sys.modules[__name__], "Vanishing")
    async with app.worker():
        await handle.signal("go")
        assert await handle.result(timeout=20) == {"done": "vanish"}
    assert seen[1] == {
        "class": durable.ActivityError,
        "error_type": "Vanishing",
        "message": "gone soon",
    }


async def test_an_unpicklable_exception_arrives_as_activity_error(app: durable.App) -> None:
    async with app.worker():
        handle = await app.start(fallback, "locked", id="typed-locked")
        await _wait_for(lambda: len(seen) == 1)
        await handle.signal("go")
        await handle.result(timeout=20)
    assert seen[0] == {
        "class": durable.ActivityError,
        "error_type": "Unpicklable",
        "message": "holds a lock",
    }


async def test_parent_catches_its_childs_exception_type(app: durable.App) -> None:
    async with app.worker():
        handle = await app.start(parent, "o-4", id="typed-parent")
        result = await handle.result(timeout=20)
    assert result == {
        "code": "expired",
        "args": ["card for o-4 expired"],
        "message": "run 'typed-parent-child' failed: CardDeclined: card for o-4 expired",
        "workflow_failed": True,
        "status": "FAILED",
    }
    # the child's failure, as a caller sees it, carries no pickled copy
    child = await app.handle("typed-parent-child").describe()
    assert child.error is not None and child.error["type"] == "CardDeclined"
    assert "pickle" not in child.error
    with pytest.raises(durable.WorkflowFailed) as caught:
        await app.handle("typed-parent-child").result(timeout=5)
    assert type(caught.value) is durable.WorkflowFailed  # clients load no pickles


async def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    import anyio

    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)
