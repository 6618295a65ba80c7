"""Plain helpers for the server tests: definitions to upload."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


def step(step_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "type": kind, **fields}


def definition(definition_id: str = "TEST::flow", *steps: dict[str, Any]) -> dict[str, Any]:
    body = steps or (step("remote", "SERVICE_TASK", jobType="rest-test", nextStep="done"),)
    return {"id": definition_id, "name": "Test flow", "steps": [*body, step("done", "END")]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server_process(dsn: str, folder: Path, *extra: str) -> Iterator[str]:
    """``python -m durable.server`` on a free port, with a worker for ``server_app:app``;
    yields its base URL once /healthz answers, and stops it (SIGTERM) afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "durable.server", "--dsn", dsn, "--port", str(port)]
    with running_server([*command, "--app", "server_app:app", *extra], port, folder) as base:
        yield base


@contextlib.contextmanager
def engine_process(dsn: str, folder: Path, *extra: str, name: str = "engine") -> Iterator[str]:
    """``durable serve`` alone (no App) on a free port; yields its base URL once /healthz
    answers, and stops it (SIGTERM) afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "durable.cli", "serve", "--dsn", dsn, "--port", str(port)]
    with running_server([*command, *extra], port, folder, name=name) as base:
        yield base


@contextlib.contextmanager
def running_server(
    command: list[str], port: int, folder: Path, *, name: str = "server"
) -> Iterator[str]:
    """Run ``command`` (a server on ``port``) until the block ends; its log must be clean."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    env.pop("DURABLE_API_TOKEN", None)
    log_path = folder / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # uvicorn re-raises SIGTERM once it has shut down gracefully
    output = log_path.read_text()
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output and "Traceback" not in output
