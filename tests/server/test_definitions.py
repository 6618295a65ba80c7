"""/v1/definitions: upload, list with keyword and pages, latest and by version."""

from __future__ import annotations

import httpx
import pytest
from rest_helpers import definition, step

pytestmark = pytest.mark.anyio


async def test_upload_answers_201_with_a_summary_and_counts_versions(client: httpx.AsyncClient):
    first = await client.post("/v1/definitions", json=definition())
    assert first.status_code == 201
    body = first.json()
    assert (body["id"], body["version"], body["name"]) == ("TEST::flow", 1, "Test flow")
    assert body["uploadedAt"].endswith("Z")
    second = await client.post("/v1/definitions", json={**definition(), "name": "Renamed"})
    assert second.status_code == 201 and second.json()["version"] == 2


async def test_an_invalid_definition_lists_every_problem(client: httpx.AsyncClient):
    bad = {
        "id": "TEST::bad",
        "name": "Bad",
        "steps": [step("a", "SERVICE_TASK", jobType="x", nextStep="nowhere"), step("b", "WAIT")],
    }
    answer = await client.post("/v1/definitions", json=bad)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "VALIDATION_ERROR"
    paths = {p["path"] for p in body["problems"]}
    assert {"steps[0].nextStep", "steps[1].nextStep"} <= paths
    assert "nowhere" in body["message"]


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b'{"id": ', {"content-type": "application/json"}, 400, "MALFORMED_JSON"),
        (b"[1, NaN]", {"content-type": "application/json"}, 400, "MALFORMED_JSON"),
        (b"\xff\xfe", {"content-type": "application/json"}, 400, "MALFORMED_JSON"),
        (b"[" * 100_000, {"content-type": "application/json"}, 400, "MALFORMED_JSON"),
        (b"", {"content-type": "application/json"}, 400, "VALIDATION_ERROR"),
        (b"[]", {"content-type": "application/json"}, 400, "VALIDATION_ERROR"),
        (b"<definition/>", {"content-type": "application/xml"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"{}", {"content-type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ],
)
async def test_bad_bodies_get_an_error_in_the_rest_shape(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str], status: int, code: str
):
    answer = await client.post("/v1/definitions", content=content, headers=headers)
    assert answer.status_code == status
    assert answer.json()["error"] == code and answer.json()["message"]


async def test_a_json_body_without_a_content_type_is_accepted(client: httpx.AsyncClient):
    import json

    answer = await client.post("/v1/definitions", content=json.dumps(definition()).encode())
    assert answer.status_code == 201


async def test_a_name_no_database_can_hold_is_refused(client: httpx.AsyncClient):
    answer = await client.post("/v1/definitions", json={**definition(), "name": "nul\x00"})
    assert answer.status_code == 400 and answer.json()["problems"][0]["path"] == "name"


async def test_get_latest_and_a_version(client: httpx.AsyncClient):
    document = {**definition(), "metadata": {"owner": "ops"}, "delegateClass": "kept"}
    await client.post("/v1/definitions", json=document)
    await client.post("/v1/definitions", json={**document, "name": "Second"})
    latest = await client.get("/v1/definitions/TEST::flow")
    assert latest.status_code == 200
    assert latest.json()["version"] == 2 and latest.json()["name"] == "Second"
    assert latest.json()["delegateClass"] == "kept"
    assert latest.json()["metadata"] == {"owner": "ops"}
    first = await client.get("/v1/definitions/TEST%3A%3Aflow/versions/1")
    assert first.status_code == 200
    assert {k: v for k, v in first.json().items() if k not in ("version", "uploadedAt")} == document
    for path, status in [
        ("/v1/definitions/TEST::nope", 404),
        ("/v1/definitions/TEST::flow/versions/3", 404),
        ("/v1/definitions/TEST::flow/versions/0", 400),
        ("/v1/definitions/TEST::flow/versions/x", 400),
        ("/v1/definitions/TEST::flow/versions/99999999999999999999", 400),
    ]:
        answer = await client.get(path)
        assert answer.status_code == status, path
        assert answer.json()["error"] in ("NOT_FOUND", "VALIDATION_ERROR")


async def test_list_pages_with_keyword_and_total(client: httpx.AsyncClient):
    for n in range(5):
        await client.post("/v1/definitions", json=definition(f"LIST::d{n}"))
    await client.post("/v1/definitions", json={**definition("OTHER::x"), "name": "Special"})
    page = (await client.get("/v1/definitions", params={"page": 1, "pageSize": 2})).json()
    assert [d["id"] for d in page["items"]] == ["LIST::d2", "LIST::d3"]
    assert (page["page"], page["pageSize"], page["total"]) == (1, 2, 6)
    found = (await client.get("/v1/definitions", params={"keyword": "special"})).json()
    assert [d["id"] for d in found["items"]] == ["OTHER::x"] and found["total"] == 1
    beyond = (await client.get("/v1/definitions", params={"page": 9})).json()
    assert beyond["items"] == [] and beyond["total"] == 6
    default = (await client.get("/v1/definitions")).json()
    assert (default["page"], default["pageSize"], len(default["items"])) == (0, 20, 6)


@pytest.mark.parametrize(
    "params",
    [{"pageSize": 0}, {"pageSize": 201}, {"page": -1}, {"page": "x"}, {"pageSize": "1.5"}],
)
async def test_pagination_bounds(client: httpx.AsyncClient, params: dict[str, object]):
    answer = await client.get("/v1/definitions", params=params)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "VALIDATION_ERROR" and body["problems"][0]["path"].startswith("query.")
    assert (await client.get("/v1/definitions", params={"pageSize": 200})).status_code == 200
