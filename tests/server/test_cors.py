"""CORS as the Rochallor engine answers it: a browser client (its Workflow Modeller) on
another origin can preflight and call the API; ``--cors-origin`` restricts or turns it off;
with a token, only the preflight passes without it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from rest_helpers import definition, engine_process

import durable
from durable.server import create_app

pytestmark = pytest.mark.anyio

MODELLER = "http://localhost:5173"
PREFLIGHT = {
    "Origin": MODELLER,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, authorization",
}


def _client(app: durable.App, origins: Sequence[str] | None, token: str | None = None):
    api = create_app(app, token=token, cors_origins=origins)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://test")


def _assert_preflight(answer: httpx.Response, origin: str | None) -> None:
    assert answer.status_code in (200, 204), answer.text
    assert answer.headers.get("access-control-allow-origin") == origin
    assert answer.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert answer.headers["access-control-allow-headers"] == "Accept, Authorization, Content-Type"
    assert int(answer.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in answer.headers


async def test_any_origin_by_default(app: durable.App):
    async with _client(app, ("*",)) as client:
        for path in ("/v1/definitions", "/v1/instances/x", "/v1/jobs/poll"):
            _assert_preflight(await client.options(path, headers=PREFLIGHT), "*")
        uploaded = await client.post(
            "/v1/definitions", json=definition("CORS::flow"), headers={"Origin": MODELLER}
        )
        assert uploaded.status_code == 201
        assert uploaded.headers["access-control-allow-origin"] == "*"
        listed = await client.get("/v1/definitions", headers={"Origin": MODELLER})
        assert listed.headers["access-control-allow-origin"] == "*"
        assert [d["id"] for d in listed.json()["items"]] == ["CORS::flow"]
        missing = await client.get("/v1/instances/nope", headers={"Origin": MODELLER})
        assert missing.status_code == 404  # errors are readable by the browser too
        assert missing.headers["access-control-allow-origin"] == "*"


async def test_listed_origins_only(app: durable.App):
    async with _client(app, ("https://modeller.example", MODELLER)) as client:
        _assert_preflight(await client.options("/v1/definitions", headers=PREFLIGHT), MODELLER)
        other = {**PREFLIGHT, "Origin": "https://evil.example"}
        _assert_preflight(await client.options("/v1/definitions", headers=other), None)
        allowed = await client.get("/v1/definitions", headers={"Origin": MODELLER})
        assert allowed.headers["access-control-allow-origin"] == MODELLER
        assert "Origin" in allowed.headers["vary"]
        refused = await client.get("/v1/definitions", headers={"Origin": "https://evil.example"})
        assert refused.status_code == 200 and "access-control-allow-origin" not in refused.headers


async def test_no_cors(app: durable.App):
    async with _client(app, None) as client:
        answer = await client.get("/v1/definitions", headers={"Origin": MODELLER})
        assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
        assert (await client.options("/v1/definitions", headers=PREFLIGHT)).status_code == 405


async def test_a_preflight_needs_no_token_the_request_does(app: durable.App):
    async with _client(app, ("*",), token="s3cret") as client:
        _assert_preflight(await client.options("/v1/definitions", headers=PREFLIGHT), "*")
        refused = await client.get("/v1/definitions", headers={"Origin": MODELLER})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "*"
        auth = {"Origin": MODELLER, "Authorization": "Bearer s3cret"}
        assert (await client.get("/v1/definitions", headers=auth)).status_code == 200


@pytest.mark.parametrize("dsn", ["sqlite"], indirect=True)
def test_cors_origin_and_token_on_a_server_process(dsn: str, tmp_path: Path):
    options = ("--token", "t0k3n", "--cors-origin", MODELLER, "--cors-origin", "https://x.example")
    with engine_process(dsn, tmp_path, *options) as base, httpx.Client(base_url=base) as client:
        _assert_preflight(client.options("/v1/definitions", headers=PREFLIGHT), MODELLER)
        without = client.get("/v1/definitions", headers={"Origin": MODELLER})
        assert without.status_code == 401
        assert without.headers["access-control-allow-origin"] == MODELLER
        auth = {"Origin": MODELLER, "Authorization": "Bearer t0k3n"}
        listed = client.get("/v1/definitions", headers=auth)
        assert listed.status_code == 200
        assert listed.headers["access-control-allow-origin"] == MODELLER
    with engine_process(dsn, tmp_path, "--cors-origin", "none") as base:
        answer = httpx.get(f"{base}/v1/definitions", headers={"Origin": MODELLER})
        assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("special", ["none", "*"])
def test_none_or_any_cannot_be_mixed_with_origins(special: str, tmp_path: Path):
    import subprocess
    import sys

    command = [
        sys.executable, "-m", "durable.cli", "serve", "--dsn", f"sqlite:///{tmp_path}/x.db",
        "--port", "0", "--cors-origin", special, "--cors-origin", MODELLER,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"--cors-origin {special} cannot be combined with other origins" in done.stderr
