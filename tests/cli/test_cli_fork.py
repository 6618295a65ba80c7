"""``durable runs fork RUN``: a new run from a copy of RUN's journal; then ``runs diff``."""

from __future__ import annotations

import asyncio

from cli_helpers import Cli, one_line_error

import durable


@durable.activity
async def fork_step(n: int) -> int:
    return n


@durable.workflow(name="cli-fork-steps")
async def steps(ctx: durable.Context, last: int) -> int:
    total = 0
    for n in (1, 2, last):
        total += await fork_step(n)
    return total


async def _run(dsn: str) -> None:
    async with durable.App(dsn) as app, app.worker():
        await (await app.start(steps, 3, id="orig")).result(timeout=15)


FORK_APP = """
import durable

app = durable.App()


@durable.workflow(name="cli-fork-steps")
async def steps(ctx: durable.Context, last: int) -> int:
    raise AssertionError("the fork is only created here, not run")
"""


def test_fork_at_a_seq_with_new_arguments_and_diff_it(cli: Cli, sqlite_dsn: str):
    (cli.cwd / "fork_app.py").write_text(FORK_APP)
    asyncio.run(_run(sqlite_dsn))
    made = cli.json("runs", "fork", "orig", "--at", "3", "--args", "[9]", "--id", "copy",
                    "--app", "fork_app:app", "--dsn", sqlite_dsn)  # fmt: skip
    assert made["run_id"] == "copy" and made["forked_from"] == {"run_id": "orig", "at": 3}
    shown = cli("runs", "show", "copy", "--dsn", sqlite_dsn).stdout
    assert "forked:     from orig at 3" in shown, shown
    parted = cli.json("runs", "diff", "orig", "copy", "--dsn", sqlite_dsn)
    assert parted["common"] == 2 and parted["b_records"] == 2  # seq 3 has not run yet
    line = one_line_error(cli("runs", "fork", "orig", "--at", "99", "--dsn", sqlite_dsn), 1)
    assert "99" in line and "'orig'" in line
    line = one_line_error(cli("runs", "fork", "orig", "--args", "{}", "--dsn", sqlite_dsn), 2)
    assert "array" in line
