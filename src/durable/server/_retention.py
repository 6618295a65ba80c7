"""Retention over REST: ``POST /v1/runs/prune`` deletes finished runs by age."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from ..app import App
from ._errors import responses
from ._models import PruneIn, PruneOut


def router(app: App) -> APIRouter:
    """The retention route, bound to ``app``."""
    api = APIRouter(prefix="/v1/runs", tags=["runs"])

    @api.post(
        "/prune",
        response_model=PruneOut,
        responses=responses(400, 415),
        summary="Delete the runs that finished longer ago than olderThanSeconds",
    )
    async def prune(body: PruneIn) -> PruneOut:
        count = await app.prune(
            timedelta(seconds=body.olderThanSeconds), body.status or None, dry_run=body.dryRun
        )
        return PruneOut(count=count, dryRun=body.dryRun)

    return api
