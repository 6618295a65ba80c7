"""``durable start|signal|cancel|runs ls|runs show``, run as real commands."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import anyio
import pytest
from cli_helpers import Cli, one_line_error

import durable

pytestmark = pytest.mark.anyio


@durable.activity(name="cli-greet")
async def greet(name: str) -> str:
    return f"hello {name}"


@durable.workflow(name="cli-history")
async def greeting(ctx: durable.Context, name: str, shout: bool = False) -> dict[str, object]:
    text = await greet(name)
    await ctx.sleep(0.01)
    approval = await ctx.wait_signal("approve")
    return {"text": text.upper() if shout else text, "approval": approval}


async def test_start_list_signal_cancel(cli: Cli, dsn: str):
    started = cli.json(
        "start", "crash-sleep", "--args", '{"seconds": 60}', "--id", "r-1",
        "--business-key", "order-7", "--dsn", dsn,
    )  # fmt: skip
    assert started == {
        "run_id": "r-1", "workflow": "crash-sleep", "status": "PENDING", "created": True
    }  # fmt: skip
    again = cli("start", "crash-sleep", "--args", '{"seconds": 1}', "--id", "r-1", "--dsn", dsn)
    assert again.returncode == 0 and "already exists" in again.stdout
    other = cli.json("start", "crash-steps", "--args", '{"count": 1}', "--dsn", dsn)
    assert other["created"] and len(other["run_id"]) == 32

    listed = cli.json("runs", "ls", "--dsn", dsn)["runs"]
    assert [run["run_id"] for run in listed] == [other["run_id"], "r-1"]
    by_key = cli.json("runs", "ls", "--business-key", "order-7", "--dsn", dsn)["runs"]
    assert [(r["run_id"], r["business_key"], r["status"]) for r in by_key] == [
        ("r-1", "order-7", "PENDING")
    ]
    by_workflow = cli.json("runs", "ls", "--workflow", "crash-steps", "--dsn", dsn)["runs"]
    assert [run["run_id"] for run in by_workflow] == [other["run_id"]]
    assert cli.json("runs", "ls", "--status", "completed", "--dsn", dsn) == {"runs": []}
    table = cli("runs", "ls", "--limit", "1", "--dsn", dsn)
    assert table.returncode == 0 and other["run_id"] in table.stdout and "r-1" not in table.stdout

    sent = cli("signal", "r-1", "approve", '{"by": "ann"}', "--dsn", dsn)
    assert sent.returncode == 0 and "sent signal 'approve' to run r-1" in sent.stdout
    cancelled = cli.json("cancel", "r-1", "--dsn", dsn)
    assert cancelled["status"] == "CANCELLED" and cancelled["error"]["type"] == "Cancelled"
    assert cli("cancel", "r-1", "--dsn", dsn).returncode == 0  # cancelling twice is fine
    closed = one_line_error(cli("signal", "r-1", "approve", "--dsn", dsn), 1)
    assert "r-1" in closed and "CANCELLED" in closed

    async with durable.App(dsn) as app:
        desc = await app.handle("r-1").describe()
        assert desc.status is durable.Status.CANCELLED and desc.business_key == "order-7"


async def test_runs_show_prints_the_journal_as_a_timeline(cli: Cli, dsn: str, wait_status):
    run = partial(anyio.to_thread.run_sync)
    async with durable.App(dsn) as app, app.worker(poll_interval=0.05):
        done = await run(lambda: cli("start", "cli-history", "--args", '{"name": "ann"}',
                                     "--id", "h-1", "--dsn", dsn))  # fmt: skip
        assert done.returncode == 0, done.stderr
        handle = app.handle("h-1")
        await wait_status(handle, durable.Status.WAITING)
        with anyio.fail_after(15):
            while len(await handle.history()) < 3:  # greet, sleep, and the signal wait
                await anyio.sleep(0.02)
        sent = await run(lambda: cli("signal", "h-1", "approve", '{"by": "bo"}', "--dsn", dsn))
        assert sent.returncode == 0, sent.stderr
        assert await handle.result(timeout=30) == {"text": "hello ann", "approval": {"by": "bo"}}
        history = await handle.history()

    shown = cli("runs", "show", "h-1", "--dsn", dsn)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "run:        h-1" in lines and "status:     COMPLETED" in lines
    assert 'result:     {"text":"hello ann","approval":{"by":"bo"}}' in lines
    timeline = [line.split() for line in lines if line.startswith("+")]
    assert [(row[1], row[2], row[3], row[4]) for row in timeline] == [
        (str(e.seq), e.kind, e.name or "-", e.event) for e in history
    ]
    assert timeline[0][5] == '"hello' and timeline[-1][5] == '{"by":"bo"}'

    data = cli.json("runs", "show", "h-1", "--dsn", dsn)
    assert data["run"]["status"] == "COMPLETED" and data["steps"] == []
    assert data["run"]["result"] == {"text": "hello ann", "approval": {"by": "bo"}}
    shown_events = [
        (e["seq"], e["kind"], e["name"], e["event"], e["payload"]) for e in data["history"]
    ]
    assert shown_events == [(e.seq, e.kind, e.name, e.event, e.payload) for e in history]


async def test_start_with_app_checks_and_accepts_positional_arguments(cli: Cli, sqlite_dsn: str):
    app = ["--app", "crash_app:app", "--dsn", sqlite_dsn]
    ok = cli.json("start", "crash-steps", "--args", "[3]", "--id", "p-1", *app)
    assert ok["created"]
    refused = one_line_error(cli("start", "crash-steps", "--args", '["three"]', *app), 1)
    assert "argument 'count'" in refused and "valid integer" in refused
    unknown = one_line_error(cli("start", "no-such-workflow", *app), 1)
    assert "no workflow named 'no-such-workflow'" in unknown
    async with durable.App(sqlite_dsn) as store:
        assert json.loads((await store.store.get_run("p-1")).args) == {"count": 3}  # type: ignore[union-attr]


def test_usage_errors_exit_2_with_one_line(cli: Cli, sqlite_dsn: str):
    dsn = ["--dsn", sqlite_dsn]
    bad_json = one_line_error(cli("start", "crash-steps", "--args", "{count: 1}", *dsn), 2)
    assert bad_json.startswith("durable start: ") and "--args" in bad_json
    assert "not valid JSON" in bad_json
    scalar = one_line_error(cli("start", "crash-steps", "--args", "3", *dsn), 2)
    assert "must be a JSON object" in scalar
    positional = one_line_error(cli("start", "crash-steps", "--args", "[3]", *dsn), 2)
    assert "--app" in positional
    neither = one_line_error(cli("start", *dsn), 2)
    assert "--flow" in neither
    payload = one_line_error(cli("signal", "r", "go", "{oops", *dsn), 2)
    assert "PAYLOAD_JSON" in payload
    status = one_line_error(cli("runs", "ls", "--status", "sleeping", *dsn), 2)
    assert "--status" in status
    assert one_line_error(cli("runs", "show", *dsn), 2).startswith("durable runs show: ")
    assert one_line_error(cli("cancel", "r", "--bogus"), 2).startswith("durable cancel: ")
    assert cli("runs").returncode == 2  # a bare group prints its help
    assert cli("--help").returncode == 0 and "runs" in cli("--help").stdout


def test_user_errors_exit_1_with_one_line(cli: Cli, tmp_path: Path, postgres_dsn: str):
    dsn = f"sqlite:///{tmp_path / 'here.db'}"
    assert cli.json("start", "crash-steps", "--args", '{"count": 1}', "--id", "x", "--dsn", dsn)
    for verb in (["runs", "show", "nope"], ["signal", "nope", "go"], ["cancel", "nope"]):
        assert one_line_error(cli(*verb, "--dsn", dsn), 1) == "durable: no run with id 'nope'"
    conflict = one_line_error(cli("start", "crash-sleep", "--id", "x", "--dsn", dsn), 1)
    assert "already used by a run of workflow 'crash-steps'" in conflict

    missing = one_line_error(cli("runs", "ls", "--dsn", f"sqlite:///{tmp_path / 'typo.db'}"), 1)
    assert "no database at" in missing and "typo.db" in missing
    assert not (tmp_path / "typo.db").exists()
    env_missing = one_line_error(cli("runs", "ls", DURABLE_DSN="sqlite:///nowhere.db"), 1)
    assert "nowhere.db" in env_missing
    unreachable = postgres_dsn.rsplit("@", 1)[0] + "@127.0.0.1:1/nothing"
    down = one_line_error(cli("runs", "ls", "--dsn", unreachable), 1)
    assert "cannot open Postgres store" in down
    scheme = one_line_error(cli("runs", "ls", "--dsn", "mysql://db"), 1)
    assert "unsupported DSN" in scheme
