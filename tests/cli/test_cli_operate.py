"""``durable start --tag``, ``runs ls`` by tag and time, and ``runs cancel`` by filter."""

from __future__ import annotations

from cli_helpers import Cli, one_line_error


def test_tags_filters_and_bulk_cancel(cli: Cli, dsn: str):
    for i in range(3):
        cli.json("start", "crash-sleep", "--args", '{"seconds": 60}', "--id", f"t{i}",
                 "--tag", "batch=b7", "--tag", f"n={i}", "--dsn", dsn)  # fmt: skip
    cli.json("start", "crash-sleep", "--args", '{"seconds": 60}', "--id", "other",
             "--tag", "batch=b8", "--dsn", dsn)  # fmt: skip
    listed = cli.json("runs", "ls", "--tag", "batch=b7", "--dsn", dsn)["runs"]
    assert sorted(r["run_id"] for r in listed) == ["t0", "t1", "t2"]
    assert {r["tags"]["batch"] for r in listed} == {"b7"}
    one = cli.json("runs", "ls", "--tag", "batch=b7", "--tag", "n=1", "--dsn", dsn)["runs"]
    assert [r["run_id"] for r in one] == ["t1"]
    assert cli.json("runs", "ls", "--since", "2999-01-01", "--dsn", dsn)["runs"] == []
    assert len(cli.json("runs", "ls", "--queue", "default", "--dsn", dsn)["runs"]) == 4

    dry = cli("runs", "cancel", "--tag", "batch=b7", "--dry-run", "--dsn", dsn)
    assert dry.returncode == 0 and "3 runs would be cancelled" in dry.stdout
    refused = cli("runs", "cancel", "--tag", "batch=b7", "--dsn", dsn)  # no answer: aborted
    assert refused.returncode != 0
    assert cli.json("runs", "cancel", "--tag", "batch=b7", "--dry-run", "--dsn", dsn) == {
        "would_cancel": 3
    }
    done = cli("runs", "cancel", "--tag", "batch=b7", "--yes", "--dsn", dsn)
    assert done.returncode == 0 and "cancelled 3 runs" in done.stdout, done.stderr
    statuses = {r["run_id"]: r["status"] for r in cli.json("runs", "ls", "--dsn", dsn)["runs"]}
    assert statuses == {"t0": "CANCELLED", "t1": "CANCELLED", "t2": "CANCELLED", "other": "PENDING"}


def test_bad_tags_and_bulk_cancel_without_filter_are_refused(cli: Cli, sqlite_dsn: str):
    line = one_line_error(cli("start", "crash-sleep", "--tag", "novalue", "--dsn", sqlite_dsn), 2)
    assert "KEY=VALUE" in line
    line = one_line_error(cli("start", "crash-sleep", "--tag", "bad key=v", "--dsn", sqlite_dsn), 1)
    assert "'bad key'" in line
    line = one_line_error(cli("runs", "cancel", "--yes", "--dsn", sqlite_dsn), 2)
    assert "--tag" in line
