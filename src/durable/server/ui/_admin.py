"""Definitions (list, graph, upload, start), schedules, queues and workers."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from ..._start import run_id_for
from ...errors import DurableError, NotFoundError, Problem, ValidationError
from ...flow import compile_definition
from ...info import Status
from ...store import RunQuery
from ._auth import Refused, actor, viewer
from ._forms import parse_json, run_url
from ._graph import draw
from ._render import render
from ._settings import PREFIX, Settings

if TYPE_CHECKING:
    from ...app import App

HELD_SCAN = 5000
"""At most this many RUNNING runs are read to count runs per queue and per worker."""


def router(app: App, settings: Settings) -> APIRouter:
    api = APIRouter(include_in_schema=False, dependencies=[viewer(settings)])
    acts = actor(settings)

    async def definitions_page(
        request: Request, problems: list[Problem] | None = None, error: str = ""
    ) -> Response:
        found, total = await app.definitions.list(limit=200)
        return render(
            request,
            settings,
            "definitions.html",
            title="Definitions",
            definitions=found,
            total=total,
            problems=problems or [],
            error=error,
            status=400 if problems or error else 200,
        )

    @api.get(f"{PREFIX}/definitions")
    async def definitions(request: Request) -> Response:
        return await definitions_page(request)

    @api.post(f"{PREFIX}/definitions")
    async def upload(request: Request, form: FormData = acts) -> Response:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            return await definitions_page(request, error="choose a definition file first")
        text = await file.read()
        try:
            document = json.loads(text)
        except ValueError as exc:
            return await definitions_page(request, error=f"{file.filename} is not JSON: {exc}")
        try:
            ref = await app.definitions.upload(document)
        except ValidationError as exc:
            return await definitions_page(request, problems=exc.problems)
        except DurableError as exc:
            return await definitions_page(request, error=str(exc))
        query = urlencode({"version": ref.version, "notice": f"Uploaded version {ref.version}"})
        target = f"{PREFIX}/definitions/{quote(ref.id, safe='')}?{query}"
        return RedirectResponse(target, status_code=303)

    @api.get(f"{PREFIX}/definitions/{{definition_id}}")
    async def definition(
        request: Request, definition_id: str, version: int | None = None
    ) -> Response:
        try:
            stored = await app.definitions.get(definition_id, version)
            latest = await app.definitions.get(definition_id)
        except NotFoundError as exc:
            return render(
                request, settings, "error.html", status=404, message=str(exc), title="Not found"
            )
        drawing = draw(compile_definition(stored.document), {})
        return render(
            request,
            settings,
            "definition.html",
            title=f"Definition {definition_id}",
            stored=stored,
            versions=range(latest.version, 0, -1),
            drawing=drawing,
        )

    @api.post(f"{PREFIX}/definitions/{{definition_id}}/start")
    async def start(definition_id: str, form: FormData = acts) -> Response:
        variables = parse_json(str(form.get("variables", "")), "Variables (JSON)", obj=True)
        version = str(form.get("version", "")).strip()
        key = str(form.get("business_key", "")).strip() or None
        try:
            handle = await app.start_flow(
                definition_id,
                variables=variables,
                business_key=key,
                version=int(version) if version.isdigit() else None,
            )
        except DurableError as exc:
            raise Refused(400, str(exc)) from None
        return RedirectResponse(run_url(handle.run_id, notice="Started"), status_code=303)

    @api.get(f"{PREFIX}/schedules")
    async def schedules(request: Request) -> Response:
        found = await app.schedules.list()
        last = {
            s.id: run_id_for(s.id, s.last_fire_at.timestamp())
            for s in found
            if s.last_fire_at is not None
        }
        return render(
            request, settings, "schedules.html", title="Schedules", schedules=found, last=last
        )

    @api.post(f"{PREFIX}/schedules/{{schedule_id}}/{{verb}}")
    async def schedule_action(schedule_id: str, verb: str, form: FormData = acts) -> Response:
        if verb not in ("pause", "resume"):
            raise Refused(404, f"no schedule action {verb!r}")
        try:
            if verb == "pause":
                await app.schedules.pause(schedule_id)
            else:
                await app.schedules.resume(schedule_id)
        except NotFoundError as exc:
            raise Refused(404, str(exc)) from None
        notice = urlencode(
            {"notice": f"{'Paused' if verb == 'pause' else 'Resumed'} {schedule_id}"}
        )
        return RedirectResponse(f"{PREFIX}/schedules?{notice}", status_code=303)

    @api.get(f"{PREFIX}/queues")
    async def queues(request: Request) -> Response:
        depths = await app.queues_depth()
        limits = await app.store.get_queues()
        running, _ = await _held(app)
        names = sorted({*depths, *limits, *running})
        return render(
            request,
            settings,
            "queues.html",
            title="Queues",
            names=names,
            depths=depths,
            limits=limits,
            running=running,
            scan=HELD_SCAN,
            live=True,
        )

    @api.get(f"{PREFIX}/workers")
    async def workers(request: Request) -> Response:
        found = await app.store.list_workers()
        _, held = await _held(app)
        return render(
            request,
            settings,
            "workers.html",
            title="Workers",
            workers=found,
            held=held,
            now=app.clock.now(),
            live=True,
        )

    return api


async def _held(app: App) -> tuple[Counter[str], Counter[str]]:
    """RUNNING runs per queue and per worker holding them."""
    runs = await app.store.list_runs(query=RunQuery(status=Status.RUNNING), limit=HELD_SCAN)
    return Counter(r.queue for r in runs), Counter(r.lease_owner for r in runs if r.lease_owner)
