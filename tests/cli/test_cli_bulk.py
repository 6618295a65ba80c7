"""``durable runs pause|resume|retry|cancel``: one run by id, or many by filter."""

from __future__ import annotations

import asyncio

import pytest
from cli_helpers import Cli, one_line_error

import durable


@durable.workflow(name="cli-bulk-fails")
async def fails(ctx: durable.Context) -> str:
    raise ValueError("broken")


async def _failed_runs(dsn: str, count: int) -> None:
    async with durable.App(dsn) as app, app.worker():
        for i in range(count):
            h = await app.start(fails, id=f"f{i}", tags={"kind": "bad"})
            with pytest.raises(durable.WorkflowFailed):
                await h.result(timeout=15)


def statuses(cli: Cli, dsn: str) -> dict[str, str]:
    return {r["run_id"]: r["status"] for r in cli.json("runs", "ls", "--dsn", dsn)["runs"]}


def test_pause_and_resume_by_tag_and_one_by_id(cli: Cli, dsn: str):
    for i in range(3):
        cli.json("start", "crash-sleep", "--args", '{"seconds": 60}', "--id", f"p{i}",
                 "--tag", "batch=p", "--force", "--dsn", dsn)  # fmt: skip
    cli.json("start", "crash-sleep", "--args", '{"seconds": 60}', "--id", "other", "--force",
             "--dsn", dsn)  # fmt: skip
    dry = cli("runs", "pause", "--tag", "batch=p", "--dry-run", "--dsn", dsn)
    assert dry.returncode == 0 and "3 runs would be paused" in dry.stdout, dry.stderr
    refused = cli("runs", "pause", "--tag", "batch=p", "--dsn", dsn)  # no answer: aborted
    assert refused.returncode != 0 and "pause 3 runs?" in refused.stderr
    done = cli("runs", "pause", "--tag", "batch=p", "--reason", "maintenance", "--yes",
               "--dsn", dsn)  # fmt: skip
    assert done.returncode == 0 and "paused 3 runs" in done.stdout, done.stderr
    assert statuses(cli, dsn) == {"p0": "PAUSED", "p1": "PAUSED", "p2": "PAUSED",
                                  "other": "PENDING"}  # fmt: skip
    why = cli("runs", "why", "p0", "--dsn", dsn).stdout
    assert "paused: maintenance" in why, why
    one = cli.json("runs", "resume", "p1", "--dsn", dsn)
    assert one == {"run_id": "p1", "action": "resume", "status": "PENDING"}
    assert cli.json("runs", "resume", "--status", "paused", "--yes", "--dsn", dsn) == {"resumed": 2}
    assert set(statuses(cli, dsn).values()) == {"PENDING"}
    assert cli.json("runs", "cancel", "other", "--dsn", dsn)["status"] == "CANCELLED"


def test_retry_failed_runs_by_filter(cli: Cli, dsn: str):
    asyncio.run(_failed_runs(dsn, 2))
    assert cli.json("runs", "retry", "--tag", "kind=bad", "--dry-run", "--dsn", dsn) == {
        "would_retry": 2
    }
    done = cli("runs", "retry", "--status", "failed", "--older-than", "0s", "--yes", "--dsn", dsn)
    assert done.returncode == 0 and "retried 2 runs" in done.stdout, done.stderr
    assert set(statuses(cli, dsn).values()) <= {"PENDING", "RUNNING", "WAITING"}  # reopened
    young = cli.json("runs", "retry", "--tag", "kind=bad", "--older-than", "1d", "--dry-run",
                     "--dsn", dsn)  # fmt: skip
    assert young == {"would_retry": 0}


def test_bulk_verbs_need_a_run_or_filters_not_both(cli: Cli, sqlite_dsn: str):
    line = one_line_error(cli("runs", "pause", "--yes", "--dsn", sqlite_dsn), 2)
    assert "--tag" in line and "RUN" in line
    line = one_line_error(cli("runs", "resume", "r1", "--tag", "a=b", "--dsn", sqlite_dsn), 2)
    assert "not both" in line
    line = one_line_error(cli("runs", "retry", "r1", "--reason", "x", "--dsn", sqlite_dsn), 2)
    assert "--reason" in line
    line = one_line_error(
        cli("runs", "cancel", "--older-than", "soon", "--yes", "--dsn", sqlite_dsn), 2
    )
    assert "30d" in line
