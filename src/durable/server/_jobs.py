"""``/v1/jobs``: external SERVICE_TASK workers poll for jobs, complete and fail them.

A poll answers at once, with whatever it could claim (possibly nothing): the Rochallor
API has no wait parameter, so its workers poll again on their own schedule.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from ._engine import Engine, jobs_to_hand_out
from ._errors import responses
from ._models import CompleteJobIn, FailJobIn, JobsOut, PollIn


def router(engine: Engine) -> APIRouter:
    """The job routes, answered by ``engine``."""
    api = APIRouter(prefix="/v1/jobs", tags=["jobs"])

    @api.post(
        "/poll",
        response_model=JobsOut,
        responses=responses(400, 415),
        summary="Claim up to maxJobs (at most 100; 0 or less: 10) queued jobs for leaseSeconds",
    )
    async def poll_jobs(body: PollIn) -> JobsOut:
        count = jobs_to_hand_out(body.maxJobs)
        return await engine.poll(body.workerId, body.jobTypes, count, body.leaseSeconds)

    @api.post(
        "/{job_id}/complete",
        status_code=204,
        response_class=Response,
        responses=responses(400, 404, 409, 415),
        summary="Complete a job this worker holds; its variables are merged into the instance",
    )
    async def complete_job(job_id: str, body: CompleteJobIn) -> Response:
        await engine.complete_job(job_id, body.workerId, body.variables)
        return Response(status_code=204)

    @api.post(
        "/{job_id}/fail",
        status_code=204,
        response_class=Response,
        responses=responses(400, 404, 409, 415),
        summary="Fail a job: re-queued while retryable with retries left, else the step fails",
    )
    async def fail_job(job_id: str, body: FailJobIn) -> Response:
        await engine.fail_job(job_id, body.workerId, body.errorMessage, body.retryable)
        return Response(status_code=204)

    return api
