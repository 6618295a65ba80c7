"""Queue queries at the store: claim order across many priority bands, costs that must
not grow with sleeping runs or with the size of a limit, slots left above a lowered
limit, the store's clock, and claims of every queue at once.

Costs are counted, not timed: on Postgres the buffers a statement touches (``EXPLAIN
(ANALYZE, BUFFERS)``, rolled back), on SQLite the virtual machine steps of the same
queries run on a connection of our own (a progress handler called at every step). Each
compares a table of 10,000 sleeping runs (or slots) with one of 100 (or 10).
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import asyncpg
import pytest

import durable
from durable._clock import VirtualClock
from durable.store import QueueClaim, Store, open_store
from durable.store._postgres_queues import claim_sql, next_wake_sql
from durable.store._postgres_slots import _ACQUIRE
from durable.store._sqlite_queues import claim_runs, next_wake
from durable.store._sqlite_slots import acquire_slot
from durable.store.postgres import parse_dsn

pytestmark = pytest.mark.anyio
BIG, SMALL = 10_000, 100
FAR = 1e10  # a runnable_at far ahead: a run sleeping (a lease expiry looks the same)


class Db:
    """Direct SQL on a store's database: many rows laid out at once, and query costs."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pg: asyncpg.Connection | None = None
        self.lite: sqlite3.Connection | None = None

    async def __aenter__(self) -> Db:
        if self.dsn.startswith("sqlite"):
            path = self.dsn.removeprefix("sqlite:///")
            self.lite = sqlite3.connect(path, isolation_level=None)
        else:
            plain, schema = parse_dsn(self.dsn)
            self.pg = await asyncpg.connect(plain, server_settings={"search_path": schema})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.pg is not None:
            await self.pg.close()
        if self.lite is not None:
            self.lite.close()

    async def execute(self, sql: str, *args: Any) -> None:
        await self.value(sql, *args)

    async def value(self, sql: str, *args: Any) -> Any:
        """The first column of the first row (None without rows); ``?`` marks parameters."""
        if self.pg is not None:
            numbered = sql.split("?")
            sql = "".join(f"{part}${n}" for n, part in enumerate(numbered[:-1], 1)) + numbered[-1]
            return await self.pg.fetchval(sql, *args)
        assert self.lite is not None
        row = self.lite.execute(sql, args).fetchone()
        return None if row is None else row[0]

    async def runs(self, prefix: str, count: int, priority: str, runnable_at: float) -> None:
        """``count`` runs of queue "default"; ``priority`` is SQL and may use ``n`` (1..)."""
        rows = (
            f"(WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {count})"
            " SELECT n FROM g) AS g"
        )
        await self.execute(
            "INSERT INTO runs (id, workflow, status, args, runnable_at, created_at, updated_at,"
            f" queue, priority) SELECT '{prefix}' || n, 'wf', 'PENDING', '[]', {runnable_at!r},"
            f" 0, 0, 'default', {priority} FROM {rows}"
        )
        await self.execute("ANALYZE")

    async def pg_cost(self, sql: str, *args: Any) -> int:
        """Buffers a statement touches (it runs, then is rolled back)."""
        assert self.pg is not None
        tx = self.pg.transaction()
        await tx.start()
        try:
            text = await self.pg.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
        finally:
            await tx.rollback()
        plan = json.loads(text)[0]["Plan"]
        return int(plan["Shared Hit Blocks"] + plan["Shared Read Blocks"])

    def lite_cost(self, fn: Callable[[sqlite3.Connection], Any]) -> tuple[int, Any]:
        """SQLite VM steps of ``fn`` (in a transaction, rolled back), and its answer."""
        conn = self.lite
        assert conn is not None
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        conn.set_progress_handler(count, 1)
        conn.execute("BEGIN IMMEDIATE")
        try:
            answer = fn(conn)
        finally:
            conn.execute("ROLLBACK")
            conn.set_progress_handler(None, 1)
        return steps[0], answer


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[Store]:
    s = open_store(dsn)
    await s.open()
    yield s
    await s.close()


