"""A rough measurement of W1, W2, W4 and W8 (BENCHMARKS.md) with the commit floor beside them.

    python benchmarks/quick.py                                  # embedded SQLite
    python benchmarks/quick.py --dsn postgresql://root@127.0.0.1/test

W1: one run at a time, start -> result of a workflow with 10 no-op activities.
W2: N runs x 10 no-op activities started at once, one worker (in this process).
W4: start in this process, worker idle in another: start -> first activity begins.
W8: W2 with the JSON flow equivalent (10 SERVICE_TASKs with in-process handlers).
Floor: a one-row insert per transaction on one connection (and on 16 for Postgres).
The full suite against the peer is its own tool; this one gives the figures quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from bench_app import first_step, ten_step_flow, ten_steps

import durable
from durable.store.postgres import parse_dsn

HERE = Path(__file__).parent


def sqlite_floor(folder: Path, synchronous: str, count: int = 2000) -> float:
    conn = sqlite3.connect(folder / "floor.db", isolation_level=None)
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
    return count / elapsed


async def postgres_floor(dsn: str, connections: int, seconds: float = 3.0) -> float:
    url = parse_dsn(dsn)[0]
    table = f"durable_floor_{uuid.uuid4().hex[:8]}"
    setup = await asyncpg.connect(url)
    await setup.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, v text)")
    conns = [await asyncpg.connect(url) for _ in range(connections)]
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop(conn: asyncpg.Connection) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await conn.execute(f"INSERT INTO {table} (v) VALUES ('x')")
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in conns))
    elapsed = time.perf_counter() - start
    for conn in conns:
        await conn.close()
    await setup.execute(f"DROP TABLE {table}")
    await setup.close()
    return done / elapsed


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
                await handle.result(timeout=600)
        elapsed = time.perf_counter() - start
    return runs * 10 / elapsed, runs / elapsed


async def w8(dsn: str, runs: int) -> float:
    async with durable.App(dsn) as app:
        ref = await app.definitions.upload(ten_step_flow())
        handles = [await app.start_flow(ref.id) for _ in range(runs)]
        start = time.perf_counter()
        async with app.worker(concurrency=runs):
            for handle in handles:
                await handle.result(timeout=600)
        elapsed = time.perf_counter() - start
    return runs * 10 / elapsed


async def w4(dsn: str, runs: int) -> tuple[float, float]:
    env = {**os.environ, "DURABLE_DSN": dsn, "PYTHONPATH": str(HERE)}
    command = [sys.executable, "-m", "durable.cli", "worker", "bench_app:app"]
    # Popen returns at once; the worker process lives through the measurement
    worker = subprocess.Popen([*command, "--log-level", "WARNING"], env=env, cwd=HERE)  # noqa: ASYNC220
    try:
        async with durable.App(dsn) as app:
            await (await app.start(first_step)).result(timeout=60)  # the worker is up
            latencies = []
            for _ in range(runs):
                await asyncio.sleep(0.02)  # the worker is idle again
                started = time.time()
                began = await (await app.start(first_step)).result(timeout=30)
                latencies.append((began - started) * 1000)
    finally:
        worker.terminate()
        worker.wait()
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", help="default: a fresh SQLite file")
    parser.add_argument("--runs-w1", type=int, default=200)
    parser.add_argument("--runs-w2", type=int, default=1000)
    parser.add_argument("--runs-w4", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.dsn and args.dsn.startswith("postgres"):
            dsn = f"{args.dsn}{'&' if '?' in args.dsn else '?'}schema=bench_{uuid.uuid4().hex[:8]}"
            one = await postgres_floor(args.dsn, 1)
            many = await postgres_floor(args.dsn, 16)
            print(f"Postgres floor: {one:,.0f} commits/s on 1 connection ({1000 / one:.3f} ms),")
            print(f"                {many:,.0f} commits/s on 16 connections")
        else:
            dsn = args.dsn or f"sqlite:///{Path(tmp) / 'bench.db'}"
            one = sqlite_floor(Path(tmp), "FULL")
            print(f"SQLite floor: {one:,.0f} commits/s ({1000 / one:.3f} ms, synchronous=FULL)")
        ms_per_step = await w1(dsn, args.runs_w1)
        print(f"W1 latency     {ms_per_step:8.3f} ms per step ({args.runs_w1} runs x 10)")
        steps_s, runs_s = await w2(dsn, args.runs_w2)
        print(f"W2 throughput  {steps_s:8.0f} steps/s, {runs_s:.0f} runs/s ({args.runs_w2} x 10)")
        flow_steps_s = await w8(dsn, args.runs_w2)
        print(f"W8 JSON flow   {flow_steps_s:8.0f} steps/s ({flow_steps_s / steps_s:.0%} of W2)")
        p50, p99 = await w4(dsn, args.runs_w4)
        print(f"W4 start -> first activity, worker in another process: p50 {p50:.2f} ms,"
              f" p99 {p99:.2f} ms")  # fmt: skip
        if dsn.startswith("postgres"):
            url, schema = parse_dsn(dsn)
            conn = await asyncpg.connect(url)
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
