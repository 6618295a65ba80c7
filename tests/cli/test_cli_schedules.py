"""``durable schedules ls|show|pause|resume|delete``, run as real commands."""

from __future__ import annotations

from datetime import datetime

import pytest
from cli_helpers import Cli, one_line_error

import durable

pytestmark = pytest.mark.anyio


@durable.workflow(name="cli-report")
async def report(ctx: durable.Context, region: str) -> str:
    return region


async def test_list_pause_resume_delete(cli: Cli, dsn: str):
    async with durable.App(dsn) as app:
        await app.schedule(
            report, cron="0 7 * * *", id="daily", args=("eu",), timezone="Europe/Berlin"
        )
        await app.schedule(report, cron="*/5 * * * *", id="often", kwargs={"region": "us"})
    assert cli("schedules", "ls", "--dsn", dsn).returncode == 0

    listed = cli.json("schedules", "ls", "--dsn", dsn)["schedules"]
    assert [(s["id"], s["workflow"], s["cron"], s["timezone"], s["paused"]) for s in listed] == [
        ("daily", "cli-report", "0 7 * * *", "Europe/Berlin", False),
        ("often", "cli-report", "*/5 * * * *", "UTC", False),
    ]
    daily = listed[0]
    assert daily["args"] == {"region": "eu"} and daily["last_fire_at"] is None
    assert datetime.fromisoformat(daily["next_fire_at"]).hour in (5, 6)  # 07:00 in Berlin

    paused = cli.json("schedules", "pause", "daily", "--dsn", dsn)
    assert paused["paused"] is True
    table = cli("schedules", "ls", "--dsn", dsn).stdout.splitlines()
    assert table[0].split() == ["ID", "WORKFLOW", "CRON", "TIMEZONE", "STATE", "NEXT", "LAST"]
    assert [line.split()[0] for line in table[1:]] == ["daily", "often"]
    assert "paused" in table[1] and "active" in table[2]
    resumed = cli("schedules", "resume", "daily", "--dsn", dsn)
    assert resumed.returncode == 0 and "schedule daily is active; next run at" in resumed.stdout
    assert cli.json("schedules", "show", "daily", "--dsn", dsn)["paused"] is False

    deleted = cli.json("schedules", "delete", "often", "--dsn", dsn)
    assert deleted == {"id": "often", "deleted": True}
    assert [s["id"] for s in cli.json("schedules", "ls", "--dsn", dsn)["schedules"]] == ["daily"]
    for verb in ("show", "pause", "resume", "delete"):
        missing = one_line_error(cli("schedules", verb, "often", "--dsn", dsn), 1)
        assert missing.startswith("durable: ") and "'often'" in missing
    async with durable.App(dsn) as app:
        assert [info.id for info in await app.schedules.list()] == ["daily"]
