"""``durable worker`` finishing runs that ``durable start`` started; user tasks; serve."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Cli, one_line_error

REVIEW_FLOW = {
    "id": "CLI::review",
    "name": "Review",
    "steps": [
        {"id": "prepare", "name": "Prepare", "type": "TRANSFORMATION",
         "transformations": {"prepared": True}, "nextStep": "review"},
        {"id": "review", "name": "Review", "type": "USER_TASK", "nextStep": "done"},
        {"id": "done", "name": "Done", "type": "END"},
    ],
}  # fmt: skip


@pytest.fixture
def worker(cli: Cli, tmp_path: Path) -> Iterator[Any]:
    """Start ``durable worker crash_app:app`` (JSON logs); stopped with SIGTERM at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(dsn: str, *options: str, app: str | None = "crash_app:app") -> Path:
        log = tmp_path / f"worker-{len(procs)}.log"
        command = [
            sys.executable, "-m", "durable.cli", "worker", *([app] if app else []),
            "--poll-interval", "0.1", "--log-format", "json", "--log-level", "info", *options,
        ]  # fmt: skip
        env = {**cli.env, "DURABLE_DSN": dsn}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        procs.append(proc)
        return log

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(cli: Cli, dsn: str, run_id: str, status: str, tries: int = 120) -> dict[str, Any]:
    """Poll ``durable runs show --json`` until the run has ``status``."""
    for _ in range(tries):
        shown = cli.json("runs", "show", run_id, "--dsn", dsn)
        if shown["run"]["status"] == status:
            return shown  # type: ignore[no-any-return]
    raise AssertionError(f"run {run_id} never reached {status}: {shown['run']}")


def test_worker_finishes_code_first_and_flow_runs_started_by_the_cli(
    cli: Cli, worker: Any, dsn: str, tmp_path: Path
):
    started = cli.json("start", "crash-steps", "--args", '{"count": 3}', "--dsn", dsn)
    (tmp_path / "review.json").write_text(json.dumps(REVIEW_FLOW))
    assert cli("defs", "push", "review.json", "--dsn", dsn).returncode == 0
    flow = cli.json(
        "start", "--flow", "CLI::review", "--variables", '{"amount": 5}', "--business-key",
        "APP-1", "--id", "f-1", "--dsn", dsn,
    )  # fmt: skip
    assert flow == {
        "run_id": "f-1", "workflow": "CLI::review", "status": "PENDING", "created": True,
        "flow_version": 1,
    }  # fmt: skip
    log = worker(dsn)

    done = wait_for(cli, dsn, started["run_id"], "COMPLETED")
    assert done["run"]["result"] == 0 + 1 + 4
    assert [e["name"] for e in done["history"] if e["kind"] == "activity"] == ["step"] * 3

    waiting = wait_for(cli, dsn, "f-1", "WAITING")
    assert waiting["run"]["current_steps"] == ["review"]
    assert waiting["run"]["variables"] == {"amount": 5, "prepared": True}
    shown = cli("runs", "show", "f-1", "--dsn", dsn)
    assert "key:        APP-1" in shown.stdout and "at steps:   review" in shown.stdout
    review = [line.split() for line in shown.stdout.splitlines() if " review " in line]
    assert review and review[0][1:4] == ["review", "USER_TASK", "RUNNING"]

    wrong = one_line_error(cli("user-tasks", "complete", "f-1", "nope", "--dsn", dsn), 1)
    assert "has no user task 'nope' waiting" in wrong
    not_object = cli("user-tasks", "complete", "f-1", "review", "[1]", "--dsn", dsn)
    assert "must be a JSON object" in one_line_error(not_object, 2)
    completed = cli.json(
        "user-tasks", "complete", "f-1", "review", '{"approved": true}', "--dsn", dsn
    )
    assert completed == {"run_id": "f-1", "step_id": "review", "completed": True}
    finished = wait_for(cli, dsn, "f-1", "COMPLETED")
    assert finished["run"]["variables"] == {"amount": 5, "prepared": True, "approved": True}
    assert [(s["step_id"], s["status"]) for s in finished["steps"]] == [
        ("prepare", "COMPLETED"), ("review", "COMPLETED"), ("done", "COMPLETED")
    ]  # fmt: skip
    again = cli("user-tasks", "complete", "f-1", "review", "--dsn", dsn)
    assert again.returncode == 0  # completing twice is a no-op

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and all(
        {"time", "level", "logger", "run_id", "workflow", "step", "msg"} <= set(r) for r in records
    )
    assert any("started" in r["msg"] and r["logger"] == "durable.worker" for r in records)


def test_a_worker_without_an_app_runs_json_flows(cli: Cli, worker: Any, dsn: str, tmp_path: Path):
    (tmp_path / "review.json").write_text(json.dumps(REVIEW_FLOW))
    assert cli("defs", "push", "review.json", "--dsn", dsn).returncode == 0
    cli.json("start", "--flow", "CLI::review", "--id", "f-2", "--dsn", dsn)
    log = worker(dsn, app=None)
    waiting = wait_for(cli, dsn, "f-2", "WAITING")
    assert waiting["run"]["current_steps"] == ["review"]
    cli.json("user-tasks", "complete", "f-2", "review", '{"ok": 1}', "--dsn", dsn)
    finished = wait_for(cli, dsn, "f-2", "COMPLETED")
    assert finished["run"]["variables"] == {"prepared": True, "ok": 1}
    started = [json.loads(line)["msg"] for line in log.read_text().splitlines()]
    assert any("0 workflows" in msg for msg in started), started


