"""The store under test: each contract test gets a fresh, open store of each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from durable.store import Store, open_store


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[Store]:
    s = open_store(dsn)
    await s.open()
    yield s
    await s.close()
