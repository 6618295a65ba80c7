"""W10: operations at scale on Postgres (docs/performance.md; BENCHMARKS.md W10).

    python benchmarks/w10.py [--dsn DSN] [--json FILE] [--quick]

1. Bulk cancel of 10,000 tagged runs (beside 1,000 untagged ones): seconds.
2. ``list_runs`` by tag over 100,000 runs (1,000 per tag value): ms per page, median of 20.
3. W2 (1,000 runs x 10 no-op activities, one worker) alone, then again while another
   process prunes 100,000 finished runs (3 journal rows, a tag and an event each):
   steps/s both times, and how long the prune took.

Each part gets a fresh schema on the server, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from _harness import DEFAULT_DSN, plain_dsn, with_schema

import durable

OLD = 1_000_000_000.0  # 2001: long finished


async def _fresh(base: str) -> tuple[str, str]:
    schema = f"w10_{uuid.uuid4().hex[:10]}"
    return schema, with_schema(base, schema)


async def _drop(base: str, schema: str) -> None:
    conn = await asyncpg.connect(plain_dsn(base))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def _sql(base: str, schema: str, *statements: str) -> None:
    conn = await asyncpg.connect(plain_dsn(base), server_settings={"search_path": schema})
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _runs(n: int, prefix: str, status: str, at: str) -> str:
    return f"""
    INSERT INTO runs (id, workflow, status, args, created_at, updated_at, runnable_at)
    SELECT '{prefix}' || i, 'bench-ten-steps', '{status}', '[]', {at}, {at},
           CASE WHEN '{status}' = 'PENDING' THEN {at} END
    FROM generate_series(1, {n}) AS i"""


async def bulk_cancel(base: str, n: int) -> dict[str, Any]:
    schema, dsn = await _fresh(base)
    try:
        async with durable.App(dsn) as app:
            now = "extract(epoch from now())"
            await _sql(
                base,
                schema,
                _runs(n, "t-", "PENDING", now),
                _runs(n // 10, "u-", "PENDING", now),
                f"INSERT INTO run_tags SELECT 't-' || i, 'batch', 'b7'"
                f" FROM generate_series(1, {n}) AS i",
                "ANALYZE",
            )
            flt = durable.RunFilter(tags={"batch": "b7"})
            start = time.perf_counter()
            count = await app.bulk("cancel", flt)
            elapsed = time.perf_counter() - start
            left = len((await app.list_runs(durable.RunFilter(status="PENDING"), limit=n)).runs)
        assert count == n and left == n // 10, (count, left)
        return {"bulk_cancel_runs": n, "bulk_cancel_s": round(elapsed, 2)}
    finally:
        await _drop(base, schema)


async def list_by_tag(base: str, n: int) -> dict[str, Any]:
    schema, dsn = await _fresh(base)
    try:
        async with durable.App(dsn) as app:
            await _sql(
                base,
                schema,
                _runs(n, "r-", "COMPLETED", "1700000000 + i"),
                f"INSERT INTO run_tags SELECT 'r-' || i, 'tenant', 't' || (i % {n // 1000})"
                f" FROM generate_series(1, {n}) AS i",
                "ANALYZE",
            )
            flt = durable.RunFilter(tags={"tenant": "t42"})
            await app.list_runs(flt, limit=50)  # warm the pool and the plan cache
            firsts, nexts = [], []
            for _ in range(20):
                start = time.perf_counter()
                page = await app.list_runs(flt, limit=50)
                firsts.append(time.perf_counter() - start)
                start = time.perf_counter()
                await app.list_runs(flt, limit=50, cursor=page.next_cursor)
                nexts.append(time.perf_counter() - start)
        return {
            "list_by_tag_runs": n,
            "list_by_tag_first_page_ms": round(statistics.median(firsts) * 1000, 1),
            "list_by_tag_next_page_ms": round(statistics.median(nexts) * 1000, 1),
        }
    finally:
        await _drop(base, schema)


async def _w2(dsn: str, n: int) -> float:
    from bench_app import ten_steps

    async with durable.App(dsn) as app, app.worker(concurrency=n):
        await (await app.start(ten_steps)).result(timeout=60)
        start = time.perf_counter()
        handles = await asyncio.gather(*(app.start(ten_steps) for _ in range(n)))
        for handle in handles:
            await handle.result(timeout=600)
        return n * 10 / (time.perf_counter() - start)


_PRUNER = """
import asyncio, sys, time
from datetime import timedelta
import durable

async def main():
    async with durable.App(sys.argv[1]) as app:
        start = time.perf_counter()
        n = await app.prune(timedelta(days=365))
        print(n, time.perf_counter() - start, flush=True)

asyncio.run(main())
"""


async def w2_with_prune(base: str, n_prune: int, n_w2: int) -> dict[str, Any]:
    schema, dsn = await _fresh(base)
    try:
        async with durable.App(dsn):
            pass  # migrations
        seed = (
            _runs(n_prune, "old-", "COMPLETED", str(OLD)),
            "INSERT INTO journal (run_id, pos, seq, event, kind, name, payload, created_at)"
            f" SELECT 'old-' || i, p, p + 1, 'result', 'activity', 'noop', '1', {OLD}"
            f" FROM generate_series(1, {n_prune}) AS i, generate_series(0, 2) AS p",
            f"INSERT INTO run_tags SELECT 'old-' || i, 'batch', 'b' || (i % 100)"
            f" FROM generate_series(1, {n_prune}) AS i",
            f"INSERT INTO events SELECT 'old-' || i, 'k', '1', {OLD}"
            f" FROM generate_series(1, {n_prune}) AS i",
            "ANALYZE",
        )
        await _sql(base, schema, *seed)
        alone = await _w2(dsn, n_w2)
        pruner = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _PRUNER, dsn, stdout=subprocess.PIPE
        )
        during = await _w2(dsn, n_w2)
        out, _ = await pruner.communicate()
        pruned, prune_s = out.decode().split()
        return {
            "w2_runs": n_w2,
            "w2_alone_steps_per_s": round(alone),
            "w2_during_prune_steps_per_s": round(during),
            "prune_runs": int(pruned),
            "prune_s": round(float(prune_s), 1),
        }
    finally:
        await _drop(base, schema)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    scale = 10 if args.quick else 1
    results: dict[str, Any] = {}
    results |= await bulk_cancel(args.dsn, 10_000 // scale)
    results |= await list_by_tag(args.dsn, 100_000 // scale)
    results |= await w2_with_prune(args.dsn, 100_000 // scale, 1000 // scale)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--quick", action="store_true", help="a tenth of every size")
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args))
    for key, value in results.items():
        print(f"{key:32} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
