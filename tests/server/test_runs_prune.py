"""``POST /v1/runs/prune``: deletes finished runs by age and status, never open ones."""

from __future__ import annotations

import httpx
import pytest

import durable
from durable.store import Commit, Fence, Finish

pytestmark = pytest.mark.anyio


async def _end(app: durable.App, status: durable.Status) -> None:
    [run] = await app.store.claim("w", 1, 30)
    await app.store.commit(Commit(Fence(run.id, run.epoch), outcome=Finish(status, "1")))


async def test_prune_deletes_finished_runs_by_status_and_age(
    client: httpx.AsyncClient, app: durable.App
):
    await app.store.create_run("ok", "wf", "[]")
    await _end(app, durable.Status.COMPLETED)
    await app.store.create_run("bad", "wf", "[]")
    await _end(app, durable.Status.FAILED)
    await app.store.create_run("open", "wf", "[]")

    young = await client.post("/v1/runs/prune", json={"olderThanSeconds": 3600})
    assert young.status_code == 200 and young.json() == {"count": 0, "dryRun": False}
    dry = await client.post("/v1/runs/prune", json={"olderThanSeconds": 0, "dryRun": True})
    assert dry.json() == {"count": 2, "dryRun": True}
    one = await client.post("/v1/runs/prune", json={"olderThanSeconds": 0, "status": ["FAILED"]})
    assert one.json() == {"count": 1, "dryRun": False}
    rest = await client.post("/v1/runs/prune", json={"olderThanSeconds": 0})
    assert rest.json() == {"count": 1, "dryRun": False}
    assert [await app.store.get_run(i) is None for i in ("ok", "bad", "open")] == [
        True,
        True,
        False,
    ]


async def test_prune_refuses_open_statuses_negative_ages_and_a_missing_age(
    client: httpx.AsyncClient,
):
    for body in (
        {"olderThanSeconds": 0, "status": ["WAITING"]},
        {"olderThanSeconds": -1},
        {"olderThanSeconds": "1d"},
        {},
    ):
        answer = await client.post("/v1/runs/prune", json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"] == "VALIDATION_ERROR"