def test_start_flow_errors(cli: Cli, sqlite_dsn: str):
    dsn = ["--dsn", sqlite_dsn]
    unknown = one_line_error(cli("start", "--flow", "CLI::nope", *dsn), 1)
    assert unknown == "durable: no definition 'CLI::nope' is stored"
    array = one_line_error(cli("start", "--flow", "CLI::nope", "--variables", "[]", *dsn), 2)
    assert "--variables" in array and "must be a JSON object, got an array" in array
    mixed = one_line_error(cli("start", "crash-steps", "--variables", "{}", *dsn), 2)
    assert "--variables and --version go with --flow" in mixed


def test_serve_without_the_server_extra_says_what_to_install(cli: Cli):
    assert cli("serve", "--help").returncode == 0
    hide_server = (
        "import sys; sys.modules['durable.server'] = None; "
        "from durable.cli import main; sys.exit(main(['serve', '--port', '0']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide_server], cwd=cli.cwd, env=cli.env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    line = one_line_error(done, 1)
    assert "pip install 'durable[server]'" in line


def test_worker_usage_errors(cli: Cli):
    level = one_line_error(cli("worker", "crash_app:app", "--log-level", "chatty"), 2)
    assert "--log-level" in level and "DEBUG, INFO, WARNING, ERROR" in level
    fmt = one_line_error(cli("worker", "crash_app:app", "--log-format", "xml"), 2)
    assert "--log-format" in fmt
    missing = one_line_error(cli("worker", "no_such_module:app"), 1)
    assert "cannot import 'no_such_module'" in missing


def test_runs_started_in_a_queue_go_to_workers_serving_it(cli: Cli, worker: Any, dsn: str):
    reports = cli.json(
        "start", "crash-steps", "--args", '{"count": 1}', "--queue", "reports",
        "--priority", "3", "--dsn", dsn,
    )  # fmt: skip
    default = cli.json("start", "crash-steps", "--args", '{"count": 1}', "--dsn", dsn)
    worker(dsn, "--queue", "reports")
    done = wait_for(cli, dsn, reports["run_id"], "COMPLETED")
    assert (done["run"]["queue"], done["run"]["priority"]) == ("reports", 3)
    shown = cli.json("runs", "show", default["run_id"], "--dsn", dsn)
    assert shown["run"]["status"] == "PENDING"  # nobody serves its queue
    bad = one_line_error(cli("start", "crash-steps", "--queue", "q" * 300, "--dsn", dsn), 1)
    assert "queue" in bad


def test_a_dsn_the_server_refuses_is_a_configuration_error_not_retried(cli: Cli, postgres_dsn: str):
    server = postgres_dsn.split("?")[0].rsplit("/", 1)[0]
    no_db = f"{server}/no_such_db"
    verbs = (["worker", "crash_app:app"], ["runs", "ls"], ["serve", "--port", "0"], ["start", "x"])
    for verb in verbs:
        message = one_line_error(cli(*verb, "--dsn", no_db), 2)
        assert 'database "no_such_db" does not exist' in message, message
        assert "retrying" not in message
    no_role = "postgresql://no_such_role_x@" + server.split("@", 1)[-1].split("://")[-1] + "/test"
    message = one_line_error(cli("start", "crash-steps", "--dsn", no_role), 2)
    assert 'role "no_such_role_x" does not exist' in message, message


def test_an_unreachable_server_is_retried_and_logged_as_unreachable(worker: Any):
    log = worker("postgresql://root@127.0.0.1:1/test")
    deadline = time.monotonic() + 20
    while log.read_text().count("unreachable") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker keeps going: a second attempt is logged
    text = log.read_text()
    assert text.count("the store is unreachable") >= 2 and "retrying in" in text, text
    assert "Traceback" not in text


def test_runs_show_says_what_a_run_waits_for_with_local_times(cli: Cli, worker: Any, dsn: str):
    nap = '{"seconds": 7200}'
    assert cli.json("start", "crash-sleep", "--args", nap, "--id", "nap", "--dsn", dsn)
    queued = cli("runs", "show", "nap", "--dsn", dsn).stdout
    assert "waits for:  a worker serving queue 'default' (queued)" in queued, queued
    assert cli.json("start", "crash-backoff", "--id", "flaky", "--dsn", dsn)
    worker(dsn)
    wait_for(cli, dsn, "nap", "WAITING")
    shown = cli("runs", "show", "nap", "--dsn", dsn).stdout
    local_time = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"
    assert re.search(rf"waits for:  timer due at {local_time} \(in 2 h\)", shown), shown
    assert re.search(rf"created:    {local_time} \(\d+ s ago\)", shown), shown
    timer_line = next(line for line in shown.splitlines() if " timer  " in line)
    for text in (shown.split("journal")[0], timer_line):  # no epoch floats (the activity's
        assert not re.search(r"\d{10}\.\d+", text), shown  # own result is one: not these)
    assert re.search(rf"timer +due {local_time} \(in 2 h\)", timer_line), timer_line
    for _ in range(100):
        history = cli.json("runs", "show", "flaky", "--dsn", dsn)["history"]
        if any(event["event"] == "retry" for event in history):
            break
    shown = cli("runs", "show", "flaky", "--dsn", dsn).stdout
    assert "waits for:  retry of activity 'flaky' (attempt 2) at " in shown, shown
    assert "after RuntimeError: the first attempt always fails" in shown, shown
