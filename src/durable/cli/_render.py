"""Output: the ``--json`` shapes (documented in docs/cli.md) and rich tables for people.

Table cells are ``rich.text.Text`` so that brackets in user data are never read as
markup. When stdout is not a terminal the tables are plain (no colour, no box) and wide
enough not to wrap ids, so ``grep`` and ``awk`` work on them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..info import HistoryEvent, RunDescription, StepExecution
from ._common import compact, plain, when


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
    }


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


def summary(desc: RunDescription) -> list[str]:
    """The head of ``runs show``: one ``label: value`` line each."""
    lines = [
        f"run:        {desc.run_id}",
        f"workflow:   {desc.workflow}"
        + (f" (flow version {desc.flow_version})" if desc.flow_version is not None else ""),
        f"status:     {desc.status}" + (" (cancel requested)" if desc.cancel_requested else ""),
        f"created:    {when(desc.created_at)}",
        f"updated:    {when(desc.updated_at)}",
    ]
    if desc.business_key is not None:
        lines.append(f"key:        {desc.business_key}")
    if desc.queue != "default" or desc.priority:
        lines.append(f"queue:      {desc.queue} (priority {desc.priority})")
    if desc.parent_id is not None:
        lines.append(f"parent:     {desc.parent_id}")
    if desc.children:
        lines.append(f"children:   {', '.join(desc.children)}")
    if desc.parked_reason:
        lines.append(f"parked:     {desc.parked_reason}")
    if desc.current_steps:
        lines.append(f"at steps:   {', '.join(desc.current_steps)}")
    if desc.result is not None or desc.status == "COMPLETED":
        lines.append(f"result:     {compact(desc.result, 200)}")
    if desc.error is not None:
        lines.append(f"error:      {desc.error.get('type', 'Error')}: {desc.error.get('message')}")
    return lines


def _offset(start: datetime, moment: datetime) -> str:
    return f"+{(moment - start).total_seconds():.3f}s"


def timeline(desc: RunDescription, events: Sequence[HistoryEvent]) -> Table:
    """The journal, oldest first, with times relative to the run's start."""
    out = table("AT", "SEQ", "KIND", "NAME", "EVENT", "PAYLOAD")
    for event in events:
        row(
            out,
            _offset(desc.created_at, event.at),
            event.seq,
            event.kind,
            event.name or "-",
            event.event,
            compact(event.payload, 60),
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
