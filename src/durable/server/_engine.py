"""The engine's operations on instances and jobs, shared by the REST routes and the gRPC
service: each checks its input against the run's state and answers a wire shape, or
raises ``ApiError`` or a ``durable`` error that both surfaces map (``docs/rest.md``,
``docs/grpc.md``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import JobConflictError, RunClosedError
from ..flow._client import complete_user_task, variables_text
from ..info import Status
from ..store import RunRecord
from ..store._notify import run_topic
from ._convert import STORE_STATUSES, flow_run, instance_out, instances_out, state_of, step_out
from ._errors import CONFLICT, NOT_FOUND, VALIDATION_ERROR, ApiError
from ._models import HistoryOut, InstanceOut, InstancePage, InstanceStatus, JobOut, JobsOut

if TYPE_CHECKING:
    from ..app import App
    from ._metrics import Metrics

log = logging.getLogger("durable.server")

CANCEL_WAIT_SECONDS = 5.0
"""How long a cancel call waits for a worker to unwind the run before answering."""
MAX_JOBS_PER_POLL = 100
"""The most jobs one poll hands out, whatever ``maxJobs`` asks."""
DEFAULT_MAX_JOBS = 10
"""What a REST poll's ``maxJobs`` of 0 or less means, as in Rochallor."""
_SCAN = 200
"""Runs read at a time when a status filter needs each run's steps."""


def jobs_to_hand_out(max_jobs: int, default: int = DEFAULT_MAX_JOBS) -> int:
    """How many jobs a poll asking for ``max_jobs`` gets at most: ``default`` for 0 or less,
    never more than ``MAX_JOBS_PER_POLL`` (Rochallor's SDKs send their concurrency here)."""
    return min(max_jobs if max_jobs > 0 else default, MAX_JOBS_PER_POLL)


async def _step_type(app: App, run: RunRecord, step_id: str) -> str | None:
    """The type of step ``step_id`` in the definition version the run executes."""
    stored = await app.store.get_definition(run.workflow, run.flow_version)
    if stored is None:
        return None
    steps = json.loads(stored.document).get("steps", [])
    for step in steps:
        if isinstance(step, dict) and step.get("id") == step_id:
            return str(step.get("type"))
    return None


async def _wait_until_ended(app: App, run: RunRecord, seconds: float) -> RunRecord:
    deadline = time.monotonic() + seconds
    with app.store.subscribe(run_topic(run.id)) as changed:
        while not run.status.is_terminal:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # SQLite cannot notify across processes: look again now and then.
            await changed.wait(min(left, 0.2))
            found = await app.store.get_run(run.id)
            if found is None:
                break
            run = found
    return run


