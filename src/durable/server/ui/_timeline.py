"""A run's journal as timeline rows: one per operation, with attempts, duration and a bar."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ...info import HistoryEvent

ENDS = ("result", "error", "cancel")


@dataclass(slots=True)
class Row:
    """One operation of the run (all journal records sharing a sequence number)."""

    seq: int
    kind: str
    name: str
    started: datetime
    ended: datetime | None = None
    outcome: str = "open"
    """``result``, ``error``, ``cancel``, or ``open`` while it has not ended."""
    note: str = ""
    """What the outcome means where ``result`` says too little (a flow step's start or end)."""
    attempts: int = 1
    value: Any = None
    error: dict[str, Any] | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    """The errors of attempts that failed and were retried."""
    child: str | None = None
    wake_at: float | None = None
    x: float = 0.0
    width: float = 0.0

    @property
    def duration(self) -> timedelta | None:
        return None if self.ended is None else self.ended - self.started


def rows(events: list[HistoryEvent], began: datetime, now: datetime) -> list[Row]:
    """The operations of a journal, oldest first, with bars placed on [began, last moment].

    An operation starts when the record before its first one was written (the run's start
    for the first): the journal holds when things ended, and a run does one thing at a time
    between records.
    """
    found: dict[int, Row] = {}
    if events and events[0].at < began:  # a fork's first records are copied: older
        began = events[0].at
    previous = began
    for event in events:
        row = found.get(event.seq)
        if row is None:
            row = found[event.seq] = Row(event.seq, event.kind, event.name, started=previous)
        _add(row, event)
        previous = event.at
    ordered = list(found.values())
    _place(ordered, began, now)
    return ordered


def _add(row: Row, event: HistoryEvent) -> None:
    payload = event.payload
    if event.event == "retry" and isinstance(payload, dict):
        row.attempts += 1
        if isinstance(payload.get("error"), dict):
            row.failures.append(payload["error"])
    elif event.event == "timer":
        row.started = event.at
        row.wake_at = payload if isinstance(payload, int | float) else None
    elif event.event == "start" and row.kind == "child":
        row.child = payload if isinstance(payload, str) else None
    elif event.event in ENDS:
        row.ended = event.at
        if event.at < row.started:
            row.started = event.at
        row.outcome = event.event
        if event.event == "error":
            row.error = payload if isinstance(payload, dict) else {"message": str(payload)}
        elif row.kind == "child" and isinstance(payload, dict):
            row.value = payload.get("result", payload)
        elif row.kind == "step" and isinstance(payload, dict):  # a flow step's start or end
            row.note = str(payload.get("status", "started")).lower()
            row.value = payload
        else:
            row.value = payload


def _place(ordered: list[Row], began: datetime, now: datetime) -> None:
    """Bars as percentages of the run's span (at least a sliver, so each one shows)."""
    last = max([now, *(r.ended for r in ordered if r.ended is not None)])
    total = max((last - began).total_seconds(), 1e-6)
    for row in ordered:
        end = row.ended or now
        row.x = min(100.0, max(0.0, (row.started - began).total_seconds() / total * 100))
        row.width = max(0.4, min(100.0 - row.x, (end - row.started).total_seconds() / total * 100))
