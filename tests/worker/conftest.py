"""Helpers for tests that run workers as real processes (``crash_app`` is their code)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def env(tmp_path: Path, dsn: str) -> dict[str, str]:
    return {
        **os.environ,
        "DURABLE_DSN": dsn,
        "CRASH_LOG": str(tmp_path / "side-effects.log"),
        "PYTHONPATH": str(HERE),
    }


@pytest.fixture
def spawn(env: dict[str, str], tmp_path: Path) -> Iterator[Spawn]:
    """Start ``durable worker crash_app:app`` processes; all are killed at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*options: str, lease: float = 2.0) -> subprocess.Popen[bytes]:
        command = [
            sys.executable, "-m", "durable.cli", "worker", "crash_app:app",
            "--lease-seconds", str(lease), "--poll-interval", "0.2", *options,
        ]  # fmt: skip
        with open(tmp_path / f"worker-{len(procs)}.log", "wb") as log:
            proc = subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
            )
        proc.log_path = tmp_path / f"worker-{len(procs)}.log"  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