class Engine:
    """Instances and jobs over ``app``'s store; job conflicts are counted in ``metrics``."""

    def __init__(self, app: App, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    # -- instances ----------------------------------------------------------------------
    async def start_instance(
        self,
        definition_id: str,
        *,
        variables: dict[str, Any] | None = None,
        business_key: str | None = None,
        version: int | None = None,
        tags: dict[str, str] | None = None,
    ) -> InstanceOut:
        handle = await self.app.start_flow(
            definition_id,
            variables=variables,
            business_key=business_key,
            version=version,
            tags=tags,
        )
        return await self.instance(handle.run_id)

    async def instance(self, instance_id: str) -> InstanceOut:
        run = await flow_run(self.app, instance_id)
        return instance_out(run, await state_of(self.app, run))

    async def history(self, instance_id: str) -> HistoryOut:
        run = await flow_run(self.app, instance_id)
        state = await state_of(self.app, run)
        return HistoryOut(items=[step_out(run.id, step) for step in state.steps])

    async def list_instances(
        self,
        *,
        definition_id: str | None,
        status: InstanceStatus | None,
        business_key: str | None,
        page: int,
        page_size: int,
    ) -> InstancePage:
        offset = page * page_size
        if status not in ("ACTIVE", "WAITING"):
            runs, total = await self.app.store.list_flow_runs(
                definition_id=definition_id,
                statuses=None if status is None else STORE_STATUSES[status],
                business_key=business_key,
                offset=offset,
                limit=page_size,
            )
            return InstancePage(items=await instances_out(self.app, runs), total=total)
        # ACTIVE and WAITING depend on the step a run waits at: read each run's steps.
        items: list[InstanceOut] = []
        total = position = 0
        while True:
            runs, _ = await self.app.store.list_flow_runs(
                definition_id=definition_id,
                statuses=STORE_STATUSES[status],
                business_key=business_key,
                offset=position,
                limit=_SCAN,
            )
            for out in await instances_out(self.app, runs):
                if out.status == status:
                    if offset <= total < offset + page_size:
                        items.append(out)
                    total += 1
            position += len(runs)
            if len(runs) < _SCAN:
                return InstancePage(items=items, total=total)

    async def cancel(self, instance_id: str, reason: str | None) -> InstanceOut:
        run = await flow_run(self.app, instance_id)
        if run.status.is_terminal:
            raise ApiError(409, CONFLICT, f"instance {instance_id!r} is already {run.status}")
        run = await self.app.store.request_cancel(instance_id)
        if run.status.is_terminal and run.status is not Status.CANCELLED:
            raise ApiError(409, CONFLICT, f"instance {instance_id!r} is already {run.status}")
        log.info("instance %s cancelled%s", instance_id, f": {reason}" if reason else "")
        run = await _wait_until_ended(self.app, run, CANCEL_WAIT_SECONDS)
        out = instance_out(run, await state_of(self.app, run))
        # Cancelled for good: a worker unwinds it at its next durable await. Until then
        # GET shows it as it is.
        return out.model_copy(update={"status": "CANCELLED"})

    async def complete_user_task(
        self, instance_id: str, step_id: str, variables: dict[str, Any] | None
    ) -> None:
        run = await flow_run(self.app, instance_id)
        step_type = await _step_type(self.app, run, step_id)
        if step_type is None:
            raise ApiError(404, NOT_FOUND, f"instance {instance_id!r} has no step {step_id!r}")
        if step_type != "USER_TASK":
            raise ApiError(
                409, CONFLICT, f"step {step_id!r} is a {step_type}, not a USER_TASK; use signals"
            )
        try:
            await complete_user_task(self.app.store, instance_id, step_id, variables)
        except RunClosedError as exc:
            raise ApiError(409, CONFLICT, str(exc)) from None

    async def signal_wait(self, instance_id: str, step_id: str, variables: Any) -> None:
        run = await flow_run(self.app, instance_id)
        step_type = await _step_type(self.app, run, step_id)
        if step_type != "WAIT":
            raise ApiError(404, NOT_FOUND, f"instance {instance_id!r} has no WAIT step {step_id!r}")
        state = await state_of(self.app, run)
        if run.status.is_terminal or step_id not in state.current:
            raise ApiError(
                409,
                CONFLICT,
                f"instance {instance_id!r} is not waiting at step {step_id!r} "
                f"(status {run.status})",
            )
        text = variables_text(variables, f"signal {step_id!r} of instance {instance_id!r}")
        try:
            await self.app.store.send_signal(instance_id, step_id, text)
        except RunClosedError as exc:
            raise ApiError(409, CONFLICT, str(exc)) from None

    async def retry_step(
        self, instance_id: str, step_id: str, variables: dict[str, Any] | None
    ) -> InstanceOut:
        """Run the failed step of a FAILED instance again (``Handle.retry``): the steps
        before it are not run again. ``variables`` cannot be merged on a retry: fork the
        instance with them instead (``durable runs fork``)."""
        run = await flow_run(self.app, instance_id)
        if variables:
            raise ApiError(
                400,
                VALIDATION_ERROR,
                "variables cannot be merged on a retry; fork the instance with them instead",
            )
        if run.status is not Status.FAILED:
            raise ApiError(409, CONFLICT, f"instance {instance_id!r} is {run.status}, not FAILED")
        state = await state_of(self.app, run)
        failed = [s.step_id for s in state.steps if s.status == "FAILED"]
        if not failed or failed[-1] != step_id:
            which = f"step {failed[-1]!r}" if failed else "no step"
            raise ApiError(
                409, CONFLICT, f"instance {instance_id!r} failed at {which}, not {step_id!r}"
            )
        await self.app.handle(instance_id).retry()
        return await self.instance(instance_id)

    # -- jobs ---------------------------------------------------------------------------
    async def poll(
        self, worker_id: str, job_types: Sequence[str], max_jobs: int, lease_seconds: int
    ) -> JobsOut:
        expiry = datetime.now(UTC) + timedelta(seconds=lease_seconds)
        jobs = await self.app.jobs.poll(
            worker_id, job_types, max_jobs=max_jobs, lease_seconds=lease_seconds
        )
        return JobsOut(
            jobs=[
                JobOut(
                    id=job.id,
                    jobType=job.job_type,
                    instanceId=job.instance_id,
                    stepId=job.step_id,
                    stepExecutionId=job.step_execution_id,
                    retriesRemaining=job.retries_remaining,
                    variables=job.variables,
                    lockExpiresAt=job.lock_expires_at or expiry,
                )
                for job in jobs
            ]
        )

    async def complete_job(self, job_id: str, worker_id: str, variables: Any) -> None:
        try:
            await self.app.jobs.complete(job_id, worker_id, variables)
        except JobConflictError:
            if self.metrics is not None:
                self.metrics.job_conflicts.labels("complete").inc()
            raise

    async def fail_job(self, job_id: str, worker_id: str, message: str, retryable: bool) -> None:
        message = message or "the job failed (no message given)"
        try:
            await self.app.jobs.fail(job_id, worker_id, message, retryable=retryable)
        except JobConflictError:
            if self.metrics is not None:
                self.metrics.job_conflicts.labels("fail").inc()
            raise
