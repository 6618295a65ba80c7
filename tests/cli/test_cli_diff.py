"""``durable runs diff A B``: where two runs' histories part."""

from __future__ import annotations

import asyncio

from cli_helpers import Cli, one_line_error

import durable


@durable.activity
async def diff_step(n: int) -> int:
    return n


@durable.workflow(name="cli-diff-steps")
async def steps(ctx: durable.Context, last: int) -> int:
    total = 0
    for n in (1, 2, last):
        total += await diff_step(n)
    return total


async def _runs(dsn: str) -> None:
    async with durable.App(dsn) as app, app.worker():
        for run_id, last in (("a", 3), ("b", 9), ("c", 3)):
            await (await app.start(steps, last, id=run_id)).result(timeout=15)


def test_diff_shows_the_shared_records_and_where_they_part(cli: Cli, sqlite_dsn: str):
    asyncio.run(_runs(sqlite_dsn))
    parted = cli("runs", "diff", "a", "b", "--dsn", sqlite_dsn)
    assert parted.returncode == 0, parted.stderr
    assert "a and b share their first 2 records, up to seq 2; then:" in parted.stdout
    assert "seq 3 activity 'diff_step' result 3" in parted.stdout
    assert "seq 3 activity 'diff_step' result 9" in parted.stdout
    same = cli("runs", "diff", "a", "c", "--dsn", sqlite_dsn)
    assert "the histories of a and c are the same (3 records)" in same.stdout
    data = cli.json("runs", "diff", "a", "b", "--dsn", sqlite_dsn)
    assert data["common"] == 2 and [e["payload"] for e in data["b_next"]] == [9]
    line = one_line_error(cli("runs", "diff", "a", "nope", "--dsn", sqlite_dsn), 1)
    assert "'nope'" in line
