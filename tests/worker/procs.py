"""Plain helpers for the real-process worker tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import anyio


def log_lines(env: dict[str, str]) -> list[str]:
    path = Path(env["CRASH_LOG"])
    return path.read_text().splitlines() if path.exists() else []


def worker_log(proc: subprocess.Popen[bytes]) -> str:
    return Path(proc.log_path).read_text()  # type: ignore[attr-defined]


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)
