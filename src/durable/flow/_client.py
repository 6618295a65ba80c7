"""Client operations on flows: definitions, starting runs, user tasks, external jobs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._describe import when
from .._wire import user_task_dedupe_key, user_task_signal
from ..errors import (
    DefinitionNotFoundError,
    DurableError,
    JobConflictError,
    JobNotFoundError,
    Problem,
    RunNotFoundError,
    StepNotWaitingError,
    ValidationError,
)
from ..store import DefinitionRecord, JobAnswer, JobRecord, Store
from ._state import flow_state
from ._validate import compile_definition

if TYPE_CHECKING:
    from .._services import Services


@dataclass(frozen=True, slots=True)
class DefinitionRef:
    """A stored definition version (``app.definitions.upload()``)."""

    id: str
    version: int
    name: str
    uploaded_at: datetime


@dataclass(frozen=True, slots=True)
class StoredDefinition:
    """A definition as stored: its version and the document as uploaded."""

    id: str
    version: int
    name: str
    uploaded_at: datetime
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Job:
    """An external SERVICE_TASK job, as handed to a worker that polls for it."""

    id: str
    job_type: str
    instance_id: str
    step_id: str
    step_execution_id: str
    retries_remaining: int
    attempt: int
    variables: dict[str, Any]
    lock_expires_at: datetime | None


def _stored(record: DefinitionRecord) -> StoredDefinition:
    return StoredDefinition(
        record.id,
        record.version,
        record.name,
        when(record.uploaded_at),
        json.loads(record.document),
    )


def _job(record: JobRecord) -> Job:
    expires = record.lock_expires_at
    return Job(
        id=record.id,
        job_type=record.job_type,
        instance_id=record.run_id,
        step_id=record.step_id,
        step_execution_id=f"{record.run_id}:{record.seq}",
        retries_remaining=record.retries_remaining,
        attempt=record.attempt,
        variables=json.loads(record.variables),
        lock_expires_at=None if expires is None else when(expires),
    )


def variables_text(variables: Any, what: str) -> str:
    """The JSON text of a variables map; anything but a JSON object is refused."""
    if variables is None:
        return "{}"
    if not isinstance(variables, dict):
        raise ValidationError(
            [Problem("variables", f"must be a JSON object, got {type(variables).__name__}")], what
        )
    try:
        return json.dumps(variables, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(
            [Problem("variables", f"cannot be stored as JSON: {exc}")], what
        ) from None


class Definitions:
    """Versioned flow definitions (``app.definitions``).

    Example::

        ref = await app.definitions.upload(json.load(open("order.json")))
        print(ref.id, ref.version)
    """

    def __init__(self, services: Services) -> None:
        self._services = services

    async def upload(self, document: Any) -> DefinitionRef:
        """Validate and store a definition as the next version of its id.

        Raises:
            durable.ValidationError: listing every problem, each with its JSON path.
        """
        graph = compile_definition(document)
        text = json.dumps(document)
        record = await self._services.store.put_definition(graph.id, graph.name, text)
        return DefinitionRef(record.id, record.version, record.name, when(record.uploaded_at))

    async def get(self, definition_id: str, version: int | None = None) -> StoredDefinition:
        """A stored definition: the latest version unless ``version`` is given.

        Raises:
            durable.DefinitionNotFoundError: no such definition or version.
        """
        record = await self._services.store.get_definition(definition_id, version)
        if record is None:
            which = f"version {version} of " if version is not None else ""
            raise DefinitionNotFoundError(f"no {which}definition {definition_id!r} is stored")
        return _stored(record)

    async def list(
        self, *, keyword: str | None = None, offset: int = 0, limit: int = 20
    ) -> tuple[list[StoredDefinition], int]:
        """The latest version of each definition whose id or name holds ``keyword``; the total."""
        records, total = await self._services.store.list_definitions(
            keyword=keyword, offset=offset, limit=limit
        )
        return [_stored(record) for record in records], total


class Jobs:
    """External SERVICE_TASK jobs, for workers in other processes (``app.jobs``)."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def poll(
        self,
        worker_id: str,
        job_types: Sequence[str],
        *,
        max_jobs: int = 1,
        lease_seconds: float = 60.0,
    ) -> list[Job]:
        """Claim up to ``max_jobs`` queued jobs of ``job_types`` for ``lease_seconds``."""
        records = await self._services.store.poll_jobs(
            worker_id, list(job_types), max_jobs, lease_seconds
        )
        return [_job(record) for record in records]

    async def complete(self, job_id: str, worker_id: str, variables: Any = None) -> None:
        """Complete a job; its variables are merged into the run's. Repeating it is a no-op,
        and so is completing a job the engine closed (an interrupting boundary timer, an
        END or a cancel ended its step): nobody waits for its outcome.

        Raises:
            durable.JobNotFoundError: no such job.
            durable.JobConflictError: the lease passed to another worker, or that worker
                closed the job; nothing changed.
        """
        text = variables_text(variables, f"completion of job {job_id!r}")
        answer = await self._services.store.complete_job(job_id, worker_id, text)
        _check(answer, job_id, worker_id)

    async def fail(
        self, job_id: str, worker_id: str, error_message: str, *, retryable: bool = True
    ) -> None:
        """Fail a job: re-queued while retries remain (if ``retryable``), else the step fails."""
        answer = await self._services.store.fail_job(
            job_id, worker_id, retryable=retryable, message=error_message
        )
        _check(answer, job_id, worker_id)


def _check(answer: JobAnswer, job_id: str, worker_id: str) -> None:
    if answer is JobAnswer.NOT_FOUND:
        raise JobNotFoundError(f"no job with id {job_id!r}")
    if answer is JobAnswer.CONFLICT:
        raise JobConflictError(
            f"job {job_id!r} is not held by worker {worker_id!r} (its lease passed to another "
            "worker, or that worker closed it); nothing was changed"
        )


async def complete_user_task(store: Store, run_id: str, step_id: str, variables: Any) -> None:
    """Complete the open user task ``step_id`` of a flow run (a no-op if done before)."""
    text = variables_text(variables, f"completion of user task {step_id!r} of run {run_id!r}")
    run = await store.get_run(run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    if run.flow_version is None:
        raise DurableError(f"run {run_id!r} is not a flow run; it has no user tasks")
    state = flow_state(run, await store.read_journal(run_id))
    activations = [s for s in state.steps if s.step_id == step_id]
    waiting = [s for s in activations if s.status == "RUNNING" and s.step_type == "USER_TASK"]
    if waiting and not run.status.is_terminal:
        seq = int(waiting[0].id.rsplit(":", 1)[1])
        signal, dedupe_key = user_task_signal(seq), user_task_dedupe_key(seq)
        await store.send_signal(run_id, signal, text, dedupe_key=dedupe_key)
        return
    if any(s.status == "COMPLETED" for s in activations):
        return  # completed before: completing again changes nothing
    raise StepNotWaitingError(
        f"run {run_id!r} has no user task {step_id!r} waiting (status {run.status})"
    )
