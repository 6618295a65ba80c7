"""``GET /v1/runs`` (filters, cursor pages) and ``GET /v1/runs/{id}`` (with blockedOn)."""

from __future__ import annotations

import httpx
import pytest

import durable

pytestmark = pytest.mark.anyio


async def test_list_runs_filters_by_tag_and_pages_by_cursor(
    client: httpx.AsyncClient, app: durable.App
):
    for i in range(5):
        await app.store.create_run(f"a{i}", "wf", "[]", tags=[("batch", "a"), ("n", str(i))])
    await app.store.create_run("b0", "wf", "[]", tags=[("batch", "b")], queue="gpu")
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, object] = {"tag": "batch=a", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        answer = await client.get("/v1/runs", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [r["id"] for r in page["runs"]]
        cursor = page.get("nextCursor")
        if cursor is None:
            break
    assert sorted(seen) == [f"a{i}" for i in range(5)] and len(seen) == 5
    both = await client.get("/v1/runs", params=[("tag", "batch=a"), ("tag", "n=3")])
    assert [r["id"] for r in both.json()["runs"]] == ["a3"]
    gpu = (await client.get("/v1/runs", params={"queue": "gpu", "status": "PENDING"})).json()
    assert [(r["id"], r["tags"], r["status"]) for r in gpu["runs"]] == [
        ("b0", {"batch": "b"}, "PENDING")
    ]
    assert "blockedOn" not in gpu["runs"][0] and "nextCursor" not in gpu


async def test_one_run_says_what_it_waits_for(client: httpx.AsyncClient, app: durable.App):
    await app.store.create_run("lonely", "wf", "[]", queue="nobody")
    answer = await client.get("/v1/runs/lonely")
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["status"] == "PENDING" and run["children"] == []
    assert run["blockedOn"]["kind"] == "no_worker"
    assert run["blockedOn"]["message"] == "no live worker serves queue 'nobody'"
    missing = await client.get("/v1/runs/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "NOT_FOUND"


async def test_bad_filters_and_cursors_are_400(client: httpx.AsyncClient):
    for params in (
        {"tag": "novalue"},
        {"cursor": "not-a-cursor"},
        {"status": "SLEEPING"},
        {"limit": 0},
        {"createdAfter": "yesterday"},
    ):
        answer = await client.get("/v1/runs", params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.json()["error"] == "VALIDATION_ERROR"
