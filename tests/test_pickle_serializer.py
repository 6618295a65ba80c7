"""serializer="pickle": values without a JSON form through arguments, results, signals, events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

import durable
from durable.serde import pickle_dumps

pytestmark = pytest.mark.anyio

side_effects: list[str] = []


class Point:
    """No schema, no JSON form: pydantic cannot store it."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (side_effects.append, ("unpickled",))


@durable.activity(name="pickle.scale", serializer="pickle")
async def scale(p: Point, by: Callable[[int], int]) -> Point:
    return Point(by(p.x), by(p.y))


@durable.workflow(name="pickle.geometry", serializer="pickle")
async def geometry(ctx: durable.Context, p: Point, factor: int) -> dict[str, Point]:
    scaled = await scale(p, lambda v: v * factor)  # a closure as an argument
    ctx.set_event("scaled", scaled)
    moved: Point = await ctx.wait_signal("move")
    return {"scaled": scaled, "moved": moved}


@durable.activity(name="pickle.undeclared")
async def undeclared(p: Any) -> Any:
    return Point(p.y, p.x)


@durable.workflow(name="pickle.app-wide")
async def app_wide(ctx: durable.Context, p: Any) -> Any:
    return await undeclared(p)


@durable.workflow(name="pickle.json-only")
async def json_only(ctx: durable.Context, p: Any = None) -> Any:
    return await ctx.wait_signal("data")


async def _wait_event(handle: durable.Handle[Any], key: str) -> Any:
    with anyio.fail_after(20):
        while (value := await handle.get_event(key)) is None:
            await anyio.sleep(0.02)
    return value


async def test_a_custom_object_round_trips_through_args_result_signal_and_event(
    app: durable.App,
) -> None:
    async with app.worker():
        handle = await app.start(geometry, Point(1, 2), 3, id="pickle-1")
        assert await _wait_event(handle, "scaled") == Point(3, 6)
    async with app.worker():  # another worker replays the pickled journal
        await handle.signal("move", Point(7, 8))
        assert await handle.result(timeout=20) == {"scaled": Point(3, 6), "moved": Point(7, 8)}
    desc = await handle.describe()
    assert set(desc.result) == {"durable:pickle"}  # stored as pickle, shown as its wrapper
    again = app.handle("pickle-1")  # a handle that does not know the workflow
    assert await again.result(timeout=5) == {"scaled": Point(3, 6), "moved": Point(7, 8)}


async def test_the_json_error_names_the_pickle_option(app: durable.App) -> None:
    with pytest.raises(durable.SerializationError) as caught:
        await app.start(app_wide, Point(1, 2), id="pickle-refused")
    assert "cannot be stored as JSON" in str(caught.value)
    assert "serializer='pickle'" in str(caught.value)


async def test_app_wide_pickle_applies_to_undeclared_workflows_and_activities(dsn: str) -> None:
    async with durable.App(dsn, serializer="pickle") as app, app.worker():
        handle = await app.start(app_wide, Point(1, 2), id="pickle-app")
        assert await handle.result(timeout=20) == Point(2, 1)


async def test_a_json_workflow_never_unpickles_a_payload(app: durable.App) -> None:
    async with app.worker():
        handle = await app.start(json_only, id="pickle-boundary")
        await app.store.send_signal("pickle-boundary", "data", pickle_dumps(Evil(), "test"))
        result = await handle.result(timeout=20)
    assert set(result) == {"durable:pickle"}
    assert side_effects == []


def test_an_unknown_serializer_is_refused() -> None:
    with pytest.raises(durable.ConfigurationError, match="must be 'json' or 'pickle'"):
        durable.activity(serializer="yaml")  # type: ignore[call-overload]
    with pytest.raises(durable.ConfigurationError, match="must be 'json' or 'pickle'"):
        durable.App("sqlite:///:memory:", serializer="marshal")  # type: ignore[arg-type]
