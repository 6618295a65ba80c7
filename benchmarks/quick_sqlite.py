"""A rough measurement of W1 and W2 (BENCHMARKS.md) on the embedded store.

    python benchmarks/quick_sqlite.py [--runs-w1 200] [--runs-w2 1000] [--synchronous full]

W1: one run at a time, start -> result of a workflow with 10 no-op activities.
W2: N runs x 10 no-op activities started at once, one worker process.
Also prints the SQLite commit floor (a one-row insert per transaction) on the same disk.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

import durable


@durable.activity
async def noop(i: int) -> int:
    return i


@durable.workflow(name="bench-ten-steps")
async def ten_steps(ctx: durable.Context) -> int:
    total = 0
    for i in range(10):
        total += await noop(i)
    return total


def commit_floor(path: Path, synchronous: str, count: int = 2000) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    start = time.perf_counter()
    for i in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (str(i),))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / count * 1000


async def w1(dsn: str, runs: int) -> float:
    async with durable.App(dsn) as app, app.worker():
        await (await app.start(ten_steps)).result(timeout=30)  # warm up
        start = time.perf_counter()
        for _ in range(runs):
            await (await app.start(ten_steps)).result(timeout=30)
        return (time.perf_counter() - start) / (runs * 10) * 1000


async def w2(dsn: str, runs: int) -> tuple[float, float]:
    async with durable.App(dsn) as app:
        handles = [await app.start(ten_steps) for _ in range(runs)]
        start = time.perf_counter()
        async with app.worker(concurrency=runs):
            for handle in handles:
                await handle.result(timeout=300)
        elapsed = time.perf_counter() - start
    return runs * 10 / elapsed, runs / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs-w1", type=int, default=200)
    parser.add_argument("--runs-w2", type=int, default=1000)
    parser.add_argument("--synchronous", default="full")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor = commit_floor(folder / "floor.db", args.synchronous)
        suffix = f"?synchronous={args.synchronous}"
        ms_per_step = await w1(f"sqlite:///{folder / 'w1.db'}{suffix}", args.runs_w1)
        steps_s, runs_s = await w2(f"sqlite:///{folder / 'w2.db'}{suffix}", args.runs_w2)
    print(f"SQLite synchronous={args.synchronous}")
    print(f"  commit floor          {floor:8.3f} ms per commit")
    print(f"  W1 latency            {ms_per_step:8.3f} ms per step ({args.runs_w1} runs x 10)")
    print(f"  W2 throughput         {steps_s:8.0f} steps/s, {runs_s:.0f} runs/s ({args.runs_w2} x 10)")


if __name__ == "__main__":
    asyncio.run(main())
