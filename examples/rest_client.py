"""Drive a JSON flow over the REST API as an external job worker would.

The script serves the REST API on a free local port (the same server ``durable serve``
runs), with an in-process worker executing the flow, on the embedded store. Then, over
plain HTTP only, it uploads a definition, starts an instance, polls for the flow's
SERVICE_TASK job like a Rochallor SDK worker, completes it, and reads the result.

    pip install 'durable[server]'
    python examples/rest_client.py

Against a server you run yourself, keep only ``drive()``: ``durable serve --app mod:app``.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import uvicorn

import durable
from durable.server import create_app

DEFINITION = {
    "id": "SHOP::ship-order",
    "name": "Ship an order",
    "steps": [
        {"id": "pack", "name": "Pack", "type": "SERVICE_TASK", "jobType": "pack-order",
         "nextStep": "label"},
        {"id": "label", "name": "Label", "type": "TRANSFORMATION",
         "transformations": {"label": "${'PARCEL-' + orderId}"}, "nextStep": "done"},
        {"id": "done", "name": "Done", "type": "END"},
    ],
}  # fmt: skip


async def drive(base_url: str) -> dict[str, Any]:
    """What any HTTP client does: upload, start, work the job, read the instance."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        uploaded = (await http.post("/v1/definitions", json=DEFINITION)).json()
        print(f"uploaded {uploaded['id']} version {uploaded['version']}")
        started = await http.post(
            "/v1/instances",
            json={"definitionId": "SHOP::ship-order", "variables": {"orderId": "o-42"}},
        )
        instance_id = started.json()["id"]
        print(f"started instance {instance_id}: {started.json()['status']}")

        # An external worker: poll for pack-order jobs, do the work, complete the job.
        while True:
            poll = {"workerId": "packer-1", "jobTypes": ["pack-order"], "leaseSeconds": 30}
            jobs = (await http.post("/v1/jobs/poll", json=poll)).json()["jobs"]
            if jobs:
                break
            await asyncio.sleep(0.1)
        job = jobs[0]
        print(f"packing order {job['variables']['orderId']} (job {job['id'][:8]}...)")
        done = await http.post(
            f"/v1/jobs/{job['id']}/complete",
            json={"workerId": "packer-1", "variables": {"boxes": 2}},
        )
        assert done.status_code == 204

        while True:  # a client polls; it has no other way to hear of the end
            instance = (await http.get(f"/v1/instances/{instance_id}")).json()
            if instance["status"] in ("COMPLETED", "FAILED"):
                break
            await asyncio.sleep(0.1)
        history = (await http.get(f"/v1/instances/{instance_id}/history")).json()["items"]
        print("steps:", ", ".join(f"{s['stepId']} {s['status']}" for s in history))
        return instance  # type: ignore[no-any-return]


async def main() -> None:
    with socket.socket() as sock:  # a free port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with durable.App() as app, app.worker(poll_interval=0.2):
        config = uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
            await asyncio.sleep(0.05)
        try:
            instance = await drive(f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            await serving
    print(f"instance {instance['status']}: {instance['variables']}")
    assert instance["variables"] == {"orderId": "o-42", "boxes": 2, "label": "PARCEL-o-42"}


if __name__ == "__main__":
    asyncio.run(main())
