"""Helpers of the dashboard's browser tests: a real server process, store calls made from
a thread of their own (Playwright's sync API owns the test thread's event loop), and the
screenshots the tests leave in build/screenshots/."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx

import durable

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCREENSHOTS = Path(os.environ.get("DURABLE_SCREENSHOTS", ROOT / "build" / "screenshots"))
T = TypeVar("T")


def store_call(dsn: str, work: Callable[[durable.App], Awaitable[T]]) -> T:
    """Run ``work`` on an App over ``dsn``, on a thread with its own event loop."""

    async def main() -> T:
        async with durable.App(dsn) as app:
            return await work(app)

    return in_thread(main)


def in_thread(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())`` on a thread of its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result(timeout=60)


async def drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    from durable.store.postgres import parse_dsn

    conn = await asyncpg.connect(parse_dsn(dsn)[0])
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def dashboard_server(dsn: str, folder: Path, *extra: str) -> Iterator[str]:
    """``durable serve`` with a worker for ``dashboard_app:app``; yields its base URL."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(EXAMPLES)])}
    env.pop("DURABLE_API_TOKEN", None)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"serve-{port}.log"
    command = [sys.executable, "-m", "durable.cli", "serve", "--dsn", dsn, "--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*command, "--app", "dashboard_app:app", *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log_path.read_text()
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
            yield base
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    output = log_path.read_text()
    assert "Traceback" not in output, output


def screenshot(page: Any, name: str) -> None:
    """Save the whole page as build/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
