"""``durable serve`` alone is the engine: no App, no other process. A definition uploaded
over HTTP runs, its SERVICE_TASKs become jobs that external workers poll and complete;
several servers on one Postgres share the work, each job handed out once."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rest_helpers import definition, engine_process, free_port, step

ORDER_FLOW = definition(
    "ENGINE::order",
    step("charge", "SERVICE_TASK", jobType="engine-charge", nextStep="ship"),
    step("ship", "SERVICE_TASK", jobType="engine-ship", nextStep="done"),
)
JOB_TYPES = ["engine-charge", "engine-ship"]


def _instance(client: httpx.Client, instance_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/instances/{instance_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _wait_status(client: httpx.Client, instance_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (body := _instance(client, instance_id))["status"] != status:
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    return body


def _poll(client: httpx.Client, worker: str, max_jobs: int = 1) -> list[dict[str, Any]]:
    answer = client.post(
        "/v1/jobs/poll", json={"workerId": worker, "jobTypes": JOB_TYPES, "maxJobs": max_jobs}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["jobs"]  # type: ignore[no-any-return]


def test_the_server_alone_runs_a_flow_whose_jobs_an_external_worker_completes(
    dsn: str, tmp_path: Path
):
    with engine_process(dsn, tmp_path) as base, httpx.Client(base_url=base) as client:
        assert client.post("/v1/definitions", json=ORDER_FLOW).status_code == 201
        started = client.post(
            "/v1/instances", json={"definitionId": "ENGINE::order", "variables": {"n": 1}}
        )
        assert started.status_code == 201, started.text
        iid = started.json()["id"]
        done: list[str] = []
        deadline = time.monotonic() + 30
        while len(done) < 2:
            assert time.monotonic() < deadline, (done, _instance(client, iid))
            for job in _poll(client, "sdk-worker"):
                assert job["instanceId"] == iid
                answer = client.post(
                    f"/v1/jobs/{job['id']}/complete",
                    json={"workerId": "sdk-worker", "variables": {job["stepId"]: "ok"}},
                )
                assert answer.status_code == 204, answer.text
                done.append(job["stepId"])
            time.sleep(0.05)
        assert done == ["charge", "ship"]
        body = _wait_status(client, iid, "COMPLETED")
        assert body["variables"] == {"n": 1, "charge": "ok", "ship": "ok"}
        [server_worker] = client.get("/v1/workers").json()["workers"]
        assert server_worker["live"] and server_worker["flows"]


def test_no_worker_serves_the_api_only(dsn: str, tmp_path: Path):
    with (
        engine_process(dsn, tmp_path, "--no-worker") as base,
        httpx.Client(base_url=base) as client,
    ):
        assert client.post("/v1/definitions", json=ORDER_FLOW).status_code == 201
        iid = client.post("/v1/instances", json={"definitionId": "ENGINE::order"}).json()["id"]
        time.sleep(1.5)  # a worker would have reached the first job by now
        assert _poll(client, "sdk-worker") == []
        assert _instance(client, iid)["currentStepIds"] == []
        assert client.get("/v1/workers").json()["workers"] == []


def test_two_servers_on_one_postgres_hand_out_each_job_once(pg_dsn: str, tmp_path: Path):
    runs = 12
    with (
        engine_process(pg_dsn, tmp_path, name="a") as base_a,
        engine_process(pg_dsn, tmp_path, name="b") as base_b,
        httpx.Client(base_url=base_a) as a,
        httpx.Client(base_url=base_b) as b,
    ):
        assert a.post("/v1/definitions", json=ORDER_FLOW).status_code == 201
        ids = [
            client.post(
                "/v1/instances", json={"definitionId": "ENGINE::order", "variables": {"i": i}}
            ).json()["id"]
            for i, client in zip(range(runs), itertools.cycle([a, b]), strict=False)
        ]
        handed: list[str] = []
        workers = itertools.cycle([(a, "w-a"), (b, "w-b")])
        deadline = time.monotonic() + 60
        while len(handed) < 2 * runs:
            assert time.monotonic() < deadline, len(handed)
            client, worker = next(workers)
            for job in _poll(client, worker, max_jobs=5):
                handed.append(job["id"])
                answer = client.post(
                    f"/v1/jobs/{job['id']}/complete", json={"workerId": worker, "variables": {}}
                )
                assert answer.status_code == 204, answer.text
            time.sleep(0.02)
        assert len(set(handed)) == len(handed) == 2 * runs
        for iid in ids:
            _wait_status(a, iid, "COMPLETED")
        assert _poll(a, "w-a") == [] and _poll(b, "w-b") == []
        live = [w for w in a.get("/v1/workers").json()["workers"] if w["live"]]
        assert len({w["pid"] for w in live}) == 2


def test_the_log_level_applies_to_the_access_log(tmp_path: Path):
    dsn = f"sqlite:///{tmp_path / 'levels.db'}"
    for level, shown in (("WARNING", False), ("INFO", True)):
        port = free_port()
        command = [sys.executable, "-m", "durable.cli", "serve", "--dsn", dsn, "--no-worker"]
        command += ["--port", str(port), "--log-level", level]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None and time.monotonic() < deadline
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/v1/workers").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
        finally:
            proc.terminate()
            output, _ = proc.communicate(timeout=20)
        assert ("GET /v1/workers" in output.decode()) is shown, output.decode()