async def claim_all(store: Store, queues: list[str], batch: int = 64) -> list[set[str]]:
    """The ids each claim takes, until none is left."""
    got: list[set[str]] = []
    claims = [QueueClaim(name, batch) for name in queues]
    while claimed := await store.claim("w", batch, 30, claims):
        got.append({run.id for run in claimed})
    return got


# -- the claim: order and cost ---------------------------------------------------------------
@pytest.mark.parametrize("queues", [["default"], ["default", "other"]])
@pytest.mark.parametrize(
    ("count", "top", "asleep"),
    [
        (400, 300, 0.95),  # many bands of sleeping runs only, above a few due runs
        (700, 40, 0.3),  # many due runs over a few bands
        (900, 2000, 0.5),  # many of both: more due runs than the walk counts
    ],
)
async def test_claims_take_due_runs_best_first_across_many_bands(
    dsn, store, count, top, asleep, queues
):
    rng = random.Random(count)
    now = time.time()
    due: list[tuple[int, float, str]] = []
    ages = rng.sample(range(1, 100_000), count)  # distinct: FIFO order is defined
    async with Db(dsn) as db:
        for n in range(count):
            at = FAR if rng.random() < asleep else now - ages[n]
            priority = rng.randint(-top, top)
            await db.execute(
                "INSERT INTO runs (id, workflow, status, args, runnable_at, created_at,"
                " updated_at, queue, priority) VALUES (?, 'wf', 'PENDING', '[]', ?, 0, 0, ?, ?)",
                f"r{n}",
                at,
                rng.choice(queues),
                priority,
            )
            if at != FAR:
                due.append((-priority, at, f"r{n}"))
    best = [run_id for *_, run_id in sorted(due)]
    want = [set(best[n : n + 64]) for n in range(0, len(best), 64)]
    assert await claim_all(store, queues) == want


async def test_a_claim_costs_the_same_with_100_or_10000_sleeping_priorities(dsn, store):
    """10 due runs below N sleeping runs, each sleeping run at a priority of its own."""
    costs = {}
    for sleeping in (SMALL, BIG):
        async with Db(dsn) as db:
            await db.execute("DELETE FROM runs")
            await db.runs("due-", 10, "-n", 0.0)
            await db.runs("asleep-", sleeping, "n", FAR)
            if db.pg is not None:
                args = ("w", 64, 30.0, "default", 64)
                cost = await db.pg_cost(claim_sql(1), *args)
                wake = await db.pg_cost(next_wake_sql(1), "default", False)
            else:
                one = [QueueClaim("default", 64)]
                cost, runs = db.lite_cost(
                    lambda c, one=one: claim_runs(c, "w", 64, 30.0, one, time.time())
                )
                assert [run.id for run in runs] == [f"due-{n}" for n in range(1, 11)]
                wake, at = db.lite_cost(lambda c: next_wake(c, ["default"], (), time.time()))
                assert at == 0.0
            costs[sleeping] = (cost, wake)
    (small, small_wake), (big, big_wake) = costs[SMALL], costs[BIG]
    # Before the fix: one probe per priority, so 100 times the cost (40,000 buffers).
    assert big <= 2 * small + 20, costs
    assert big_wake <= 2 * small_wake + 10, costs
    assert [r.id for r in await store.claim("w", 64, 30, [QueueClaim("default", 64)])] == [
        f"due-{n}" for n in range(1, 11)
    ]


async def test_the_next_wake_up_of_a_queue_is_its_earliest_runnable_at(store):
    for n, priority in enumerate([5, 0, -5]):
        await store.create_run(f"r{n}", "wf", "[]", priority=priority)
    [leased] = await store.claim("w", 1, 10.0, [QueueClaim("default", 1)])  # for 10 s
    assert leased.id == "r0"
    wake = await store.next_wake_at(["default"])
    assert wake is not None and wake <= time.time()  # r1 and r2 are due
    later = await store.next_wake_at([], limited=["default"])  # only future times count
    assert later == pytest.approx(time.time() + 10.0, abs=2.0)
    assert await store.next_wake_at(["nobody"]) is None


