"""``/v1/instances``: start, list, inspect and cancel flow runs; user tasks and signals."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from ..errors import RunClosedError
from ..flow._client import complete_user_task, variables_text
from ..info import Status
from ..store import RunRecord
from ..store._notify import run_topic
from ._convert import STORE_STATUSES, flow_run, instance_out, instances_out, state_of, step_out
from ._errors import CONFLICT, NOT_FOUND, ApiError, responses
from ._models import (
    MAX_INT,
    CancelIn,
    CompleteUserTaskIn,
    HistoryOut,
    InstanceOut,
    InstancePage,
    InstanceStatus,
    StartInstanceIn,
    Variables,
)

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("durable.server")

CANCEL_WAIT_SECONDS = 5.0
"""How long a cancel call waits for a worker to unwind the run before answering."""


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


def router(app: App) -> APIRouter:
    """The instance routes, bound to ``app``."""
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
        handle = await app.start_flow(
            body.definitionId,
            variables=body.variables,
            business_key=body.businessKey,
            version=body.definitionVersion,
            tags=body.tags,
        )
        run = await flow_run(app, handle.run_id)
        return instance_out(run, await state_of(app, run))

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
        runs, total = await app.store.list_flow_runs(
            definition_id=definitionId,
            statuses=None if status is None else STORE_STATUSES[status],
            business_key=businessKey,
            offset=page * pageSize,
            limit=pageSize,
        )
        return InstancePage(items=await instances_out(app, runs), total=total)

    @api.get(
        "/{instance_id}",
        response_model=InstanceOut,
        response_model_exclude_none=True,
        responses=responses(404),
        summary="One instance",
    )
    async def get_instance(instance_id: str) -> InstanceOut:
        run = await flow_run(app, instance_id)
        return instance_out(run, await state_of(app, run))

    @api.get(
        "/{instance_id}/history",
        response_model=HistoryOut,
        response_model_exclude_none=True,
        responses=responses(404),
        summary="The instance's step executions, oldest first",
    )
    async def get_history(instance_id: str) -> HistoryOut:
        run = await flow_run(app, instance_id)
        state = await state_of(app, run)
        return HistoryOut(items=[step_out(run.id, step) for step in state.steps])

    @api.post(
        "/{instance_id}/cancel",
        response_model=InstanceOut,
        response_model_exclude_none=True,
        responses=responses(400, 404, 409, 415),
        summary="Cancel an instance that has not finished",
    )
    async def cancel_instance(instance_id: str, body: CancelIn | None = None) -> InstanceOut:
        run = await flow_run(app, instance_id)
        if run.status.is_terminal:
            raise ApiError(409, CONFLICT, f"instance {instance_id!r} is already {run.status}")
        run = await app.store.request_cancel(instance_id)
        if run.status.is_terminal and run.status is not Status.CANCELLED:
            raise ApiError(409, CONFLICT, f"instance {instance_id!r} is already {run.status}")
        reason = body.reason if body is not None else None
        log.info("instance %s cancelled over REST%s", instance_id, f": {reason}" if reason else "")
        run = await _wait_until_ended(app, run, CANCEL_WAIT_SECONDS)
        out = instance_out(run, await state_of(app, run))
        # Cancelled for good: a worker unwinds it at its next durable await. Until then
        # GET shows it as it is.
        return out.model_copy(update={"status": "CANCELLED"})

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
        run = await flow_run(app, instance_id)
        step_type = await _step_type(app, run, step_id)
        if step_type is None:
            raise ApiError(404, NOT_FOUND, f"instance {instance_id!r} has no step {step_id!r}")
        if step_type != "USER_TASK":
            raise ApiError(
                409, CONFLICT, f"step {step_id!r} is a {step_type}, not a USER_TASK; use signals"
            )
        variables: dict[str, Any] | None = None
        if body is not None and (body.result is not None or body.variables is not None):
            variables = {**(body.result or {}), **(body.variables or {})}
        try:
            await complete_user_task(app.store, instance_id, step_id, variables)
        except RunClosedError as exc:
            raise ApiError(409, CONFLICT, str(exc)) from None
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
        run = await flow_run(app, instance_id)
        step_type = await _step_type(app, run, wait_step_id)
        if step_type != "WAIT":
            raise ApiError(
                404, NOT_FOUND, f"instance {instance_id!r} has no WAIT step {wait_step_id!r}"
            )
        state = await state_of(app, run)
        if run.status.is_terminal or wait_step_id not in state.current:
            raise ApiError(
                409,
                CONFLICT,
                f"instance {instance_id!r} is not waiting at step {wait_step_id!r} "
                f"(status {run.status})",
            )
        text = variables_text(body, f"signal {wait_step_id!r} of instance {instance_id!r}")
        try:
            await app.store.send_signal(instance_id, wait_step_id, text)
        except RunClosedError as exc:
            raise ApiError(409, CONFLICT, str(exc)) from None
        return Response(status_code=204)

    return api
