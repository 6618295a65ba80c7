"""Auth, /healthz, /metrics, /openapi.json and the error shape of unknown routes."""

from __future__ import annotations

import anyio
import httpx
import pytest
from rest_helpers import definition

import durable
from durable.server import create_app

pytestmark = pytest.mark.anyio


def _client(app: durable.App, token: str | None = None, **options: float) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(app, token=token, **options))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_a_token_guards_every_endpoint_but_healthz(app: durable.App):
    async with _client(app, token="s3cret") as client:
        for method, path in [
            ("GET", "/v1/definitions"),
            ("POST", "/v1/jobs/poll"),
            ("GET", "/v1/instances/x"),
            ("GET", "/metrics"),
            ("GET", "/openapi.json"),
            ("GET", "/nowhere"),
        ]:
            for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret"}):
                answer = await client.request(method, path, headers=headers)
                assert answer.status_code == 401, (method, path, headers)
                assert answer.json()["error"] == "UNAUTHORIZED"
                assert answer.headers["www-authenticate"] == "Bearer"
        assert (await client.get("/healthz")).status_code == 200
        ok = await client.get("/v1/definitions", headers={"Authorization": "bearer s3cret"})
        assert ok.status_code == 200
        document = await client.get("/openapi.json", headers={"Authorization": "Bearer s3cret"})
        assert document.json()["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


async def test_the_token_comes_from_the_environment(
    app: durable.App, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DURABLE_API_TOKEN", "from-env")
    async with _client(app) as client:
        assert (await client.get("/v1/definitions")).status_code == 401
        headers = {"authorization": "Bearer from-env"}
        assert (await client.get("/v1/definitions", headers=headers)).status_code == 200


async def test_no_token_no_auth(client: httpx.AsyncClient):
    assert (await client.get("/v1/definitions")).status_code == 200
    assert "securitySchemes" not in (await client.get("/openapi.json")).json()["components"]


async def test_healthz_reports_the_store(dsn: str):
    app = durable.App(dsn)
    async with _client(app) as client:
        down = await client.get("/healthz")  # the App is not open: no store to ask
        assert down.status_code == 503 and down.json()["error"] == "STORE_UNAVAILABLE"
        async with app:
            up = await client.get("/healthz")
            assert up.status_code == 200 and up.json() == {"status": "ok"}


async def test_unknown_routes_and_methods_have_the_error_shape(client: httpx.AsyncClient):
    missing = await client.get("/v2/nothing")
    assert missing.status_code == 404 and missing.json()["error"] == "NOT_FOUND"
    wrong = await client.delete("/v1/definitions")
    assert wrong.status_code == 405 and wrong.json()["error"] == "METHOD_NOT_ALLOWED"
    nul = await client.get("/v1/instances", params={"businessKey": "a\x00b"})
    assert nul.status_code == 400 and nul.json()["error"] == "VALIDATION_ERROR"


async def test_openapi_has_no_422_and_names_every_endpoint(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    assert "422" not in str(document) and "HTTPValidationError" not in document["components"]
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert operations >= {
        ("POST", "/v1/definitions"),
        ("GET", "/v1/definitions"),
        ("GET", "/v1/definitions/{definition_id}"),
        ("GET", "/v1/definitions/{definition_id}/versions/{version}"),
        ("POST", "/v1/instances"),
        ("GET", "/v1/instances"),
        ("GET", "/v1/instances/{instance_id}"),
        ("GET", "/v1/instances/{instance_id}/history"),
        ("POST", "/v1/instances/{instance_id}/cancel"),
        ("POST", "/v1/instances/{instance_id}/user-tasks/{step_id}/complete"),
        ("POST", "/v1/instances/{instance_id}/signals/{wait_step_id}"),
        ("POST", "/v1/jobs/poll"),
        ("POST", "/v1/jobs/{job_id}/complete"),
        ("POST", "/v1/jobs/{job_id}/fail"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
    }
    upload = document["paths"]["/v1/definitions"]["post"]["requestBody"]["content"]
    assert upload["application/json"]["schema"] == {"$ref": "#/components/schemas/Definition"}


def _samples(text: str) -> dict[str, float]:
    """Samples by name and labels in a canonical order: ``name{a="1",b="2"}``."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            name, _, labels = series.partition("{")
            pairs = sorted(p for p in labels.rstrip("}").split(",") if p)
            values[f"{name}{{{','.join(pairs)}}}" if pairs else name] = float(value)
    return values


async def test_metrics_come_from_the_database(client: httpx.AsyncClient, running: durable.App):
    await client.post("/v1/definitions", json=definition())
    ids = [
        (await client.post("/v1/instances", json={"definitionId": "TEST::flow"})).json()["id"]
        for _ in range(3)
    ]
    with anyio.fail_after(15):
        while len(jobs := await running.jobs.poll("w1", ["rest-test"], max_jobs=3)) < 1:
            await anyio.sleep(0.05)
    for job in jobs:
        await running.jobs.complete(job.id, "w1", {})
    while True:
        statuses = [(await client.get(f"/v1/instances/{i}")).json()["status"] for i in ids]
        if statuses.count("COMPLETED") == len(jobs):
            break
        await anyio.sleep(0.05)

    answer = await client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    samples = _samples(answer.text)
    flow = 'workflow="TEST::flow"'
    assert samples["durable_store_up"] == 1
    assert samples[f"durable_runs_started_total{{{flow}}}"] == 3
    assert samples[f"durable_runs_completed_total{{{flow}}}"] == len(jobs)
    assert samples[f"durable_runs_failed_total{{{flow}}}"] == 0
    open_runs = [samples[f'durable_runs{{status="{s}",{flow}}}'] for s in ("PENDING", "RUNNING")]
    open_runs.append(samples[f'durable_runs{{status="WAITING",{flow}}}'])
    assert sum(open_runs) == 3 - len(jobs)
    assert "durable_runs_runnable" in samples
    service = f'step_type="SERVICE_TASK",{flow}'
    assert samples[f"durable_step_duration_seconds_count{{{service}}}"] == len(jobs)
    assert samples[f'durable_step_duration_seconds_bucket{{le="+Inf",{service}}}'] == len(jobs)
    assert samples[f'durable_step_duration_seconds_bucket{{le="604800.0",{service}}}'] == len(jobs)
    assert samples[f"durable_step_duration_seconds_sum{{{service}}}"] >= 0
    end = f'step_type="END",{flow}'
    assert samples[f"durable_step_duration_seconds_count{{{end}}}"] == len(jobs)
    if len(jobs) < 3:
        assert samples['durable_job_queue_depth{job_type="rest-test"}'] >= 0


async def test_metrics_count_leases_and_late_completions(running: durable.App):
    async with _client(running, metrics_max_age=0) as client:  # a fresh read per scrape
        await _leases_and_late_completions(client, running)


async def _leases_and_late_completions(client: httpx.AsyncClient, running: durable.App) -> None:
    await client.post("/v1/definitions", json=definition())
    await client.post("/v1/instances", json={"definitionId": "TEST::flow"})
    with anyio.fail_after(15):
        while not (jobs := await running.jobs.poll("w1", ["rest-test"], lease_seconds=0.05)):
            await anyio.sleep(0.05)
    await anyio.sleep(0.1)  # the lease has passed; nobody polled yet
    samples = _samples((await client.get("/metrics")).text)
    assert samples['durable_job_leases_expired{job_type="rest-test"}'] == 1
    assert samples['durable_job_queue_depth{job_type="rest-test"}'] == 1
    assert samples['durable_jobs_held{job_type="rest-test"}'] == 0
    [again] = await running.jobs.poll("w2", ["rest-test"], lease_seconds=60)
    late = await client.post(f"/v1/jobs/{jobs[0].id}/complete", json={"workerId": "w1"})
    assert late.status_code == 409
    samples = _samples((await client.get("/metrics")).text)
    assert samples['durable_jobs_held{job_type="rest-test"}'] == 1
    assert samples['durable_job_leases_expired{job_type="rest-test"}'] == 0
    assert samples['durable_server_job_conflicts_total{operation="complete"}'] == 1
    assert again.id == jobs[0].id
