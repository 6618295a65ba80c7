from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import durable


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "function", None)):
            item.add_marker(pytest.mark.anyio)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def dsn(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'durable.db'}"


@pytest.fixture
async def app(dsn: str) -> AsyncIterator[durable.App]:
    async with durable.App(dsn) as app:
        yield app


async def wait_for_status(
    handle: durable.Handle[object], *statuses: durable.Status, timeout: float = 15.0
) -> durable.RunDescription:
    """Poll until the run reaches one of ``statuses`` (and is not held by a worker)."""
    import anyio

    with anyio.fail_after(timeout):
        while True:
            desc = await handle.describe()
            if desc.status in statuses:
                return desc
            await anyio.sleep(0.02)


@pytest.fixture
def wait_status():  # type: ignore[no-untyped-def]
    return wait_for_status
