"""Public data types describing runs: status, run metadata, descriptions and history."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Status(enum.StrEnum):
    """The state of a run."""

    PENDING = "PENDING"
    """Started, not yet picked up by a worker."""
    RUNNING = "RUNNING"
    """Held by a worker."""
    WAITING = "WAITING"
    """Suspended on a timer or signal (or parked until fixed code is deployed)."""
    COMPLETED = "COMPLETED"
    """Ended with a result."""
    FAILED = "FAILED"
    """Ended with an error (``RunDescription.error`` says which)."""
    CANCELLED = "CANCELLED"
    """Ended by a cancellation."""

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED: the run has ended for good."""
        return self in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a workflow knows about its own run (``ctx.info``)."""

    run_id: str
    workflow: str
    attempt: int
    """How many times a worker has claimed this run (1 on the first execution)."""
    replaying: bool
    """True while the workflow is re-executing recorded steps."""


@dataclass(frozen=True, slots=True)
class RunDescription:
    """A snapshot of a run (``Handle.describe()``, ``App.list_runs()``)."""

    run_id: str
    workflow: str
    status: Status
    created_at: datetime
    updated_at: datetime
    result: Any
    """The JSON form of the result when COMPLETED, else None."""
    error: dict[str, Any] | None
    """``{"type", "message", "traceback"}`` when FAILED or CANCELLED."""
    parked_reason: str | None
    """Why the run is parked (a non-determinism report), else None."""
    cancel_requested: bool
    business_key: str | None = None
    """The business key a flow run was started with."""
    flow_version: int | None = None
    """For a run of a JSON flow: the definition version (``workflow`` is its id)."""
    current_steps: tuple[str, ...] = ()
    """For a flow run: the ids of the steps active now, in the order they started."""
    variables: dict[str, Any] | None = None
    """For a flow run: its variables as of its last commit."""
    parent_id: str | None = None
    """The run that started this one with ``ctx.child``, if any."""
    children: tuple[str, ...] = ()
    """The runs this one started with ``ctx.child``, oldest first."""
    queue: str = "default"
    """The queue the run waits in for a worker."""
    priority: int = 0
    """Its priority within the queue (higher is claimed first)."""

    @property
    def failure_reason(self) -> str | None:
        """Why the run failed or was cancelled, in one line."""
        return None if self.error is None else str(self.error.get("message", ""))


@dataclass(frozen=True, slots=True)
class StepExecution:
    """One activation of a flow step (``Handle.steps()``): the flow's step history."""

    id: str
    step_id: str
    step_type: str
    status: str
    """``RUNNING``, ``COMPLETED``, ``FAILED`` or ``CANCELLED``."""
    attempt: int
    started_at: datetime
    ended_at: datetime | None = None
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One journal record of a run (``Handle.history()``)."""

    position: int
    seq: int
    event: str
    """``result``, ``error``, ``timer`` (a timer was scheduled), ``retry`` (an attempt failed
    and the next is scheduled), ``start`` (a child run was started) or ``cancel``."""
    kind: str
    """``activity``, ``sleep``, ``signal``, ``child``, ``now``, ``random``, ``uuid4``,
    ``patch``, ``event``, ``step`` (a flow step) or ``cancel``."""
    name: str
    payload: Any
    at: datetime
    fingerprint: str | None = None
    """A short hash of the call's arguments (activities, children); replay compares it."""
