"""Output: the ``--json`` shapes (documented in docs/cli.md) and rich tables for people.

Table cells are ``rich.text.Text`` so that brackets in user data are never read as
markup. When stdout is not a terminal the tables are plain (no colour, no box) and wide
enough not to wrap ids, so ``grep`` and ``awk`` work on them.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..info import BlockedOn, HistoryEvent, RunDescription, Status, StepExecution
from ._common import compact, plain


def console() -> Console:
    tty = os.isatty(1)
    width = None if tty else max(shutil.get_terminal_size((160, 24)).columns, 160)
    return Console(width=width, highlight=False, no_color=not tty, soft_wrap=False)


def show(renderable: Table) -> None:
    """Print a table to stdout, without the padding rich leaves at the end of lines."""
    out = console()
    with out.capture() as captured:
        out.print(renderable)
    for line in captured.get().splitlines():
        print(line.rstrip())


# Columns of times never wrap (an 80-column terminal would leave a lone "Z" on a line of
# its own); ids and names fold instead.
_TIMES = frozenset({"CREATED", "UPDATED", "UPLOADED", "NEXT", "LAST"})


def table(*columns: str) -> Table:
    out = Table(box=box.SIMPLE_HEAD if os.isatty(1) else None, pad_edge=False)
    for name in columns:
        out.add_column(name, overflow="fold", no_wrap=name in _TIMES)
    return out


def row(out: Table, *cells: Any) -> None:
    """A row; a datetime cell is shown compactly, in UTC to the second."""
    out.add_row(*(Text(_cell(cell)) for cell in cells))


def _cell(cell: Any) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, datetime):
        return cell.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return str(cell)


# -- JSON shapes --------------------------------------------------------------------
def run_json(desc: RunDescription) -> dict[str, Any]:
    """A run: the fields of ``durable.RunDescription``."""
    return {
        "run_id": desc.run_id,
        "workflow": desc.workflow,
        "status": desc.status.value,
        "created_at": plain(desc.created_at),
        "updated_at": plain(desc.updated_at),
        "business_key": desc.business_key,
        "flow_version": desc.flow_version,
        "cancel_requested": desc.cancel_requested,
        "parked_reason": desc.parked_reason,
        "result": desc.result,
        "error": desc.error,
        "current_steps": list(desc.current_steps),
        "variables": desc.variables,
        "queue": desc.queue,
        "priority": desc.priority,
        "parent_id": desc.parent_id,
        "children": list(desc.children),
        "tags": desc.tags,
        "blocked_on": blocked_json(desc.blocked_on),
        "paused_reason": desc.paused_reason,
        "forked_from": None
        if desc.forked_from is None
        else {"run_id": desc.forked_from[0], "at": desc.forked_from[1]},
    }


def blocked_json(blocked: BlockedOn | None) -> dict[str, Any] | None:
    """What an open run waits for: ``{"kind", "message", "since"}``."""
    if blocked is None:
        return None
    since = None if blocked.since is None else plain(blocked.since)
    return {"kind": blocked.kind, "message": blocked.message, "since": since}


def event_json(event: HistoryEvent) -> dict[str, Any]:
    """A journal record: the fields of ``durable.HistoryEvent``."""
    return {
        "position": event.position,
        "seq": event.seq,
        "event": event.event,
        "kind": event.kind,
        "name": event.name,
        "payload": event.payload,
        "at": plain(event.at),
    }


def step_json(step: StepExecution) -> dict[str, Any]:
    """A flow step activation: the fields of ``durable.StepExecution``."""
    return {
        "id": step.id,
        "step_id": step.step_id,
        "step_type": step.step_type,
        "status": step.status,
        "attempt": step.attempt,
        "started_at": plain(step.started_at),
        "ended_at": plain(step.ended_at),
        "failure_reason": step.failure_reason,
    }


# -- people -------------------------------------------------------------------------
def runs_table(runs: Sequence[RunDescription]) -> Table:
    out = table("RUN ID", "WORKFLOW", "STATUS", "CREATED", "UPDATED", "BUSINESS KEY")
    for desc in runs:
        workflow = desc.workflow
        if desc.flow_version is not None:
            workflow = f"{workflow} v{desc.flow_version}"
        status = str(desc.status) + (" (parked)" if desc.parked_reason else "")
        row(
            out,
            desc.run_id,
            workflow,
            status,
            desc.created_at,
            desc.updated_at,
            desc.business_key,
        )
    return out


_UNITS = ((60.0, "s", 1.0), (3600.0, "min", 60.0), (86400.0, "h", 3600.0), (math.inf, "d", 86400.0))


def relative(seconds: float) -> str:
    """A distance from now in words: ``in 2 h`` (ahead), ``3 min ago`` (past) or ``now``."""
    size = abs(seconds)
    if size < 1:
        return "now"
    unit, span = next((unit, span) for limit, unit, span in _UNITS if size < limit)
    amount = f"{round(size / span)} {unit}"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def local(moment: datetime | float, now: datetime) -> str:
    """A time as a local ISO time and how far it is from ``now``."""
    if not isinstance(moment, datetime):  # seconds since the epoch, as the journal holds them
        moment = datetime.fromtimestamp(moment, UTC)
    seconds = (moment - now).total_seconds()
    return f"{moment.astimezone().isoformat(timespec='seconds')} ({relative(seconds)})"


def _pending(history: Sequence[HistoryEvent]) -> list[HistoryEvent]:
    """The journal's operations that have begun (a timer armed, a retry planned, a child
    started) and not ended: what the run waits on, as far as its journal says."""
    open_ops: dict[int, HistoryEvent] = {}
    for event in history:
        if event.event in ("timer", "retry", "start"):
            open_ops[event.seq] = event
        else:
            open_ops.pop(event.seq, None)
    return list(open_ops.values())


def _wait(event: HistoryEvent, now: datetime) -> str:
    if event.event == "start":
        return f"child run {event.payload!r}"
    if event.event == "retry":
        retry = event.payload if isinstance(event.payload, dict) else {}
        attempt = retry.get("attempt", "?")
        return f"retry of activity {event.name!r} (attempt {attempt}) at {local(retry['at'], now)}"
    if event.kind == "signal":
        return f"signal {event.name!r} until {local(float(event.payload), now)}"
    return f"timer due at {local(float(event.payload), now)}"


def waits_for(
    desc: RunDescription,
    history: Sequence[HistoryEvent],
    steps: Sequence[StepExecution] = (),
    now: datetime | None = None,
) -> list[str]:
    """What an unfinished run waits for, in words, from its row and its journal."""
    if desc.status in (Status.COMPLETED, Status.FAILED, Status.CANCELLED):
        return []
    if desc.parked_reason:
        return [f"parked: {desc.parked_reason} (a worker with fixed code resumes it)"]
    now = now or datetime.now(UTC)
    waits = [_wait(event, now) for event in _pending(history)]
    waits += [
        f"step {step.step_id!r} ({'a job' if step.step_type == 'SERVICE_TASK' else step.step_type})"
        for step in steps
        if step.ended_at is None and step.step_id in desc.current_steps
    ]
    if desc.status == Status.PENDING and not any(w.startswith("retry") for w in waits):
        waits.append(f"a worker serving queue {desc.queue!r} (queued)")
    elif desc.status == Status.RUNNING and not waits:
        waits.append("its worker (running)")
    elif not waits:
        blocked = desc.blocked_on
        waits.append(
            blocked.message
            if blocked is not None and blocked.kind == "signal"
            else "a signal (it waits without a timeout)"
        )
    if desc.cancel_requested:
        waits.append("its cancellation to be carried out")
    return waits


def summary(
    desc: RunDescription, waits: Sequence[str] = (), now: datetime | None = None
) -> list[str]:
    """The head of ``runs show``: one ``label: value`` line each."""
    now = now or datetime.now(UTC)
    lines = [
        f"run:        {desc.run_id}",
        f"workflow:   {desc.workflow}"
        + (f" (flow version {desc.flow_version})" if desc.flow_version is not None else ""),
        f"status:     {desc.status}" + (" (cancel requested)" if desc.cancel_requested else ""),
        f"created:    {local(desc.created_at, now)}",
        f"updated:    {local(desc.updated_at, now)}",
    ]
    if waits:
        lines.append(f"waits for:  {waits[0]}")
        lines.extend(f"            {wait}" for wait in waits[1:])
    if desc.blocked_on is not None:
        lines.append(f"blocked on: {desc.blocked_on.kind}: {desc.blocked_on.message}")
    if desc.business_key is not None:
        lines.append(f"key:        {desc.business_key}")
    if desc.queue != "default" or desc.priority:
        lines.append(f"queue:      {desc.queue} (priority {desc.priority})")
    if desc.parent_id is not None:
        lines.append(f"parent:     {desc.parent_id}")
    if desc.forked_from is not None:
        lines.append(f"forked:     from {desc.forked_from[0]} at {desc.forked_from[1]}")
    if desc.children:
        lines.append(f"children:   {', '.join(desc.children)}")
    if desc.current_steps:
        lines.append(f"at steps:   {', '.join(desc.current_steps)}")
    if desc.result is not None or desc.status == "COMPLETED":
        lines.append(f"result:     {compact(desc.result, 200)}")
    if desc.error is not None:
        lines.append(f"error:      {desc.error.get('type', 'Error')}: {desc.error.get('message')}")
    return lines


def _offset(start: datetime, moment: datetime) -> str:
    return f"+{(moment - start).total_seconds():.3f}s"


def _payload(event: HistoryEvent, now: datetime) -> str:
    """A journal record's payload for people: due times as local times, errors whole."""
    payload = event.payload
    if event.event == "timer":
        return f"due {local(float(payload), now)}"
    error = payload.get("error") if event.event == "retry" and isinstance(payload, dict) else None
    if event.event == "error" and isinstance(payload, dict):
        error = payload
    if isinstance(error, dict):
        said = f"{error.get('type', 'Error')}: {error.get('message')}"
        if event.event == "retry":
            return f"attempt {payload['attempt']} at {local(payload['at'], now)} after {said}"
        return said
    return compact(payload, 60)


def timeline(
    desc: RunDescription, events: Sequence[HistoryEvent], now: datetime | None = None
) -> Table:
    """The journal, oldest first, with times relative to the run's start."""
    now = now or datetime.now(UTC)
    out = table("AT", "SEQ", "KIND", "NAME", "EVENT", "PAYLOAD")
    for event in events:
        row(
            out,
            _offset(desc.created_at, event.at),
            event.seq,
            event.kind,
            event.name or "-",
            event.event,
            _payload(event, now),
        )
    return out


def steps_table(desc: RunDescription, steps: Sequence[StepExecution]) -> Table:
    """A flow run's step history, oldest first."""
    out = table("STARTED", "STEP", "TYPE", "STATUS", "ATTEMPT", "ENDED", "FAILURE")
    for step in steps:
        ended = None if step.ended_at is None else _offset(desc.created_at, step.ended_at)
        row(
            out,
            _offset(desc.created_at, step.started_at),
            step.step_id,
            step.step_type,
            step.status,
            step.attempt,
            ended,
            step.failure_reason,
        )
    return out
