"""The pure parts of what the CLI prints: relative times, what a run waits for, tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from durable.cli import _render
from durable.cli._render import relative, waits_for
from durable.info import HistoryEvent, RunDescription, Status


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0.4, "now"),
        (-0.4, "now"),
        (42, "in 42 s"),
        (-180, "3 min ago"),
        (7200, "in 2 h"),
        (-3 * 86400, "3 d ago"),
        (5400, "in 2 h"),
    ],
)
def test_relative_times_in_words(seconds: float, said: str):
    assert relative(seconds) == said


NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def run(status: Status = Status.WAITING, **fields: object) -> RunDescription:
    base: dict[str, object] = dict(
        run_id="r", workflow="w", status=status, created_at=NOW, updated_at=NOW, result=None,
        error=None, parked_reason=None, cancel_requested=False,
    )  # fmt: skip
    return RunDescription(**{**base, **fields})  # type: ignore[arg-type]


def event(seq: int, event: str, kind: str, name: str | None, payload: object) -> HistoryEvent:
    return HistoryEvent(
        position=seq, seq=seq, event=event, kind=kind, name=name, payload=payload, at=NOW
    )


def test_waits_are_read_from_the_journal_operations_that_have_not_ended():
    due = (NOW + timedelta(hours=2)).timestamp()
    history = [
        event(1, "timer", "sleep", None, (NOW - timedelta(minutes=5)).timestamp()),
        event(1, "result", "sleep", None, None),
        event(2, "start", "child", "pay", "kid-1"),
        event(3, "timer", "signal", "approve", due),
    ]
    waits = waits_for(run(), history, now=NOW)
    assert waits[0] == "child run 'kid-1'"
    assert waits[1].startswith("signal 'approve' until ") and waits[1].endswith("(in 2 h)")
    assert waits_for(run(Status.COMPLETED), history, now=NOW) == []
    parked = waits_for(run(parked_reason="workflow 'x' is not registered"), [], now=NOW)
    assert parked[0].startswith("parked: workflow 'x' is not registered")
    assert waits_for(run(Status.PENDING), [], now=NOW) == [
        "a worker serving queue 'default' (queued)"
    ]
    assert waits_for(run(), [], now=NOW) == ["a signal (it waits without a timeout)"]


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
