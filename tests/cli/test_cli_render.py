"""Tables for people fit a narrow terminal without breaking a time apart."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from durable.cli import _render
from durable.info import RunDescription, Status

AT = datetime(2026, 12, 7, 4, 4, 21, 595000, tzinfo=UTC)


def test_run_times_stay_on_one_line_of_an_80_column_terminal():
    run = RunDescription(
        "dbdf9c0737b74858801c9cfc13d4b0a2", "LOS::loan-application", Status.WAITING,
        AT, AT, None, None, None, False, business_key="B-12345", flow_version=3,
    )  # fmt: skip
    screen = Console(width=80, highlight=False, no_color=True)
    with screen.capture() as captured:
        screen.print(_render.runs_table([run]))
    lines = [line.rstrip() for line in captured.get().splitlines()]
    assert all(len(line) <= 80 for line in lines)
    assert sum(line.count("2026-12-07 04:04:21Z") for line in lines) == 2, lines
    assert not any(line.strip() in {"Z", "04:04:21.595Z"} for line in lines), lines
