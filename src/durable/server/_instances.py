"""``/v1/instances``: start, list, inspect and cancel flow runs; user tasks and signals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from ._engine import Engine
from ._errors import responses
from ._models import (
    MAX_INT,
    CancelIn,
    CompleteUserTaskIn,
    HistoryOut,
    InstanceOut,
    InstancePage,
    InstanceStatus,
    RetryStepIn,
    StartInstanceIn,
    Variables,
)


def router(engine: Engine) -> APIRouter:
    """The instance routes, answered by ``engine``."""
    api = APIRouter(prefix="/v1/instances", tags=["instances"])

    @api.post(
        "",
        status_code=201,
        response_model=InstanceOut,
        response_model_exclude_none=True,
        responses=responses(400, 404, 415),
        summary="Start an instance of a definition (its latest version unless one is asked)",
    )
    async def start_instance(body: StartInstanceIn) -> InstanceOut:
        return await engine.start_instance(
            body.definitionId,
            variables=body.variables,
            business_key=body.businessKey,
            version=body.definitionVersion,
            tags=body.tags,
        )

    @api.get(
        "",
        response_model=InstancePage,
        response_model_exclude_none=True,
        responses=responses(400),
        summary="Instances matching every filter given, newest first, a page at a time",
    )
    async def list_instances(
        definitionId: Annotated[str | None, Query(max_length=256)] = None,
        status: InstanceStatus | None = None,
        businessKey: Annotated[str | None, Query(max_length=1024)] = None,
        page: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
        pageSize: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> InstancePage:
        return await engine.list_instances(
            definition_id=definitionId,
            status=status,
            business_key=businessKey,
            page=page,
            page_size=pageSize,
        )

    @api.get(
        "/{instance_id}",
        response_model=InstanceOut,
        response_model_exclude_none=True,
        responses=responses(404),
        summary="One instance",
    )
    async def get_instance(instance_id: str) -> InstanceOut:
        return await engine.instance(instance_id)

    @api.get(
        "/{instance_id}/history",
        response_model=HistoryOut,
        response_model_exclude_none=True,
        responses=responses(404),
        summary="The instance's step executions, oldest first",
    )
    async def get_history(instance_id: str) -> HistoryOut:
        return await engine.history(instance_id)

    @api.post(
        "/{instance_id}/cancel",
        response_model=InstanceOut,
        response_model_exclude_none=True,
        responses=responses(400, 404, 409, 415),
        summary="Cancel an instance that has not finished",
    )
    async def cancel_instance(instance_id: str, body: CancelIn | None = None) -> InstanceOut:
        return await engine.cancel(instance_id, body.reason if body is not None else None)

    @api.post(
        "/{instance_id}/steps/{step_id}/retry",
        response_model=InstanceOut,
        response_model_exclude_none=True,
        responses=responses(400, 404, 409, 415),
        summary="Run the failed step of a FAILED instance again",
    )
    async def retry_step(
        instance_id: str, step_id: str, body: RetryStepIn | None = None
    ) -> InstanceOut:
        variables = body.variables if body is not None else None
        return await engine.retry_step(instance_id, step_id, variables)

    @api.post(
        "/{instance_id}/user-tasks/{step_id}/complete",
        status_code=204,
        response_class=Response,
        responses=responses(400, 404, 409, 415),
        summary="Complete a waiting user task, merging its variables",
    )
    async def complete_task(
        instance_id: str, step_id: str, body: CompleteUserTaskIn | None = None
    ) -> Response:
        variables: dict[str, Any] | None = None
        if body is not None and (body.result is not None or body.variables is not None):
            variables = {**(body.result or {}), **(body.variables or {})}
        await engine.complete_user_task(instance_id, step_id, variables)
        return Response(status_code=204)

    @api.post(
        "/{instance_id}/signals/{wait_step_id}",
        status_code=204,
        response_class=Response,
        responses=responses(400, 404, 409, 415),
        summary="Signal a WAIT step; the body (a variables map, may be empty) is merged in",
    )
    async def signal_wait_step(
        instance_id: str,
        wait_step_id: str,
        body: Annotated[Variables | None, Body()] = None,
    ) -> Response:
        await engine.signal_wait(instance_id, wait_step_id, body)
        return Response(status_code=204)

    return api
