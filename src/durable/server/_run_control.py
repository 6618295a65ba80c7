"""Pause, resume, retry and fork over REST: one run (``POST /v1/runs/{id}/pause``) or
every run a filter matches (``POST /v1/runs/pause``), as ``Handle`` and ``App.bulk`` do."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from .._describe import run_query
from ..app import App
from ..info import RunFilter
from ._errors import VALIDATION_ERROR, ApiError, responses
from ._models import MAX_INT, BulkCancelOut, Name, Text
from ._run_views import RunOut, RunStatus, run_out

Action = Literal["pause", "resume", "retry"]


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class PauseIn(_Request):
    reason: Text | None = None


class ForkIn(_Request):
    at: Annotated[int, Field(ge=1, le=MAX_INT)] | Name | None = None
    """The first operation that runs again: a seq (code-first) or a step id (flows)."""
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    variables: dict[str, Any] | None = None
    id: Name | None = None


class BulkIn(_Request):
    status: RunStatus | None = None
    workflow: Name | None = None
    tags: dict[str, str] | None = None
    businessKey: Text | None = None
    queue: Name | None = None
    createdAfter: datetime | None = None
    createdBefore: datetime | None = None
    reason: Text | None = None
    """``pause`` only: why, shown in the runs' ``blockedOn``."""
    dryRun: bool = False


def router(app: App) -> APIRouter:
    """The control routes, bound to ``app``."""
    api = APIRouter(prefix="/v1/runs", tags=["runs"])

    @api.post(
        "/{run_id}/pause",
        response_model=RunOut,
        response_model_exclude_none=True,
        responses=responses(400, 404, 409, 415),
        summary="Pause a run: activities in flight finish, then nothing starts until resume",
    )
    async def pause(run_id: str, body: PauseIn | None = None) -> RunOut:
        handle = app.handle(run_id)
        await handle.pause(body.reason if body is not None else None)
        return run_out(await handle.describe(), one=True)

    @api.post(
        "/{run_id}/resume",
        response_model=RunOut,
        response_model_exclude_none=True,
        responses=responses(404, 409),
        summary="Resume a paused run where it stopped (a no-op for a run not paused)",
    )
    async def resume(run_id: str) -> RunOut:
        handle = app.handle(run_id)
        await handle.resume()
        return run_out(await handle.describe(), one=True)

    @api.post(
        "/{run_id}/retry",
        response_model=RunOut,
        response_model_exclude_none=True,
        responses=responses(404, 409),
        summary="Run a FAILED run again from where it failed, under the same id",
    )
    async def retry(run_id: str) -> RunOut:
        handle = app.handle(run_id)
        await handle.retry()
        return run_out(await handle.describe(), one=True)

    @api.post(
        "/{run_id}/fork",
        response_model=RunOut,
        response_model_exclude_none=True,
        status_code=201,
        responses=responses(400, 404, 409, 415),
        summary="Start a new run from a copy of this run's journal before `at`",
    )
    async def fork(run_id: str, body: ForkIn | None = None) -> RunOut:
        given = body or ForkIn()
        forked = await app.handle(run_id).fork(
            given.at, args=given.args, kwargs=given.kwargs, variables=given.variables, id=given.id
        )
        return run_out(await forked.describe(), one=True)

    for action in ("pause", "resume", "retry"):
        _bulk_route(api, app, action)
    return api


def _bulk_route(api: APIRouter, app: App, action: Action) -> None:
    @api.post(
        f"/{action}",
        response_model=BulkCancelOut,
        responses=responses(400, 415),
        summary=f"{action.title()} every run matching a filter (dryRun: only count them)",
        operation_id=f"bulk_{action}",
    )
    async def bulk(body: BulkIn) -> BulkCancelOut:
        fields = body.model_dump(exclude={"dryRun", "reason"}, exclude_none=True)
        if not fields:
            raise ApiError(
                400, VALIDATION_ERROR, f"name the runs to {action}: give at least one filter"
            )
        if body.reason is not None and action != "pause":
            raise ApiError(400, VALIDATION_ERROR, f"reason goes with pause only, not {action}")
        flt = RunFilter(
            status=body.status,
            workflow=body.workflow,
            tags=body.tags,
            business_key=body.businessKey,
            queue=body.queue,
            created_after=body.createdAfter,
            created_before=body.createdBefore,
        )
        if body.reason is not None:
            query = run_query(flt)
            count = await app.store.bulk_pause(query, reason=body.reason, dry_run=body.dryRun)
        else:
            count = await app.bulk(action, flt, dry_run=body.dryRun)
        return BulkCancelOut(count=count, dryRun=body.dryRun)
