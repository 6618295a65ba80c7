"""/v1/instances: start, list, inspect, history, cancel, user tasks and signals."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from rest_helpers import definition, step

import durable

pytestmark = pytest.mark.anyio


async def _until(client: httpx.AsyncClient, instance_id: str, **wanted: Any) -> dict[str, Any]:
    with anyio.fail_after(15):
        while True:
            body = (await client.get(f"/v1/instances/{instance_id}")).json()
            if all(body.get(k) == v for k, v in wanted.items()):
                return body
            await anyio.sleep(0.05)


async def _start(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await client.post("/v1/instances", json={"definitionId": "TEST::flow", **body})
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


REVIEW = definition(
    "TEST::flow",
    step("review", "USER_TASK", nextStep="pause"),
    step("pause", "WAIT", nextStep="done"),
)


async def test_start_answers_201_with_an_active_instance(client: httpx.AsyncClient):
    await client.post("/v1/definitions", json=definition())
    body = await _start(client, variables={"order": 7}, businessKey="B-1")
    assert body["status"] == "ACTIVE" and body["definitionId"] == "TEST::flow"
    assert body["definitionVersion"] == 1 and body["variables"] == {"order": 7}
    assert body["businessKey"] == "B-1" and body["currentStepIds"] == []
    assert body["startedAt"].endswith("Z") and "completedAt" not in body
    got = await client.get(f"/v1/instances/{body['id']}")
    assert got.status_code == 200 and got.json()["id"] == body["id"]


async def test_start_pins_a_version_and_refuses_unknown_definitions(client: httpx.AsyncClient):
    await client.post("/v1/definitions", json=definition())
    await client.post("/v1/definitions", json=definition())
    assert (await _start(client, definitionVersion=1))["definitionVersion"] == 1
    assert (await _start(client))["definitionVersion"] == 2
    for body in (
        {"definitionId": "TEST::nope"},
        {"definitionId": "TEST::flow", "definitionVersion": 9},
    ):
        answer = await client.post("/v1/instances", json=body)
        assert answer.status_code == 404 and answer.json()["error"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"definitionId": ""},
        {"definitionId": 5},
        {"definitionId": "TEST::flow", "variables": [1]},
        {"definitionId": "TEST::flow", "definitionVersion": "1"},
        {"definitionId": "TEST::flow", "definitionVersion": 0},
        {"definitionId": "TEST::flow", "businessKey": "a\u0000b"},
        {"definitionId": "TEST::flow", "businessKey": "\ud800"},
        [],
    ],
)
async def test_start_with_wrong_field_types_is_400(client: httpx.AsyncClient, body: Any):
    await client.post("/v1/definitions", json=definition())
    text = json.dumps(body)  # escapes an unpaired surrogate, as a client in another language may
    answer = await client.post(
        "/v1/instances", content=text, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "VALIDATION_ERROR"


async def test_list_filters_pages_and_counts(client: httpx.AsyncClient, app: durable.App):
    await client.post("/v1/definitions", json=definition())
    await client.post("/v1/definitions", json=definition("TEST::other"))
    ids = [(await _start(client, businessKey=f"K{n % 2}"))["id"] for n in range(5)]
    other = (await client.post("/v1/instances", json={"definitionId": "TEST::other"})).json()
    await app.start_flow("TEST::flow", id="cancelled")
    await app.handle("cancelled").cancel()  # never started: cancelled at once

    async def listed(**params: Any) -> tuple[list[str], int]:
        answer = await client.get("/v1/instances", params=params)
        assert answer.status_code == 200, answer.text
        return [i["id"] for i in answer.json()["items"]], answer.json()["total"]

    everything, total = await listed()
    assert total == 7 and set(everything) == {*ids, other["id"], "cancelled"}
    assert await listed(definitionId="TEST::other") == ([other["id"]], 1)
    assert (await listed(businessKey="K1"))[1] == 2
    assert await listed(status="CANCELLED") == (["cancelled"], 1)
    assert (await listed(status="ACTIVE", definitionId="TEST::flow"))[1] == 5
    page, total = await listed(page=1, pageSize=3)
    assert len(page) == 3 and total == 7 and page == everything[3:6]
    assert await listed(page=5, pageSize=3) == ([], 7)
    assert (await listed(pageSize=3))[1] == (await listed(pageSize=7))[1] == 7  # full pages
    for params in ({"status": "RUNNING"}, {"pageSize": 0}, {"pageSize": 201}, {"page": -1}):
        answer = await client.get("/v1/instances", params=params)
        assert answer.status_code == 400 and answer.json()["error"] == "VALIDATION_ERROR"


async def test_unknown_and_code_first_runs_are_not_instances(
    client: httpx.AsyncClient, app: durable.App
):
    await app.store.create_run("code-first", "some.workflow", "[[], {}]")
    for instance_id in ("nope", "code-first"):
        for suffix in ("", "/history"):
            answer = await client.get(f"/v1/instances/{instance_id}{suffix}")
            assert answer.status_code == 404 and answer.json()["error"] == "NOT_FOUND"
        answer = await client.post(f"/v1/instances/{instance_id}/cancel", json={})
        assert answer.status_code == 404


async def test_user_task_then_signal_to_completion(client: httpx.AsyncClient, running: durable.App):
    await client.post("/v1/definitions", json=REVIEW)
    started = await _start(client, variables={"amount": 5})
    iid = started["id"]
    waiting = await _until(client, iid, status="WAITING", currentStepIds=["review"])
    assert waiting["variables"] == {"amount": 5}
    base = f"/v1/instances/{iid}"
    # the WAIT step is not waiting yet: 409; an unknown step: 404; a WAIT step as a task: 409
    assert (await client.post(f"{base}/signals/pause", json={})).status_code == 409
    assert (await client.post(f"{base}/user-tasks/nope/complete", json={})).status_code == 404
    assert (await client.post(f"{base}/user-tasks/pause/complete", json={})).status_code == 409
    assert (await client.post(f"{base}/signals/review", json={})).status_code == 404
    bad = await client.post(f"{base}/user-tasks/review/complete", json={"variables": [1]})
    assert bad.status_code == 400

    done = await client.post(
        f"{base}/user-tasks/review/complete",
        json={
            "result": {"decision": "yes", "by": "r"},
            "variables": {"by": "v"},
            "completedBy": "ann",
        },
    )
    assert done.status_code == 204 and done.content == b""
    again = await client.post(f"{base}/user-tasks/review/complete", json={})
    assert again.status_code == 204  # a repeat is a no-op
    await _until(client, iid, status="WAITING", currentStepIds=["pause"])
    signal = await client.post(f"{base}/signals/pause", json={"paid": True})
    assert signal.status_code == 204
    final = await _until(client, iid, status="COMPLETED")
    assert final["variables"] == {"amount": 5, "decision": "yes", "by": "v", "paid": True}
    assert final["currentStepIds"] == [] and final["completedAt"] >= final["startedAt"]
    # finished: the step is not waiting any more, but the task was completed before
    assert (await client.post(f"{base}/signals/pause", json={})).status_code == 409
    assert (await client.post(f"{base}/user-tasks/review/complete")).status_code == 204

    history = (await client.get(f"{base}/history")).json()["items"]
    assert [(s["stepId"], s["stepType"], s["status"]) for s in history] == [
        ("review", "USER_TASK", "COMPLETED"),
        ("pause", "WAIT", "COMPLETED"),
        ("done", "END", "COMPLETED"),
    ]
    first = history[0]
    assert first["instanceId"] == iid and first["attemptNumber"] == 1
    assert first["endedAt"] >= first["startedAt"] and "failureReason" not in first


async def test_a_signal_body_may_be_empty(client: httpx.AsyncClient, running: durable.App):
    await client.post(
        "/v1/definitions", json=definition("TEST::flow", step("pause", "WAIT", nextStep="done"))
    )
    iid = (await _start(client))["id"]
    await _until(client, iid, currentStepIds=["pause"], status="WAITING")
    answer = await client.post(f"/v1/instances/{iid}/signals/pause")
    assert answer.status_code == 204
    assert (await _until(client, iid, status="COMPLETED"))["variables"] == {}


async def test_a_signal_over_the_payload_limit_is_400_and_changes_nothing(
    client: httpx.AsyncClient, running: durable.App
):
    await client.post(
        "/v1/definitions", json=definition("TEST::flow", step("pause", "WAIT", nextStep="done"))
    )
    iid = (await _start(client))["id"]
    await _until(client, iid, currentStepIds=["pause"], status="WAITING")
    huge = {"blob": "x" * (running.services.values.max_payload_bytes or 0)}
    answer = await client.post(f"/v1/instances/{iid}/signals/pause", json={"variables": huge})
    assert answer.status_code == 400, answer.text
    assert "bytes" in answer.json()["message"] and iid in answer.json()["message"]
    assert (await running.handle(iid).describe()).status is durable.Status.WAITING


async def test_a_user_task_that_never_waited_is_409(client: httpx.AsyncClient, app: durable.App):
    await client.post("/v1/definitions", json=REVIEW)
    iid = (await _start(client))["id"]  # no worker: the run never reaches the task
    answer = await client.post(f"/v1/instances/{iid}/user-tasks/review/complete", json={})
    assert answer.status_code == 409 and answer.json()["error"] == "CONFLICT"


async def test_cancel_answers_the_cancelled_instance_then_409(
    client: httpx.AsyncClient, running: durable.App
):
    await client.post("/v1/definitions", json=REVIEW)
    iid = (await _start(client))["id"]
    await _until(client, iid, status="WAITING")
    answer = await client.post(f"/v1/instances/{iid}/cancel", json={"reason": "customer left"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "CANCELLED" and body["id"] == iid
    assert (await client.get(f"/v1/instances/{iid}")).json()["status"] == "CANCELLED"
    again = await client.post(f"/v1/instances/{iid}/cancel")
    assert again.status_code == 409 and again.json()["error"] == "CONFLICT"
    history = (await client.get(f"/v1/instances/{iid}/history")).json()["items"]
    assert history[0]["stepId"] == "review" and history[0]["status"] == "CANCELLED"
    task = await client.post(f"/v1/instances/{iid}/user-tasks/review/complete")
    assert task.status_code == 409


async def test_a_failed_instance_says_why(client: httpx.AsyncClient, running: durable.App):
    route = step("route", "DECISION", conditionalNextSteps={"missing > 1": "done"})
    await client.post("/v1/definitions", json=definition("TEST::flow", route))
    iid = (await _start(client))["id"]
    failed = await _until(client, iid, status="FAILED")
    assert "route" in failed["failureReason"]
    history = (await client.get(f"/v1/instances/{iid}/history")).json()["items"]
    assert history[0]["status"] == "FAILED" and history[0]["failureReason"]
