"""A flow run's state as its journal tells it: step history, active steps, variables.

Clients (``Handle.describe()``, ``Handle.steps()``, the REST API) read this without a
worker: the interpreter journals a ``step`` record when a step starts and when it ends,
and an ending record carries the variables the step wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .._wire import Kind, StepRecord
from ..info import StepExecution
from ..serde import loads
from ..store import JournalEntry, RunRecord


@dataclass(frozen=True, slots=True)
class FlowState:
    steps: list[StepExecution]
    current: tuple[str, ...]
    variables: dict[str, Any]


def flow_state(run: RunRecord, entries: list[JournalEntry]) -> FlowState:
    """Replay the step records of a flow run's journal."""
    variables = start_variables(run)
    fork = _fork_of(run)
    by_start: dict[int, int] = {}
    steps: list[StepExecution] = []
    for entry in entries:
        if entry.kind != Kind.STEP or entry.payload is None:
            continue
        if fork is not None and entry.seq >= fork[0]:  # the fork's variables come in here
            variables.update(fork[1])
            fork = None
        record: StepRecord = loads(entry.payload)
        at = datetime.fromisoformat(record["at"])
        if "startedAt" in record:  # a step recorded once, when it ended
            steps.append(
                StepExecution(
                    id=f"{run.id}:{entry.seq}",
                    step_id=entry.name,
                    step_type=record["type"],
                    status=record["status"],
                    attempt=record.get("attempt", 1),
                    started_at=datetime.fromisoformat(record["startedAt"]),
                    ended_at=at,
                    failure_reason=record.get("reason"),
                )
            )
            variables.update(record.get("output", {}))
            continue
        if "start" not in record:
            by_start[entry.seq] = len(steps)
            steps.append(
                StepExecution(
                    id=f"{run.id}:{entry.seq}",
                    step_id=entry.name,
                    step_type=record["type"],
                    status="RUNNING",
                    attempt=1,
                    started_at=at,
                )
            )
            continue
        index = by_start.get(record["start"])
        if index is None:
            continue
        steps[index] = replace(
            steps[index],
            status=record["status"],
            attempt=record.get("attempt", 1),
            ended_at=at,
            failure_reason=record.get("reason"),
        )
        variables.update(record.get("output", {}))
    if fork is not None:
        variables.update(fork[1])
    if run.result is not None:
        final = loads(run.result)
        if isinstance(final, dict):
            variables = final
    running = () if run.status.is_terminal else steps
    current = tuple(step.step_id for step in running if step.status == "RUNNING")
    return FlowState(steps, current, variables)


def fork_point(entries: list[JournalEntry], step_id: str | None) -> tuple[int, str] | None:
    """Where a fork of a flow run at ``step_id`` starts: the seq of the first operation
    of that step's latest start (``step_id`` None: of the step that failed last), and the
    step's id; None when the journal has no such step."""
    found: tuple[int, str] | None = None
    for entry in entries:
        if entry.kind != Kind.STEP or entry.payload is None:
            continue
        record: StepRecord = loads(entry.payload)
        if (step_id is None and record.get("status") != "FAILED") or (
            step_id is not None and entry.name != step_id
        ):
            continue
        if "start" in record:  # the end of a step that waited: its start record
            found = record["start"], entry.name
        elif "startedAt" in record:  # a quick step, recorded once at its end
            found = record.get("first", entry.seq), entry.name
        else:  # a start record
            found = entry.seq, entry.name
    return found


def start_variables(run: RunRecord) -> dict[str, Any]:
    args = json.loads(run.args)
    variables = args.get("variables") if isinstance(args, dict) else None
    return dict(variables) if isinstance(variables, dict) else {}


def _fork_of(run: RunRecord) -> tuple[int, dict[str, Any]] | None:
    """The cut and variables of a forked flow run (``Handle.fork(variables=)``), if any."""
    args = json.loads(run.args)
    fork = args.get("fork") if isinstance(args, dict) else None
    if not isinstance(fork, dict) or not isinstance(fork.get("variables"), dict):
        return None
    return int(fork.get("at", 0)), dict(fork["variables"])