# -- activity slots: cost and lowered limits ------------------------------------------------
async def held_slots(db: Db, queue: str, kind: str, count: int) -> None:
    """``count`` slots of ``queue`` held far into the future."""
    await db.execute(
        "INSERT INTO queue_slots (queue, kind, slot, holder, token, expires_at)"
        " SELECT CAST(? AS TEXT), CAST(? AS TEXT), n - 1, 'w', CAST(? AS TEXT) || n,"
        " CAST(? AS DOUBLE PRECISION) FROM (WITH RECURSIVE g(n) AS (SELECT 1"
        f" UNION ALL SELECT n + 1 FROM g WHERE n < {count}) SELECT n FROM g) AS g",
        queue,
        kind,
        f"{queue}-",
        FAR,
    )
    await db.execute("ANALYZE")


@pytest.mark.parametrize("kind", ["rate", "concurrency"])
async def test_taking_a_slot_costs_the_same_at_a_limit_of_10_or_10000(dsn, store, kind):
    costs = {}
    async with Db(dsn) as db:
        for limit in (10, BIG):
            queue = f"q{limit}"
            await held_slots(db, queue, kind, limit - 1)  # one row left to create
            for left in (1, 0):  # the last row to create, then every row busy
                if db.pg is not None:
                    args = (queue, kind, limit, "w", "token", 60.0)
                    costs[limit, left] = await db.pg_cost(_ACQUIRE, *args)
                else:
                    costs[limit, left], (token, _) = db.lite_cost(
                        lambda c, q=queue, n=limit: acquire_slot(
                            c, q, kind, n, "w", 60.0, time.time()
                        )
                    )
                    assert (token is not None) == bool(left)
                if left:
                    await held_slots_one(db, queue, kind, limit - 1)
    for left in (1, 0):
        assert costs[BIG, left] <= 2 * costs[10, left] + 10, costs
    grant = await store.acquire_queue_slot(f"q{BIG}", kind, BIG, "w", 60.0)
    assert grant.token is None and grant.retry_at is not None


async def held_slots_one(db: Db, queue: str, kind: str, slot: int) -> None:
    await db.execute(
        "INSERT INTO queue_slots (queue, kind, slot, holder, token, expires_at)"
        " VALUES (?, ?, ?, 'w', ?, ?)",
        queue,
        kind,
        slot,
        f"{queue}-last",
        FAR,
    )


async def test_slot_rows_are_made_only_as_they_are_needed(dsn, store):
    tokens = [await store.acquire_queue_slot("big", "rate", 100_000, "w", 60.0) for _ in range(5)]
    assert all(grant.token for grant in tokens)
    async with Db(dsn) as db:
        assert await db.value("SELECT count(*) FROM queue_slots WHERE queue = 'big'") == 5


async def test_a_lowered_limit_counts_slots_still_held_above_it(store):
    tokens = [
        (await store.acquire_queue_slot("gpu", "concurrency", 4, "old", 60)).token for _ in range(4)
    ]
    assert all(tokens)
    for token in tokens[:2]:  # slots 2 and 3 stay held by attempts of the old limit
        await store.release_queue_slot("gpu", token)  # type: ignore[arg-type]
    # the limit is now 3: one more may start (2 held), then none
    first = await store.acquire_queue_slot("gpu", "concurrency", 3, "new", 60)
    second = await store.acquire_queue_slot("gpu", "concurrency", 3, "new", 60)
    assert first.token is not None and second.token is None
    # now 1: none may start until two of the three held end
    assert (await store.acquire_queue_slot("gpu", "concurrency", 1, "new", 60)).token is None
    await store.release_queue_slot("gpu", tokens[3])  # type: ignore[arg-type]
    await store.release_queue_slot("gpu", first.token)
    assert (await store.acquire_queue_slot("gpu", "concurrency", 1, "new", 60)).token is None
    await store.release_queue_slot("gpu", tokens[2])  # type: ignore[arg-type]
    last = await store.acquire_queue_slot("gpu", "concurrency", 1, "new", 60)
    assert last.token is not None
    assert (await store.acquire_queue_slot("gpu", "concurrency", 1, "new", 60)).token is None


async def test_a_lowered_rate_limit_counts_the_starts_already_in_its_window(store):
    for _ in range(3):
        assert (await store.acquire_queue_slot("api", "rate", 3, "w", 60)).token
    grant = await store.acquire_queue_slot("api", "rate", 2, "w", 60)
    assert grant.token is None
    assert grant.retry_at == pytest.approx(time.time() + 60, abs=5)


