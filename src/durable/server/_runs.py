"""Operations on many runs (code-first and flow runs alike): ``POST /v1/runs/cancel``."""

from __future__ import annotations

from fastapi import APIRouter

from ..app import App
from ..info import RunFilter
from ._errors import VALIDATION_ERROR, ApiError, responses
from ._models import BulkCancelIn, BulkCancelOut


def router(app: App) -> APIRouter:
    """The bulk routes, bound to ``app``."""
    api = APIRouter(prefix="/v1/runs", tags=["runs"])

    @api.post(
        "/cancel",
        response_model=BulkCancelOut,
        responses=responses(400, 415),
        summary="Cancel every open run matching a filter (dryRun: only count them)",
    )
    async def bulk_cancel(body: BulkCancelIn) -> BulkCancelOut:
        fields = body.model_dump(exclude={"dryRun"}, exclude_none=True)
        if not fields:
            raise ApiError(
                400, VALIDATION_ERROR, "name the runs to cancel: give at least one filter"
            )
        flt = RunFilter(
            status=body.status,
            workflow=body.workflow,
            tags=body.tags,
            business_key=body.businessKey,
            queue=body.queue,
            created_after=body.createdAfter,
            created_before=body.createdBefore,
        )
        count = await app.bulk("cancel", flt, dry_run=body.dryRun)
        return BulkCancelOut(count=count, dryRun=body.dryRun)

    return api
