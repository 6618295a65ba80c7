"""Starting and stopping the worker subprocesses of W4, W5, W6 and W7."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _harness import HERE, child_env


async def wait_ready(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():  # noqa: ASYNC240
        if proc.poll() is not None:
            raise RuntimeError(f"worker process exited with {proc.returncode} before ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker process not ready within {timeout} s")
        await asyncio.sleep(0.02)


def spawn(script: str, *args: str, tmp: str, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``benchmarks/<script>`` with a fresh ready file; return it and the file."""
    ready = Path(tmp) / f"ready-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, str(HERE / script), *args, str(ready)]
    # the process lives through the measurement; Popen returns at once
    proc = subprocess.Popen(command, env=child_env(**env))
    return proc, ready


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
