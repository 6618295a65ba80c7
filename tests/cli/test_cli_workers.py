"""``durable workers ls`` and the checks ``durable start`` makes against live workers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Cli, one_line_error

Start = Any


@pytest.fixture
def spawn(cli: Cli, tmp_path: Path) -> Iterator[Start]:
    """Start ``durable worker crash_app:app`` processes; SIGTERM any left at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(dsn: str, *options: str) -> subprocess.Popen[bytes]:
        command = [
            sys.executable, "-m", "durable.cli", "worker", "crash_app:app",
            "--poll-interval", "0.1", *options,
        ]  # fmt: skip
        log = (tmp_path / f"worker-{len(procs)}.log").open("wb")
        env = {**cli.env, "DURABLE_DSN": dsn}
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def listed(cli: Cli, dsn: str, until: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Poll ``durable workers ls --json`` until ``until(rows)`` holds (the SQLite file
    exists once the worker has opened it)."""
    deadline = time.monotonic() + timeout
    while True:
        done = cli("workers", "ls", "--dsn", dsn, "--json")
        rows: list[dict[str, Any]] = json.loads(done.stdout) if done.returncode == 0 else []
        if (rows and until(rows)) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_workers_ls_shows_a_live_worker_and_a_clean_stop_removes_its_row(
    cli: Cli, spawn: Start, dsn: str
):
    proc = spawn(dsn, "--queue", "default", "--queue", "mail")
    [row] = listed(cli, dsn, lambda rows: any(r["live"] for r in rows))
    assert row["pid"] == proc.pid and row["live"] is True
    assert row["queues"] == ["default", "mail"] and row["version"]
    assert row["workflows"]["crash-steps"] == [{"name": "count", "kind": "POSITIONAL_OR_KEYWORD"}]
    assert row["flows"] is True
    table = cli("workers", "ls", "--dsn", dsn)
    assert table.returncode == 0
    [line] = [line for line in table.stdout.splitlines() if row["id"] in line]
    assert "live" in line and "default, mail" in line and str(proc.pid) in line
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert cli.json("workers", "ls", "--dsn", dsn) == []


def test_a_sigkilled_worker_is_shown_dead_once_its_heartbeat_is_stale(
    cli: Cli, spawn: Start, dsn: str
):
    proc = spawn(dsn, "--lease-seconds", "1")
    assert listed(cli, dsn, lambda rows: any(r["live"] for r in rows))[0]["live"]
    proc.kill()
    proc.wait()
    [row] = listed(cli, dsn, lambda rows: not rows[0]["live"], timeout=10)
    assert row["live"] is False and row["pid"] == proc.pid
    table = cli("workers", "ls", "--dsn", dsn).stdout
    assert "dead" in table and "live" not in table
    # Only a dead worker: a start is accepted, with the warning that nothing will run it.
    done = cli("start", "crash-steps", "--args", '{"count": 1}', "--dsn", dsn)
    assert done.returncode == 0, done.stderr
    assert "no live worker is registered" in done.stderr


def test_start_refuses_a_workflow_or_argument_no_live_worker_knows_unless_forced(
    cli: Cli, spawn: Start, dsn: str
):
    spawn(dsn)
    listed(cli, dsn, lambda rows: any(r["live"] for r in rows))
    typo = one_line_error(cli("start", "crash-stpes", "--dsn", dsn), 2)
    assert typo.startswith("durable: unknown workflow 'crash-stpes'; live workers know: ")
    assert "chaos-steps, crash-backoff" in typo and "crash-steps" in typo
    assert typo.endswith("(pass --force to start it anyway)")
    wrong = one_line_error(cli("start", "crash-steps", "--args", '{"cuont": 2}', "--dsn", dsn), 2)
    assert wrong == (
        "durable: workflow 'crash-steps' takes (count); got unknown argument 'cuont' "
        "(pass --force to start it anyway)"
    )
    assert cli.json("runs", "ls", "--dsn", dsn) == {"runs": []}  # nothing was stored
    forced = cli.json("start", "crash-stpes", "--id", "typo-1", "--force", "--dsn", dsn)
    assert forced["created"] is True
    good = cli("start", "crash-steps", "--args", '{"count": 1}', "--dsn", dsn)
    assert good.returncode == 0 and good.stderr == ""