async def test_concurrent_takers_never_pass_a_lowered_limit(store):
    tokens = [
        (await store.acquire_queue_slot("gpu", "concurrency", 4, "old", 60)).token for _ in range(4)
    ]
    for token in tokens[:2]:
        await store.release_queue_slot("gpu", token)  # type: ignore[arg-type]
    grants = await asyncio.gather(
        *(store.acquire_queue_slot("gpu", "concurrency", 3, f"w{n}", 60) for n in range(12))
    )
    assert sum(grant.token is not None for grant in grants) == 1  # 2 held + 1 = the limit


# -- the store's clock, claims of every queue, names -------------------------------------
async def test_sqlite_depths_and_slots_follow_the_stores_clock(tmp_path):
    clock = VirtualClock(start=time.time() + 86_400)  # a day ahead, as durable.testing may be
    async with durable.App(f"sqlite:///{tmp_path / 'clock.db'}", clock=clock) as app:
        store = app.store
        await store.create_run("r1", "wf", "[]")  # runnable from the virtual now
        assert await app.queue_depth("default") == 1
        first = await store.acquire_queue_slot("gpu", "concurrency", 1, "w", 60)
        busy = await store.acquire_queue_slot("gpu", "concurrency", 1, "w", 60)
        assert first.token is not None and busy.token is None
        assert busy.retry_at == pytest.approx(clock.now() + 60, abs=5)
        clock.advance_to(clock.now() + 120)  # the unrenewed hold lapses in virtual time
        assert (await store.acquire_queue_slot("gpu", "concurrency", 1, "w", 60)).token
        assert await store.renew_queue_slots([first.token], 60) == set()


async def test_a_claim_of_every_queue_keeps_the_limits(store):
    await store.put_queues([durable.Queue("q-one", concurrency=1)])
    for n in range(3):
        await store.create_run(f"r{n}", "wf", "[]", queue="q-one")
    await store.create_run("free", "wf", "[]")
    claimed = await store.claim("w", 10, 30)
    assert sorted(run.queue for run in claimed) == ["default", "q-one"]


async def test_a_claim_of_every_queue_takes_the_lock_of_a_limited_one(pg_dsn):
    store = open_store(pg_dsn)
    await store.open()
    plain, schema = parse_dsn(pg_dsn)
    other = await asyncpg.connect(plain)
    try:
        await store.put_queues([durable.Queue("q-one", concurrency=1)])
        await store.create_run("r1", "wf", "[]", queue="q-one")
        key = await other.fetchval(
            "SELECT hashtextextended($1, 0)", f"durable-queue:{schema}:q-one"
        )
        await other.execute("SELECT pg_advisory_lock($1)", key)  # as another claim holds it
        claim = asyncio.ensure_future(store.claim("w", 10, 30))
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = (($1::bigint >> 32) & 4294967295)::oid"
            " AND objid = ($1::bigint & 4294967295)::oid"
        )
        with anyio.fail_after(10):  # the claim asks for the queue's lock and waits for it
            while not await other.fetchval(waiting, key):
                await asyncio.sleep(0.01)
        assert not claim.done()
        await other.execute("SELECT pg_advisory_unlock($1)", key)
        with anyio.fail_after(10):
            assert [run.id for run in await claim] == ["r1"]
    finally:
        await other.close()
        await store.close()


@durable.workflow(name="qs-noop")
async def noop(ctx: durable.Context) -> None:
    return None


async def test_queue_names_with_control_characters_are_refused(dsn):
    for bad in ("a\x00b", "line\nbreak", "tab\there", "\x7f", "\ud800"):
        with pytest.raises(durable.ConfigurationError, match="control characters"):
            durable.Queue(bad)
    async with durable.App(dsn) as app:
        with pytest.raises(durable.ConfigurationError, match="control characters"):
            await app.start(noop, queue="nul\x00")
        with pytest.raises(durable.ConfigurationError, match="control characters"):
            app.worker(queues=["ok", "nul\x00"])
        assert await app.list_runs() == []
        await app.start(noop, queue="récits 日本")  # any printable text is fine
