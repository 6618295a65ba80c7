"""``/v1/jobs``: external SERVICE_TASK workers poll for jobs, complete and fail them.

A poll answers at once, with whatever it could claim (possibly nothing): the Rochallor
API has no wait parameter, so its workers poll again on their own schedule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fastapi import APIRouter, Response

from ..errors import JobConflictError
from ._convert import job_out
from ._errors import responses
from ._models import CompleteJobIn, FailJobIn, JobsOut, PollIn

if TYPE_CHECKING:
    from ..app import App
    from ._metrics import Metrics


def router(app: App, metrics: Metrics) -> APIRouter:
    """The job routes, bound to ``app``; late completions are counted in ``metrics``."""
    api = APIRouter(prefix="/v1/jobs", tags=["jobs"])

    @api.post(
        "/poll",
        response_model=JobsOut,
        responses=responses(400, 415),
        summary="Claim up to maxJobs queued jobs of these types for leaseSeconds",
    )
    async def poll_jobs(body: PollIn) -> JobsOut:
        expiry = datetime.now(UTC) + timedelta(seconds=body.leaseSeconds)
        jobs = await app.jobs.poll(
            body.workerId, body.jobTypes, max_jobs=body.maxJobs, lease_seconds=body.leaseSeconds
        )
        return JobsOut(jobs=[job_out(job, expiry) for job in jobs])

    @api.post(
        "/{job_id}/complete",
        status_code=204,
        response_class=Response,
        responses=responses(400, 404, 409, 415),
        summary="Complete a job this worker holds; its variables are merged into the instance",
    )
    async def complete_job(job_id: str, body: CompleteJobIn) -> Response:
        try:
            await app.jobs.complete(job_id, body.workerId, body.variables)
        except JobConflictError:
            metrics.job_conflicts.labels("complete").inc()
            raise
        return Response(status_code=204)

    @api.post(
        "/{job_id}/fail",
        status_code=204,
        response_class=Response,
        responses=responses(400, 404, 409, 415),
        summary="Fail a job: re-queued while retryable with retries left, else the step fails",
    )
    async def fail_job(job_id: str, body: FailJobIn) -> Response:
        message = body.errorMessage or "the job failed (no message given)"
        try:
            await app.jobs.fail(job_id, body.workerId, message, retryable=body.retryable)
        except JobConflictError:
            metrics.job_conflicts.labels("fail").inc()
            raise
        return Response(status_code=204)

    return api
