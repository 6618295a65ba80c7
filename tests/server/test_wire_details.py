"""Wire details Rochallor's SDK workers rely on: a late report on a job the engine closed is
a no-op 204, ``maxJobs`` takes any number, and an instance is WAITING only at a user task
or a WAIT step (ACTIVE while an external job is queued)."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from rest_helpers import definition, step

import durable

pytestmark = pytest.mark.anyio

TIMED = definition(
    "WIRE::timed",
    step(
        "remote",
        "SERVICE_TASK",
        jobType="rest-test",
        nextStep="done",
        boundaryEvents=[
            {"type": "TIMER", "duration": "PT0.5S", "interrupting": True, "targetStepId": "review"}
        ],
    ),
    step("review", "USER_TASK", nextStep="done"),
)
TASKED = definition(
    "WIRE::tasked",
    step("remote", "SERVICE_TASK", jobType="rest-test", nextStep="review"),
    step("review", "USER_TASK", nextStep="done"),
)


async def _until(client: httpx.AsyncClient, iid: str, status: str, *steps: str) -> dict[str, Any]:
    with anyio.fail_after(15):
        while True:
            body = (await client.get(f"/v1/instances/{iid}")).json()
            if body["status"] == status and body["currentStepIds"] == list(steps):
                return body  # type: ignore[no-any-return]
            await anyio.sleep(0.05)


async def _start(client: httpx.AsyncClient, definition_id: str, **variables: Any) -> str:
    started = await client.post(
        "/v1/instances", json={"definitionId": definition_id, "variables": variables}
    )
    assert started.status_code == 201, started.text
    return started.json()["id"]  # type: ignore[no-any-return]


async def _poll(client: httpx.AsyncClient, worker: str, max_jobs: int) -> list[dict[str, Any]]:
    answer = await client.post(
        "/v1/jobs/poll", json={"workerId": worker, "jobTypes": ["rest-test"], "maxJobs": max_jobs}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["jobs"]  # type: ignore[no-any-return]


async def test_reporting_a_job_a_timer_cancelled_is_a_no_op_204(
    client: httpx.AsyncClient, running: durable.App
):
    assert (await client.post("/v1/definitions", json=TIMED)).status_code == 201
    iid = await _start(client, "WIRE::timed", n=1)
    await _until(client, iid, "ACTIVE", "remote")
    [job] = await _poll(client, "sdk", 1)
    before = await _until(client, iid, "WAITING", "review")  # the timer took the step away
    late = await client.post(
        f"/v1/jobs/{job['id']}/complete", json={"workerId": "sdk", "variables": {"late": 1}}
    )
    assert late.status_code == 204, late.text
    failed = await client.post(
        f"/v1/jobs/{job['id']}/fail", json={"workerId": "sdk", "errorMessage": "too late"}
    )
    assert failed.status_code == 204, failed.text
    stranger = await client.post(f"/v1/jobs/{job['id']}/complete", json={"workerId": "other"})
    assert stranger.status_code == 409  # it never held the job
    await anyio.sleep(0.3)
    assert (await client.get(f"/v1/instances/{iid}")).json() == before  # nothing changed
    history = (await client.get(f"/v1/instances/{iid}/history")).json()["items"]
    assert [(s["stepId"], s["status"]) for s in history] == [
        ("remote", "CANCELLED"),
        ("review", "RUNNING"),
    ]
    done = await client.post(f"/v1/instances/{iid}/user-tasks/review/complete", json={})
    assert done.status_code == 204
    assert (await _until(client, iid, "COMPLETED"))["variables"] == {"n": 1}


async def test_max_jobs_zero_means_ten_and_above_a_hundred_is_accepted(
    client: httpx.AsyncClient, running: durable.App
):
    assert (await client.post("/v1/definitions", json=TASKED)).status_code == 201
    ids = [await _start(client, "WIRE::tasked", i=i) for i in range(12)]
    for iid in ids:
        await _until(client, iid, "ACTIVE", "remote")
    first = await _poll(client, "sdk", 0)
    rest = await _poll(client, "sdk", 128)
    assert len(first) == 10 and len(rest) == 2
    assert {j["instanceId"] for j in first + rest} == set(ids)


async def test_active_while_a_job_is_queued_waiting_at_a_user_task(
    client: httpx.AsyncClient, running: durable.App
):
    assert (await client.post("/v1/definitions", json=TASKED)).status_code == 201
    iid = await _start(client, "WIRE::tasked")
    await _until(client, iid, "ACTIVE", "remote")  # the job is queued; nobody polled
    listed = await client.get("/v1/instances", params={"status": "ACTIVE"})
    assert [i["id"] for i in listed.json()["items"]] == [iid] and listed.json()["total"] == 1
    waiting = await client.get("/v1/instances", params={"status": "WAITING"})
    assert waiting.json() == {"items": [], "total": 0}
    [job] = await _poll(client, "sdk", 1)
    await _until(client, iid, "ACTIVE", "remote")  # held by a worker: still ACTIVE
    done = await client.post(f"/v1/jobs/{job['id']}/complete", json={"workerId": "sdk"})
    assert done.status_code == 204
    await _until(client, iid, "WAITING", "review")
    waiting = await client.get("/v1/instances", params={"status": "WAITING"})
    assert [i["id"] for i in waiting.json()["items"]] == [iid] and waiting.json()["total"] == 1
    assert (await client.get("/v1/instances", params={"status": "ACTIVE"})).json()["total"] == 0


async def test_retry_step_over_rest(client: httpx.AsyncClient, running: durable.App):
    assert (await client.post("/v1/definitions", json=TASKED)).status_code == 201
    iid = await _start(client, "WIRE::tasked", n=1)
    base = f"/v1/instances/{iid}/steps"
    early = await client.post(f"{base}/remote/retry")
    assert early.status_code == 409 and "not FAILED" in early.json()["message"]
    [job] = await _poll_until(client, "sdk")
    failed = await client.post(
        f"/v1/jobs/{job['id']}/fail", json={"workerId": "sdk", "errorMessage": "down"}
    )
    assert failed.status_code == 204
    await _until(client, iid, "FAILED")
    assert (await client.post(f"{base}/review/retry")).status_code == 409
    with_variables = await client.post(f"{base}/remote/retry", json={"variables": {"x": 1}})
    assert with_variables.status_code == 400
    assert (await client.post("/v1/instances/nope/steps/remote/retry")).status_code == 404
    retried = await client.post(f"{base}/remote/retry")
    assert retried.status_code == 200 and retried.json()["id"] == iid
    [again] = await _poll_until(client, "sdk")
    assert again["stepId"] == "remote" and again["instanceId"] == iid
    done = await client.post(f"/v1/jobs/{again['id']}/complete", json={"workerId": "sdk"})
    assert done.status_code == 204
    await _until(client, iid, "WAITING", "review")


async def _poll_until(client: httpx.AsyncClient, worker: str) -> list[dict[str, Any]]:
    with anyio.fail_after(15):
        while not (jobs := await _poll(client, worker, 1)):
            await anyio.sleep(0.05)
    return jobs
