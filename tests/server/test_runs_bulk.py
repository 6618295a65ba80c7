"""``POST /v1/runs/cancel`` and tags on ``POST /v1/instances``."""

from __future__ import annotations

import httpx
import pytest
from rest_helpers import definition

import durable

pytestmark = pytest.mark.anyio


async def test_start_with_tags_and_bulk_cancel_by_tag(client: httpx.AsyncClient, app: durable.App):
    await client.post("/v1/definitions", json=definition())
    ids = []
    for tag in ("a", "a", "b"):
        body = {"definitionId": "TEST::flow", "tags": {"batch": tag}}
        answer = await client.post("/v1/instances", json=body)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    assert (await app.handle(ids[0]).describe()).tags == {"batch": "a"}

    dry = await client.post("/v1/runs/cancel", json={"tags": {"batch": "a"}, "dryRun": True})
    assert dry.status_code == 200 and dry.json() == {"count": 2, "dryRun": True}
    done = await client.post("/v1/runs/cancel", json={"tags": {"batch": "a"}})
    assert done.json() == {"count": 2, "dryRun": False}
    statuses = [(await app.handle(i).describe()).status for i in ids]
    assert statuses == [durable.Status.CANCELLED, durable.Status.CANCELLED, durable.Status.PENDING]


async def test_bad_tags_and_an_empty_filter_are_400(client: httpx.AsyncClient):
    await client.post("/v1/definitions", json=definition())
    bad = {"definitionId": "TEST::flow", "tags": {"bad key": "v"}}
    answer = await client.post("/v1/instances", json=bad)
    assert answer.status_code == 400 and "'bad key'" in answer.text
    empty = await client.post("/v1/runs/cancel", json={"dryRun": True})
    assert empty.status_code == 400 and "filter" in empty.text
