"""``/ui/runs/{id}``: one run's status, timeline, graph and data, and the actions on it."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from ...errors import DurableError, InvalidInputError, NotFoundError
from ...flow import compile_definition
from ...info import RunDescription, Status, StepExecution
from ...store import RunRecord
from ._auth import Refused, actor, viewer
from ._fork import fork, fork_points, origin_of
from ._forms import parse_json, run_url, stored_args
from ._graph import Drawing, draw
from ._render import render
from ._settings import PREFIX, Settings
from ._timeline import rows

if TYPE_CHECKING:
    from ...app import App


CONTROLS = {
    "pause": "Asked the run to pause",
    "resume": "Resumed the run",
    "retry": "Retrying the run from where it failed",
}


BLOCKED_REFRESH = 10.0
"""Seconds a run page's ETag holds at most: what a run waits for also depends on things
outside its row (the live workers, a queue's limits, the time left)."""


def version_tag(record: RunRecord, now: float) -> str:
    """An ETag of what the run page shows: every commit, signal, cancel, pause or tag
    change touches the run's row, so the row (and a time slot of ``BLOCKED_REFRESH``)
    says whether the page changed: a live page's poll is then one read."""
    parts = (
        int(now // BLOCKED_REFRESH),
        record.updated_at,
        record.status,
        record.epoch,
        record.mailbox_version,
        record.cancel_requested,
        record.paused_reason,
        sorted((record.tags or {}).items()),
    )
    return '"' + hashlib.sha256(repr(parts).encode()).hexdigest()[:24] + '"'


def latest(steps: list[StepExecution]) -> dict[str, str]:
    """The status of each step's latest execution."""
    return {step.step_id: step.status for step in steps}


async def _flow(
    app: App, run: RunDescription, steps: list[StepExecution]
) -> tuple[Drawing, set[str]]:
    """The run's definition drawn with its step statuses, and its waiting user tasks."""
    stored = await app.definitions.get(run.workflow, run.flow_version)
    graph = compile_definition(stored.document)
    tasks = {
        step
        for step in run.current_steps
        if step in graph.nodes and graph.nodes[step].type == "USER_TASK"
    }
    return draw(graph, latest(steps)), tasks


def router(app: App, settings: Settings) -> APIRouter:
    api = APIRouter(include_in_schema=False, dependencies=[viewer(settings)])
    acts = actor(settings)

    @api.get(f"{PREFIX}/runs/{{run_id}}")
    async def run_page(request: Request, run_id: str, step: str = "") -> Response:
        handle = app.handle(run_id)
        record = await app.store.get_run(run_id)
        if record is None:
            message = f"no run {run_id!r}"
            return render(
                request, settings, "error.html", status=404, message=message, title="Not found"
            )
        tag = version_tag(record, app.clock.now())
        if request.headers.get("if-none-match") == tag:  # a poll, and nothing changed
            return Response(status_code=304, headers={"etag": tag, "cache-control": "no-store"})
        missing = ""
        try:  # independent reads, made at once (a pool on Postgres answers them in parallel)
            async with asyncio.TaskGroup() as group:
                described = group.create_task(handle.describe())
                journal = group.create_task(handle.history())
                executions = group.create_task(handle.steps())
        except* NotFoundError as gone:  # deleted meanwhile
            missing = str(gone.exceptions[0])
        if missing:
            return render(
                request, settings, "error.html", status=404, message=missing, title="Not found"
            )
        run, history, steps = described.result(), journal.result(), executions.result()
        now = app.clock.now()
        drawing: Drawing | None = None
        tasks: set[str] = set()
        if run.flow_version is not None:
            try:
                drawing, tasks = await _flow(app, run, steps)
            except DurableError:
                drawing = None
        timeline = rows(history, run.created_at, _now(run, now))
        args = stored_args(record.args)
        page = render(
            request,
            settings,
            "run.html",
            title=f"Run {run_id}",
            run=run,
            args=args,
            origin=await origin_of(app, run, args, history),
            points=fork_points(run, steps, history),
            timeline=timeline,
            drawing=drawing,
            tasks=sorted(tasks),
            steps=steps,
            chosen=step,
            paused=run.status is Status.PAUSED or run.paused_reason is not None,
            live=not run.status.is_terminal,
            etag=tag,
        )
        page.headers["etag"] = tag
        return page

    @api.post(f"{PREFIX}/runs/{{run_id}}/signal")
    async def signal(run_id: str, form: FormData = acts) -> Response:
        name = str(form.get("name", "")).strip()
        if not name:
            raise Refused(400, "Signal name is required")
        payload = parse_json(str(form.get("payload", "")), "Payload (JSON)")
        await _do(app.handle(run_id).signal(name, payload))
        return RedirectResponse(run_url(run_id, notice=f"Sent signal {name!r}"), status_code=303)

    @api.post(f"{PREFIX}/runs/{{run_id}}/cancel")
    async def cancel(run_id: str, form: FormData = acts) -> Response:
        await _do(app.handle(run_id).cancel())
        return RedirectResponse(run_url(run_id, notice="Asked the run to cancel"), status_code=303)

    @api.post(f"{PREFIX}/runs/{{run_id}}/fork")
    async def fork_run(run_id: str, form: FormData = acts) -> Response:
        handle = app.handle(run_id)
        run = await _do(handle.describe())
        forked = await fork(handle, run, form)
        return RedirectResponse(
            run_url(forked.run_id, notice=f"Forked from {run_id}"), status_code=303
        )

    @api.post(f"{PREFIX}/runs/{{run_id}}/complete")
    async def complete(run_id: str, form: FormData = acts) -> Response:
        step = str(form.get("step", "")).strip()
        variables = parse_json(str(form.get("variables", "")), "Variables (JSON)", obj=True)
        await _do(app.handle(run_id).complete_user_task(step, variables))
        return RedirectResponse(run_url(run_id, notice=f"Completed task {step!r}"), status_code=303)

    @api.post(f"{PREFIX}/runs/{{run_id}}/{{verb}}")
    async def control(run_id: str, verb: str, form: FormData = acts) -> Response:
        if verb not in CONTROLS:
            raise Refused(404, f"no run action {verb!r}")
        handle = app.handle(run_id)
        if verb == "pause":
            reason = str(form.get("reason", "")).strip() or None
            await _do(handle.pause(reason))
        else:
            await _do(handle.resume() if verb == "resume" else handle.retry())
        return RedirectResponse(run_url(run_id, notice=CONTROLS[verb]), status_code=303)

    return api


async def _do(operation: Any) -> Any:
    """Await an operation; a refusal of the library becomes a page naming the reason."""
    try:
        return await operation
    except NotFoundError as exc:
        raise Refused(404, str(exc)) from None
    except InvalidInputError as exc:
        raise Refused(400, str(exc)) from None
    except DurableError as exc:
        raise Refused(409, str(exc)) from None


def _now(run: RunDescription, now: float) -> datetime:
    return (
        run.updated_at
        if run.status.is_terminal
        else max(datetime.fromtimestamp(now, UTC), run.updated_at)
    )
