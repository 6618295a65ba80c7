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

from ..info import StepExecution
from ..serde import loads
from ..store import JournalEntry, RunRecord
from ._interpreter import STEP


@dataclass(frozen=True, slots=True)
class FlowState:
    steps: list[StepExecution]
    current: tuple[str, ...]
    variables: dict[str, Any]


def flow_state(run: RunRecord, entries: list[JournalEntry]) -> FlowState:
    """Replay the step records of a flow run's journal."""
    variables = start_variables(run)
    by_start: dict[int, int] = {}
    steps: list[StepExecution] = []
    for entry in entries:
        if entry.kind != STEP or entry.payload is None:
            continue
        record: dict[str, Any] = loads(entry.payload)
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
    if run.result is not None:
        final = loads(run.result)
        if isinstance(final, dict):
            variables = final
    running = () if run.status.is_terminal else steps
    current = tuple(step.step_id for step in running if step.status == "RUNNING")
    return FlowState(steps, current, variables)


def start_variables(run: RunRecord) -> dict[str, Any]:
    args = json.loads(run.args)
    variables = args.get("variables") if isinstance(args, dict) else None
    return dict(variables) if isinstance(variables, dict) else {}
