"""A durable worker process for the benchmark (W4, W5, W7): ``bench_app``'s workflows.

    python benchmarks/worker_proc.py DSN [--concurrency N] [--lease S] READY_FILE

Writes READY_FILE once it claims runs, then works until SIGTERM (or SIGKILL).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app  # noqa: F401  (registers the workflows)

import durable


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("ready")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--lease", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with durable.App(args.dsn) as app:
        worker = app.worker(concurrency=args.concurrency, lease_seconds=args.lease)
        async with worker:
            Path(args.ready).write_text("ready")  # noqa: ASYNC240
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
