"""The server as a real process (``python -m durable.server``), driven over HTTP by
external job workers, on SQLite and on Postgres."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rest_helpers import definition, server_process, step


@pytest.fixture
def server(dsn: str, tmp_path: Path) -> Iterator[httpx.Client]:
    with (
        server_process(dsn, tmp_path, "--token", "t0k3n") as base,
        httpx.Client(base_url=base, headers={"Authorization": "Bearer t0k3n"}) as client,
    ):
        yield client


def _poll(client: httpx.Client, worker: str, lease: int = 60, wait: float = 20) -> list[Any]:
    """Poll like a Rochallor SDK worker: again and again until something comes."""
    deadline = time.monotonic() + wait
    while True:
        answer = client.post(
            "/v1/jobs/poll",
            json={"workerId": worker, "jobTypes": ["e2e-remote"], "leaseSeconds": lease},
        )
        assert answer.status_code == 200, answer.text
        if answer.json()["jobs"] or time.monotonic() > deadline:
            return answer.json()["jobs"]  # type: ignore[no-any-return]
        time.sleep(0.1)


def _instance(client: httpx.Client, instance_id: str) -> dict[str, Any]:
    return client.get(f"/v1/instances/{instance_id}").json()  # type: ignore[no-any-return]


def test_external_workers_drive_a_flow_through_a_server_process(server: httpx.Client):
    remote = step("remote", "SERVICE_TASK", jobType="e2e-remote", retryCount=1, nextStep="done")
    uploaded = server.post("/v1/definitions", json=definition("E2E::flow", remote))
    assert uploaded.status_code == 201, uploaded.text
    started = server.post(
        "/v1/instances", json={"definitionId": "E2E::flow", "variables": {"order": 1}}
    )
    assert started.status_code == 201, started.text
    iid = started.json()["id"]

    # Worker A claims the job with the shortest lease; worker B gets nothing meanwhile.
    [job] = _poll(server, "worker-a", lease=5)
    assert job["instanceId"] == iid and job["variables"] == {"order": 1}
    assert _poll(server, "worker-b", wait=0) == []

    # A stalls; its lease expires and the job returns to the queue, where B finds it.
    [again] = _poll(server, "worker-b", lease=60, wait=30)
    assert again["id"] == job["id"]

    # A's late completion is refused and changes nothing.
    late = server.post(
        f"/v1/jobs/{job['id']}/complete", json={"workerId": "worker-a", "variables": {"by": "a"}}
    )
    assert late.status_code == 409 and late.json()["error"] == "CONFLICT"
    waiting = _instance(server, iid)
    assert waiting["status"] == "ACTIVE" and waiting["variables"] == {"order": 1}

    # B fails it retryably: re-queued (one retry left); A takes it and completes it.
    failed = server.post(
        f"/v1/jobs/{job['id']}/fail",
        json={"workerId": "worker-b", "retryable": True, "errorMessage": "flaky"},
    )
    assert failed.status_code == 204
    [third] = _poll(server, "worker-a")
    assert third["id"] == job["id"] and third["retriesRemaining"] == 0
    done = server.post(
        f"/v1/jobs/{job['id']}/complete", json={"workerId": "worker-a", "variables": {"by": "a"}}
    )
    assert done.status_code == 204

    deadline = time.monotonic() + 20
    while (body := _instance(server, iid))["status"] != "COMPLETED":
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert body["variables"] == {"order": 1, "by": "a"} and body["currentStepIds"] == []
    history = server.get(f"/v1/instances/{iid}/history").json()["items"]
    assert [(s["stepId"], s["status"]) for s in history] == [
        ("remote", "COMPLETED"),
        ("done", "COMPLETED"),
    ]
    metrics = server.get("/metrics").text
    assert 'durable_runs_completed_total{workflow="E2E::flow"} 1.0' in metrics
    assert server.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
