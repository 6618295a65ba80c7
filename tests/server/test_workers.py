"""``GET /v1/workers``: the worker registry over REST."""

from __future__ import annotations

import httpx
import pytest

import durable

pytestmark = pytest.mark.anyio


@durable.workflow(name="rest-expense")
async def expense(ctx: durable.Context, claim_id: str, *, amount: int = 0) -> None:
    """Registered for the worker to report its signature."""


async def test_workers_lists_a_running_worker_and_forgets_it_after_a_clean_stop(
    app: durable.App, client: httpx.AsyncClient
):
    assert (await client.get("/v1/workers")).json() == {"workers": []}
    async with app.worker(queues=["default", "mail"]) as worker:
        answer = await client.get("/v1/workers")
        assert answer.status_code == 200
        [row] = answer.json()["workers"]
        assert row["id"] == worker.id and row["live"] is True and row["flows"] is True
        assert row["queues"] == ["default", "mail"]
        assert row["startedAt"].endswith("Z") and row["heartbeatAt"].endswith("Z")
        assert row["workflows"]["rest-expense"] == [
            {"name": "claim_id", "kind": "POSITIONAL_OR_KEYWORD"},
            {"name": "amount", "kind": "KEYWORD_ONLY"},
        ]
    assert (await client.get("/v1/workers")).json() == {"workers": []}
