"""/v1/jobs: poll, complete and fail external SERVICE_TASK jobs over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
import httpx
import pytest
from rest_helpers import definition, step

import durable

pytestmark = pytest.mark.anyio


async def _poll(client: httpx.AsyncClient, worker: str, **extra: Any) -> list[dict[str, Any]]:
    with anyio.fail_after(15):
        while True:
            answer = await client.post(
                "/v1/jobs/poll", json={"workerId": worker, "jobTypes": ["rest-test"], **extra}
            )
            assert answer.status_code == 200, answer.text
            if answer.json()["jobs"]:
                return answer.json()["jobs"]  # type: ignore[no-any-return]
            await anyio.sleep(0.05)


async def _status(client: httpx.AsyncClient, instance_id: str, *wanted: str) -> dict[str, Any]:
    with anyio.fail_after(15):
        while True:
            body = (await client.get(f"/v1/instances/{instance_id}")).json()
            if body["status"] in wanted:
                return body  # type: ignore[no-any-return]
            await anyio.sleep(0.05)


async def test_poll_complete_and_repeat(client: httpx.AsyncClient, running: durable.App):
    await client.post("/v1/definitions", json=definition())
    started = await client.post(
        "/v1/instances", json={"definitionId": "TEST::flow", "variables": {"order": "o-1"}}
    )
    iid = started.json()["id"]
    [job] = await _poll(client, "w1", leaseSeconds=30)
    assert set(job) == {
        "id",
        "jobType",
        "instanceId",
        "stepId",
        "stepExecutionId",
        "retriesRemaining",
        "variables",
        "lockExpiresAt",
    }
    assert (job["instanceId"], job["stepId"], job["jobType"]) == (iid, "remote", "rest-test")
    assert job["variables"] == {"order": "o-1"} and job["retriesRemaining"] == 0
    assert datetime.fromisoformat(job["lockExpiresAt"]) > datetime.fromisoformat(
        started.json()["startedAt"]
    )
    # The step's record and its job are two commits: the step may show a moment later.
    with anyio.fail_after(15):
        while (waiting := await _status(client, iid, "ACTIVE"))["currentStepIds"] != ["remote"]:
            await anyio.sleep(0.02)
    assert waiting["status"] == "ACTIVE"  # as in Rochallor: WAITING is for tasks
    # held by w1: nobody else gets it
    empty = await client.post("/v1/jobs/poll", json={"workerId": "w2", "jobTypes": ["rest-test"]})
    assert empty.json() == {"jobs": []}
    other = await client.post(f"/v1/jobs/{job['id']}/complete", json={"workerId": "w2"})
    assert other.status_code == 409 and other.json()["error"] == "CONFLICT"
    done = await client.post(
        f"/v1/jobs/{job['id']}/complete", json={"workerId": "w1", "variables": {"shipped": True}}
    )
    assert done.status_code == 204
    again = await client.post(
        f"/v1/jobs/{job['id']}/complete", json={"workerId": "w1", "variables": {"shipped": True}}
    )
    assert again.status_code == 204
    final = await _status(client, iid, "COMPLETED")
    assert final["variables"] == {"order": "o-1", "shipped": True}
    history = (await client.get(f"/v1/instances/{iid}/history")).json()["items"]
    assert history[0]["id"] == job["stepExecutionId"] and history[0]["status"] == "COMPLETED"


async def test_fail_retries_then_fails_the_instance(
    client: httpx.AsyncClient, running: durable.App
):
    remote = step("remote", "SERVICE_TASK", jobType="rest-test", retryCount=1, nextStep="done")
    await client.post("/v1/definitions", json=definition("TEST::flow", remote))
    iid = (await client.post("/v1/instances", json={"definitionId": "TEST::flow"})).json()["id"]
    [job] = await _poll(client, "w1")
    assert job["retriesRemaining"] == 1
    retry = await client.post(
        f"/v1/jobs/{job['id']}/fail",
        json={"workerId": "w1", "retryable": True, "errorMessage": "bureau down"},
    )
    assert retry.status_code == 204
    [again] = await _poll(client, "w2")
    assert again["id"] == job["id"] and again["retriesRemaining"] == 0
    final = await client.post(
        f"/v1/jobs/{job['id']}/fail",
        json={"workerId": "w2", "retryable": True, "errorMessage": "card declined"},
    )
    assert final.status_code == 204
    failed = await _status(client, iid, "FAILED")
    assert "card declined" in failed["failureReason"] and "'remote'" in failed["failureReason"]


async def test_unknown_jobs_are_404(client: httpx.AsyncClient):
    for action, body in (("complete", {"workerId": "w"}), ("fail", {"workerId": "w"})):
        answer = await client.post(f"/v1/jobs/nope/{action}", json=body)
        assert answer.status_code == 404 and answer.json()["error"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "body",
    [
        {"jobTypes": ["a"]},
        {"workerId": "w", "jobTypes": []},
        {"workerId": "w"},
        {"workerId": "w", "jobTypes": "a"},
        {"workerId": "w", "jobTypes": [""]},
        {"workerId": "w", "jobTypes": ["a"], "maxJobs": "1"},
        {"workerId": "w", "jobTypes": ["a"], "leaseSeconds": 4},
        {"workerId": "w", "jobTypes": ["a"], "leaseSeconds": 3601},
        {"workerId": "w", "jobTypes": ["a"], "leaseSeconds": 60.5},
        {"workerId": "", "jobTypes": ["a"]},
    ],
)
async def test_poll_bounds(client: httpx.AsyncClient, body: dict[str, Any]):
    answer = await client.post("/v1/jobs/poll", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "VALIDATION_ERROR" and answer.json()["problems"]


async def test_poll_limits_accepted(client: httpx.AsyncClient):
    limits = [
        {"maxJobs": 100, "leaseSeconds": 3600},
        {"maxJobs": 1, "leaseSeconds": 5},
        {"maxJobs": 128},
        {"maxJobs": 0},
        {"maxJobs": -3},
        {"maxJobs": 2**40},
    ]
    for extra in limits:
        answer = await client.post(
            "/v1/jobs/poll", json={"workerId": "w", "jobTypes": ["a"], **extra}
        )
        assert answer.status_code == 200 and answer.json() == {"jobs": []}


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("complete", {}),
        ("complete", {"workerId": "w", "variables": "x"}),
        ("complete", {"workerId": 3}),
        ("fail", {"workerId": "w", "retryable": "yes"}),
        ("fail", {"workerId": "w", "errorMessage": 5}),
    ],
)
async def test_complete_and_fail_validate(client: httpx.AsyncClient, action: str, body: Any):
    answer = await client.post(f"/v1/jobs/j-1/{action}", json=body)
    assert answer.status_code == 400 and answer.json()["error"] == "VALIDATION_ERROR"
    malformed = await client.post(
        f"/v1/jobs/j-1/{action}", content=b"{", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["error"] == "MALFORMED_JSON"
    wrong_type = await client.post(
        f"/v1/jobs/j-1/{action}", content=b"workerId=w", headers={"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415


async def test_out_of_range_numbers_are_400(client: httpx.AsyncClient):
    for raw in (
        b'{"workerId": "w", "jobTypes": ["a"], "leaseSeconds": 1e400}',
        b'{"workerId": "w", "jobTypes": ["a"], "maxJobs": 1e2}',
    ):
        answer = await client.post(
            "/v1/jobs/poll", content=raw, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400 and answer.json()["error"] == "VALIDATION_ERROR"
