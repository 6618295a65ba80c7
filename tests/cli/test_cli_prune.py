"""``durable runs prune``: counts, asks, deletes finished runs only; ages and statuses checked."""

from __future__ import annotations

import asyncio

import pytest
from cli_helpers import Cli, one_line_error

import durable
from durable.cli._progress import parse_age


@durable.workflow(name="cli-prune-quick")
async def quick(ctx: durable.Context, fail: bool) -> str:
    if fail:
        raise ValueError("no")
    return "ok"


async def _finished_runs(dsn: str) -> None:
    async with durable.App(dsn) as app:
        async with app.worker():
            for i in range(3):
                h = await app.start(quick, False, id=f"ok{i}")
                await h.result(timeout=15)
            bad = await app.start(quick, True, id="bad")
            with pytest.raises(durable.WorkflowFailed):
                await bad.result(timeout=15)
        await app.store.create_run("open", "cli-prune-quick", "[false]")  # never claimed


def test_prune_counts_asks_and_deletes_finished_runs(cli: Cli, dsn: str):
    asyncio.run(_finished_runs(dsn))
    assert cli.json("runs", "prune", "--older-than", "1h", "--dry-run", "--dsn", dsn) == {
        "would_delete": 0
    }
    dry = cli("runs", "prune", "--older-than", "0s", "--dry-run", "--dsn", dsn)
    assert dry.returncode == 0 and "4 runs would be deleted" in dry.stdout, dry.stderr
    refused = cli("runs", "prune", "--older-than", "0s", "--dsn", dsn)  # no answer: aborted
    assert refused.returncode != 0 and "delete 4 runs" in refused.stderr
    failed = cli("runs", "prune", "--older-than", "0s", "--status", "failed", "--yes", "--dsn", dsn)
    assert failed.returncode == 0 and "deleted 1 run" in failed.stdout, failed.stderr
    assert cli.json("runs", "prune", "--older-than", "0s", "--yes", "--dsn", dsn) == {"deleted": 3}
    left = [r["run_id"] for r in cli.json("runs", "ls", "--dsn", dsn)["runs"]]
    assert left == ["open"]


def test_prune_refuses_open_statuses_and_bad_ages(cli: Cli, sqlite_dsn: str):
    line = one_line_error(cli("runs", "prune", "--older-than", "soon", "--dsn", sqlite_dsn), 2)
    assert "30d" in line and "'soon'" in line
    line = one_line_error(
        cli("runs", "prune", "--older-than", "1d", "--status", "waiting", "--dsn", sqlite_dsn), 2
    )
    assert "WAITING" in line and "finished" in line
    line = one_line_error(cli("runs", "prune", "--dsn", sqlite_dsn), 2)
    assert "--older-than" in line


def test_ages_read_units():
    ages = ("90s", "15m", "12h", "30d", "2w", "1.5h")
    seconds = [parse_age(v, "--x").total_seconds() for v in ages]  # type: ignore[union-attr]
    assert seconds == [90, 900, 43200, 2592000, 1209600, 5400]
