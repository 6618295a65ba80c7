"""``durable runs why`` and the blocked-on line of ``runs show``."""

from __future__ import annotations

import asyncio

from cli_helpers import Cli, one_line_error

import durable


@durable.workflow(name="cli-why-approval")
async def approval(ctx: durable.Context) -> str:
    return str(await ctx.wait_signal("approve"))


async def _waiting(dsn: str) -> None:
    async with durable.App(dsn) as app, app.worker():
        h = await app.start(approval, id="needs-ok")
        for _ in range(300):
            if (await h.describe()).status is durable.Status.WAITING:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the run never waited")


def test_why_and_show_name_the_signal_a_run_waits_for(cli: Cli, dsn: str):
    asyncio.run(_waiting(dsn))
    why = cli("runs", "why", "needs-ok", "--dsn", dsn)
    assert why.returncode == 0, why.stderr
    assert "is blocked on signal:" in why.stdout
    assert "waiting for signal 'approve' since" in why.stdout
    shown = cli("runs", "show", "needs-ok", "--dsn", dsn).stdout
    assert "waits for:  waiting for signal 'approve' since" in shown, shown
    assert "blocked on: signal: waiting for signal 'approve'" in shown, shown
    data = cli.json("runs", "why", "needs-ok", "--dsn", dsn)
    assert data["blocked_on"]["kind"] == "signal" and data["blocked_on"]["since"]


def test_why_says_no_worker_serves_a_queued_run(cli: Cli, sqlite_dsn: str):
    cli.json("start", "crash-sleep", "--args", '{"seconds": 1}', "--id", "q1", "--force",
             "--dsn", sqlite_dsn)  # fmt: skip
    why = cli("runs", "why", "q1", "--dsn", sqlite_dsn)
    assert "blocked on no_worker:" in why.stdout
    assert "no live worker serves queue 'default'" in why.stdout
    listed = cli.json("runs", "ls", "--dsn", sqlite_dsn)["runs"]
    assert listed[0]["blocked_on"] is None  # lists do not diagnose each run
    line = one_line_error(cli("runs", "why", "nope", "--dsn", sqlite_dsn), 1)
    assert "'nope'" in line
