"""``GET /v1/runs`` and ``GET /v1/runs/{id}``: runs of every kind, by filter and one by one.

An extension of ours beside the Rochallor endpoints: code-first runs and flow runs
alike, filtered as ``App.list_runs`` filters (tags, queue, times) and paged by cursor;
one run comes with its children and what it waits for (``blockedOn``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ..app import App
from ..info import BlockedOn, RunDescription, RunFilter
from ._errors import VALIDATION_ERROR, ApiError, responses

RunStatus = Literal["PENDING", "RUNNING", "WAITING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED"]


class BlockedOnOut(BaseModel):
    kind: str
    message: str
    since: datetime | None = None


class ForkedFromOut(BaseModel):
    runId: str
    at: int | str | None = None
    """A seq (code-first) or a step id (flows)."""


class RunOut(BaseModel):
    id: str
    workflow: str
    status: str
    createdAt: datetime
    updatedAt: datetime
    queue: str
    priority: int
    tags: dict[str, str]
    cancelRequested: bool
    businessKey: str | None = None
    flowVersion: int | None = None
    parentId: str | None = None
    children: list[str] | None = None
    """Only for one run (``GET /v1/runs/{id}``)."""
    result: Any = None
    error: dict[str, Any] | None = None
    parkedReason: str | None = None
    blockedOn: BlockedOnOut | None = None
    """Only for one open run (``GET /v1/runs/{id}``)."""
    pausedReason: str | None = None
    forkedFrom: ForkedFromOut | None = None


class RunsPage(BaseModel):
    runs: list[RunOut]
    nextCursor: str | None = None
    """Pass as ``cursor`` for the next page; absent after the last."""


def run_out(desc: RunDescription, *, one: bool = False) -> RunOut:
    return RunOut(
        id=desc.run_id,
        workflow=desc.workflow,
        status=str(desc.status),
        createdAt=desc.created_at,
        updatedAt=desc.updated_at,
        queue=desc.queue,
        priority=desc.priority,
        tags=desc.tags,
        cancelRequested=desc.cancel_requested,
        businessKey=desc.business_key,
        flowVersion=desc.flow_version,
        parentId=desc.parent_id,
        children=list(desc.children) if one else None,
        result=desc.result,
        error=desc.error,
        parkedReason=desc.parked_reason,
        blockedOn=_blocked(desc.blocked_on),
        pausedReason=desc.paused_reason,
        forkedFrom=None
        if desc.forked_from is None
        else ForkedFromOut(runId=desc.forked_from[0], at=desc.forked_from[1]),
    )


def _blocked(blocked: BlockedOn | None) -> BlockedOnOut | None:
    if blocked is None:
        return None
    return BlockedOnOut(kind=blocked.kind, message=blocked.message, since=blocked.since)


def _tags(values: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise ApiError(
                400, VALIDATION_ERROR, f"query.tag: expected KEY=VALUE, got {value[:80]!r}"
            )
        tags[key] = text
    return tags


def router(app: App) -> APIRouter:
    """The run views, bound to ``app``."""
    api = APIRouter(prefix="/v1/runs", tags=["runs"])

    @api.get(
        "",
        response_model=RunsPage,
        response_model_exclude_none=True,
        responses=responses(400),
        summary="Runs matching every filter given, newest first, a page at a time",
    )
    async def list_runs(
        status: RunStatus | None = None,
        workflow: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
        tag: Annotated[list[str] | None, Query(max_length=1024)] = None,
        businessKey: Annotated[str | None, Query(max_length=1024)] = None,
        queue: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
        createdAfter: datetime | None = None,
        createdBefore: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> RunsPage:
        flt = RunFilter(
            status=status,
            workflow=workflow,
            tags=_tags(tag or []),
            business_key=businessKey,
            queue=queue,
            created_after=createdAfter,
            created_before=createdBefore,
        )
        page = await app.list_runs(flt, limit=limit, cursor=cursor)
        return RunsPage(runs=[run_out(d) for d in page.runs], nextCursor=page.next_cursor)

    @api.get(
        "/{run_id}",
        response_model=RunOut,
        response_model_exclude_none=True,
        responses=responses(404),
        summary="One run, with its children and what it waits for (blockedOn)",
    )
    async def get_run(run_id: str) -> RunOut:
        return run_out(await app.handle(run_id).describe(), one=True)

    return api
