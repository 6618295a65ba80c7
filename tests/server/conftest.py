"""In-process server fixtures: the ASGI app over the ``app`` fixture's store, via httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

import durable
from durable.server import create_app


@pytest.fixture(autouse=True)
def _no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DURABLE_API_TOKEN", raising=False)


@pytest.fixture
async def client(app: durable.App) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def running(app: durable.App) -> AsyncIterator[durable.App]:
    """The App with an in-process worker, so flows started over HTTP advance."""
    async with app.worker(poll_interval=0.1):
        yield app
