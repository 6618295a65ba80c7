"""``POST /v1/runs/{id}/pause|resume|retry`` and ``POST /v1/runs/pause|resume|retry``."""

from __future__ import annotations

import httpx
import pytest

import durable
from durable.store import Commit, Fence, Finish

pytestmark = pytest.mark.anyio


async def test_pause_and_resume_one_run_and_many(client: httpx.AsyncClient, app: durable.App):
    for i in range(3):
        await app.store.create_run(f"r{i}", "wf", "[]", tags=[("batch", "x")])
    await app.store.create_run("other", "wf", "[]")
    one = await client.post("/v1/runs/r0/pause", json={"reason": "bank down"})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["status"] == "PAUSED" and body["blockedOn"]["kind"] == "paused"
    assert "bank down" in body["blockedOn"]["message"]
    dry = await client.post("/v1/runs/pause", json={"tags": {"batch": "x"}, "dryRun": True})
    assert dry.json() == {"count": 2, "dryRun": True}  # r0 is paused already
    done = await client.post("/v1/runs/pause", json={"tags": {"batch": "x"}, "reason": "later"})
    assert done.json() == {"count": 2, "dryRun": False}
    assert "later" in (await app.handle("r1").describe()).blocked_on.message  # type: ignore[union-attr]
    back = await client.post("/v1/runs/r0/resume")
    assert back.status_code == 200 and back.json()["status"] != "PAUSED"
    rest = await client.post("/v1/runs/resume", json={"status": "PAUSED"})
    assert rest.json() == {"count": 2, "dryRun": False}
    assert (await app.handle("other").describe()).status is durable.Status.PENDING


async def test_retry_a_failed_run_and_refusals(client: httpx.AsyncClient, app: durable.App):
    await app.store.create_run("bad", "wf", "[]")
    [run] = await app.store.claim("w", 1, 30)
    await app.store.commit(
        Commit(Fence("bad", run.epoch), outcome=Finish(durable.Status.FAILED, error='{"type":"E"}'))
    )
    assert (
        await client.post("/v1/runs/retry", json={"status": "FAILED", "dryRun": True})
    ).json() == {
        "count": 1,
        "dryRun": True,
    }
    again = await client.post("/v1/runs/bad/retry")
    assert again.status_code == 200 and again.json()["status"] != "FAILED"
    twice = await client.post("/v1/runs/bad/retry")  # not FAILED any more
    assert twice.status_code == 409 and twice.json()["error"] == "CONFLICT"
    assert (await client.post("/v1/runs/nope/pause")).status_code == 404
    assert (await client.post("/v1/runs/resume", json={"dryRun": True})).status_code == 400
    wrong = await client.post("/v1/runs/retry", json={"status": "FAILED", "reason": "x"})
    assert wrong.status_code == 400 and "pause only" in wrong.text


async def test_fork_a_run_over_rest(client: httpx.AsyncClient, app: durable.App):
    await app.store.create_run("src", "wf", "[]")
    answer = await client.post("/v1/runs/src/fork", json={"at": 1, "id": "src-copy"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["id"] == "src-copy" and body["forkedFrom"] == {"runId": "src", "at": 1}
    taken = await client.post("/v1/runs/src/fork", json={"id": "src-copy"})
    assert taken.status_code == 409
    bad = await client.post("/v1/runs/src/fork", json={"at": 50})
    assert bad.status_code == 400 and "50" in bad.text
    assert (await client.post("/v1/runs/nope/fork")).status_code == 404
