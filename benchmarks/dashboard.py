"""The dashboard's server time on a large Postgres store (docs/dashboard.md#speed).

Seeds a fresh schema with 100,000 runs and 1,000,000 journal rows (ten operations for
most runs, 1,000 for one), then times, in process (request in, HTML out: the server's
time, no network or browser), the runs page unfiltered and filtered, and the page of the
run with 1,000 operations.

    python benchmarks/dashboard.py --dsn postgresql://root@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import asyncpg
import httpx

import durable
from durable.server import create_app
from durable.store.postgres import parse_dsn

LOOP = {
    "id": "bench::loop",
    "name": "A loop of steps",
    "steps": [
        {"id": "count", "name": "Count", "type": "TRANSFORMATION",
         "transformations": {"i": "${i + 1}"}, "nextStep": "again"},
        {"id": "again", "name": "Again?", "type": "DECISION",
         "conditionalNextSteps": {"i < 500": "count", "i >= 500": "done"}},
        {"id": "done", "name": "Done", "type": "END"},
    ],
}  # fmt: skip
"""A flow whose run makes about 1,000 journal records (500 rounds of two steps)."""
RUNS = 100_000
OPS_PER_RUN = 10
BIG_OPS = 1_000

SEED = [
    # runs: a mix of statuses and workflows, one created per second going back
    """INSERT INTO runs (id, workflow, status, args, result, created_at, updated_at, queue)
       SELECT 'bench-' || i, 'wf-' || (i % 7),
              (ARRAY['COMPLETED','COMPLETED','COMPLETED','FAILED','WAITING','PENDING'])[1 + i % 6],
              '{"order": {"id": ' || i || '}}', '"done"',
              extract(epoch from now()) - i, extract(epoch from now()) - i + 2, 'default'
       FROM generate_series(1, $1::int) AS i""",
    """INSERT INTO run_tags (run_id, key, value)
       SELECT 'bench-' || i, 'tenant', 't-' || (i % 100) FROM generate_series(1, $1::int) AS i""",
    # ten journal rows for each run but the big one
    """INSERT INTO journal (run_id, pos, seq, event, kind, name, fingerprint, payload, created_at)
       SELECT 'bench-' || i, p, p + 1, 'result', 'activity', 'step_' || p, 'fp',
              '{"value": ' || p || '}', extract(epoch from now()) - i + p * 0.1
       FROM generate_series(2, $1::int) AS i, generate_series(0, 9) AS p""",
]
BIG = """INSERT INTO journal (run_id, pos, seq, event, kind, name, fingerprint, payload, created_at)
         SELECT 'bench-1', p, p + 1, 'result', 'activity', 'step_' || p, 'fp',
                '{"value": ' || p || ', "text": "<b>escaped</b>"}',
                extract(epoch from now()) - 1 + p * 0.001
         FROM generate_series(0, $1::int - 1) AS p"""


async def seed(dsn: str, schema: str) -> None:
    async with durable.App(dsn):  # creates the schema and its tables
        pass
    conn = await asyncpg.connect(parse_dsn(dsn)[0])
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        for statement in SEED:
            await conn.execute(statement, RUNS)
        await conn.execute(BIG, BIG_OPS)
        await conn.execute("ANALYZE")
        rows = await conn.fetchval("SELECT count(*) FROM journal")
        print(f"seeded {RUNS:,} runs and {rows:,} journal rows in schema {schema}")
    finally:
        await conn.close()


async def flow_run(dsn: str) -> tuple[str, int]:
    """Run the loop flow to its end with a worker; its run id and journal length."""
    async with durable.App(dsn) as app, app.worker(poll_interval=0.05):
        await app.definitions.upload(LOOP)
        handle = await app.start_flow("bench::loop", variables={"i": 0})
        await handle.result(timeout=600)
        return handle.run_id, len(await handle.history())


async def timed(client: httpx.AsyncClient, path: str, repeat: int) -> list[float]:
    took = []
    for _ in range(repeat):
        began = time.perf_counter()
        answer = await client.get(path)
        took.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="a Postgres server (a schema is made)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the seeded schema")
    args = parser.parse_args()
    schema = f"bench_ui_{uuid.uuid4().hex[:8]}"
    dsn = f"{args.dsn}{'&' if '?' in args.dsn else '?'}schema={schema}"
    began = time.perf_counter()
    await seed(dsn, schema)
    print(f"seeding took {time.perf_counter() - began:.0f} s")
    flow_id, records = await flow_run(dsn)
    print(f"a flow run with {records:,} journal records: {flow_id}")
    try:
        async with durable.App(dsn) as app:
            api = create_app(app)
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                pages = {
                    "runs page": "/ui/",
                    "runs page, status + tag filter": "/ui/?status=FAILED&tag=tenant%3Dt-7",
                    "runs page, page 2": None,
                    "run with 1,000 operations": "/ui/runs/bench-1",
                    "run with 10 operations": "/ui/runs/bench-500",
                    f"flow run, {records:,} records": f"/ui/runs/{flow_id}",
                }
                first = await client.get("/ui/")
                marker = "cursor="
                start = first.text.find(marker)
                cursor = first.text[start + len(marker) : first.text.find('"', start)]
                pages["runs page, page 2"] = f"/ui/?cursor={cursor}"
                print(f"{'page':34} {'median ms':>10} {'p95 ms':>8}  (n={args.repeat})")
                for name, path in pages.items():
                    assert path is not None
                    took = sorted(await timed(client, path, args.repeat))
                    p95 = took[max(0, round(len(took) * 0.95) - 1)]
                    print(f"{name:34} {statistics.median(took):10.1f} {p95:8.1f}")
    finally:
        if not args.keep:
            conn = await asyncpg.connect(parse_dsn(args.dsn)[0])
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
