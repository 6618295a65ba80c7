"""``/ui/``: the runs table (filters, counts per status, paging, live) and bulk actions."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from ...errors import DurableError, InvalidInputError
from ...handle import Handle
from ...info import RunDescription, RunFilter, RunPage, Status
from ._auth import Refused, actor, viewer
from ._filters import Fields
from ._render import render
from ._settings import PREFIX, Settings

if TYPE_CHECKING:
    from ...app import App

PAGE_SIZE = 50
ACTIONS = {"cancel": "Cancel", "pause": "Pause", "resume": "Resume", "retry": "Retry"}
"""Bulk actions: form value -> button label."""


def applies(action: str, run: RunDescription) -> bool:
    """Whether ``action`` changes ``run`` (what ``App.bulk`` counts, for one run)."""
    paused = run.status is Status.PAUSED or run.paused_reason is not None
    if action == "cancel":
        return not run.status.is_terminal and not run.cancel_requested
    if action == "pause":
        return not run.status.is_terminal and not paused
    if action == "resume":
        return not run.status.is_terminal and paused
    return run.status is Status.FAILED


async def act(handle: Handle[Any], action: str) -> None:
    """Do ``action`` to one run."""
    if action == "cancel":
        await handle.cancel()
    elif action == "pause":
        await handle.pause()
    elif action == "resume":
        await handle.resume()
    else:
        await handle.retry()


async def find(app: App, fields: Fields, cursor: str | None) -> RunPage:
    """The page of runs the fields select; Search is a run id, else a business key."""
    flt = fields.run_filter()
    search = fields.values["search"]
    if search:
        if await app.store.get_run(search) is not None:
            run = await app.handle(search).describe()
            return RunPage([run] if _matches(run, flt) else [], None)
        flt = replace(flt, business_key=search)
    return await app.list_runs(flt, limit=PAGE_SIZE, cursor=cursor)


def _matches(run: RunDescription, flt: RunFilter) -> bool:
    return (
        (flt.status is None or run.status == flt.status)
        and (flt.workflow is None or run.workflow == flt.workflow)
        and all(run.tags.get(k) == v for k, v in (flt.tags or {}).items())
        and (flt.created_after is None or run.created_at >= flt.created_after)
        and (flt.created_before is None or run.created_at < flt.created_before)
    )


async def counts(app: App, workflow: str | None) -> dict[str, int]:
    """Runs per status, of one workflow or of all."""
    found: Counter[str] = Counter({status.value: 0 for status in Status})
    for name, status, count in (await app.store.fleet_metrics()).runs:
        if workflow is None or name == workflow:
            found[status.value] += count
    return dict(found)


def router(app: App, settings: Settings) -> APIRouter:
    api = APIRouter(include_in_schema=False, dependencies=[viewer(settings)])
    acts = actor(settings)

    @api.get(f"{PREFIX}/")
    async def runs(request: Request, cursor: str = "") -> Response:
        fields = Fields.read(request.query_params)
        error = ""
        page = RunPage([], None)
        try:
            page = await find(app, fields, cursor or None)
        except InvalidInputError as exc:
            error = str(exc)
        return render(
            request,
            settings,
            "runs.html",
            title="Runs",
            fields=fields.values,
            query=fields.query(),
            page=page,
            cursor=cursor,
            error=error,
            counts=await counts(app, fields.values["workflow"] or None),
            statuses=[s.value for s in Status],
            actions=ACTIONS,
            live=not cursor,
        )

    @api.post(f"{PREFIX}/bulk")
    async def bulk(request: Request, form: FormData = acts) -> Response:
        action = str(form.get("action", ""))
        if action not in ACTIONS:
            raise Refused(400, f"unknown bulk action {action!r}")
        fields = Fields.read(form)
        every = form.get("scope") == "all"
        chosen = [str(v) for v in form.getlist("run")]
        if not every and not chosen:
            raise Refused(400, "select runs first, or tick 'All matching'")
        try:
            if form.get("confirmed") != "yes":
                count = await _apply(app, action, fields, chosen, every, dry_run=True)
                return render(
                    request,
                    settings,
                    "confirm.html",
                    title="Confirm",
                    action=action,
                    label=ACTIONS[action],
                    count=count,
                    every=every,
                    chosen=chosen,
                    fields=fields.values,
                    query=fields.query(),
                )
            count = await _apply(app, action, fields, chosen, every, dry_run=False)
        except InvalidInputError as exc:
            raise Refused(400, str(exc)) from None
        notice = f"{ACTIONS[action]}: {count} run{'s' if count != 1 else ''}"
        query = "&".join(q for q in (fields.query(), urlencode({"notice": notice})) if q)
        return RedirectResponse(f"{PREFIX}/?{query}", status_code=303)

    return api


async def _apply(
    app: App, action: str, fields: Fields, chosen: list[str], every: bool, *, dry_run: bool
) -> int:
    """Do ``action`` to the matching runs (or count those it would change)."""
    if every:
        if fields.values["search"]:
            chosen = [run.run_id for run in (await find(app, fields, None)).runs]
        else:
            return await app.bulk(action, fields.run_filter(), dry_run=dry_run)
    changed = 0
    for run_id in dict.fromkeys(chosen):
        handle = app.handle(run_id)
        try:
            if not applies(action, await handle.describe()):
                continue
            if not dry_run:
                await act(handle, action)
        except DurableError:  # gone, or changed meanwhile: not counted
            continue
        changed += 1
    return changed
