"""From store records to the wire shapes of the REST API (``docs/rest.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .._wire import Kind, StoredError
from ..flow._state import FlowState, flow_state
from ..info import Status, StepExecution
from ..store import RunRecord
from ._errors import NOT_FOUND, ApiError
from ._models import InstanceOut, InstanceStatus, StepExecutionOut

if TYPE_CHECKING:
    from ..app import App

_REST_STATUS: dict[Status, InstanceStatus] = {
    Status.PENDING: "ACTIVE",
    Status.RUNNING: "ACTIVE",
    Status.WAITING: "WAITING",
    Status.PAUSED: "PAUSED",
    Status.COMPLETED: "COMPLETED",
    Status.FAILED: "FAILED",
    Status.CANCELLED: "CANCELLED",
}

STORE_STATUSES: dict[str, tuple[Status, ...]] = {
    "ACTIVE": (Status.PENDING, Status.RUNNING, Status.WAITING),
    "WAITING": (Status.WAITING,),
    "PAUSED": (Status.PAUSED,),
    "COMPLETED": (Status.COMPLETED,),
    "FAILED": (Status.FAILED,),
    "CANCELLED": (Status.CANCELLED,),
}
"""The store statuses behind each REST status (a WAITING run is ACTIVE unless it waits at
a USER_TASK or a WAIT step: ``rest_status``)."""

WAITING_STEPS = frozenset({"USER_TASK", "WAIT"})
"""The steps a run is WAITING at, as in Rochallor; waiting for anything else (an external
job, a timer, a retry) it is ACTIVE."""


def rest_status(run: RunRecord, state: FlowState) -> InstanceStatus:
    """The instance status: Rochallor's clients wait for WAITING before completing a user
    task, so it means "at a USER_TASK or WAIT step", not "suspended"."""
    status = _REST_STATUS[run.status]
    if status == "WAITING" and not any(
        s.status == "RUNNING" and s.step_type in WAITING_STEPS for s in state.steps
    ):
        return "ACTIVE"
    return status


def when(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def _failure_reason(run: RunRecord) -> str | None:
    if run.status not in (Status.FAILED, Status.CANCELLED) or not run.error:
        return None
    try:
        return StoredError.loads(run.error).message
    except ValueError:  # not a stored error: show the text as it is
        return run.error


def instance_out(run: RunRecord, state: FlowState) -> InstanceOut:
    """A flow run as the REST API's instance."""
    assert run.flow_version is not None
    return InstanceOut(
        id=run.id,
        definitionId=run.workflow,
        definitionVersion=run.flow_version,
        status=rest_status(run, state),
        currentStepIds=list(state.current),
        variables=state.variables,
        startedAt=when(run.created_at),
        completedAt=when(run.updated_at) if run.status.is_terminal else None,
        failureReason=_failure_reason(run),
        businessKey=run.business_key,
    )


async def instances_out(app: App, runs: Sequence[RunRecord]) -> list[InstanceOut]:
    """Instances for several flow runs, their step records read in one query."""
    journals = await app.store.read_journals([run.id for run in runs], kinds=[Kind.STEP])
    return [instance_out(run, flow_state(run, journals.get(run.id, []))) for run in runs]


async def flow_run(app: App, instance_id: str) -> RunRecord:
    """The flow run ``instance_id``; 404 when there is none (code-first runs included)."""
    run = await app.store.get_run(instance_id)
    if run is None:
        raise ApiError(404, NOT_FOUND, f"no instance with id {instance_id!r}")
    if run.flow_version is None:
        raise ApiError(
            404,
            NOT_FOUND,
            f"run {instance_id!r} is a code-first run of workflow {run.workflow!r}, "
            "not an instance of a JSON definition",
        )
    return run


async def state_of(app: App, run: RunRecord) -> FlowState:
    journals = await app.store.read_journals([run.id], kinds=[Kind.STEP])
    return flow_state(run, journals.get(run.id, []))


def step_out(instance_id: str, step: StepExecution) -> StepExecutionOut:
    return StepExecutionOut(
        id=step.id,
        instanceId=instance_id,
        stepId=step.step_id,
        stepType=step.step_type,
        attemptNumber=step.attempt,
        status=step.status,  # type: ignore[arg-type]  # one of the flow's step statuses
        startedAt=step.started_at,
        endedAt=step.ended_at,
        failureReason=step.failure_reason,
    )
