"""``/v1/workers``: the worker registry (an extension of ours, not in the Rochallor API)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel

from ._errors import responses

if TYPE_CHECKING:
    from ..app import App
    from ..store import WorkerRecord


class ParamOut(BaseModel):
    name: str
    kind: str
    """An ``inspect.Parameter`` kind name: ``POSITIONAL_OR_KEYWORD``, ``KEYWORD_ONLY``..."""


class WorkerOut(BaseModel):
    id: str
    host: str
    pid: int
    queues: list[str]
    version: str
    startedAt: datetime
    heartbeatAt: datetime
    live: bool
    workflows: dict[str, list[ParamOut]]
    flows: bool


class WorkersOut(BaseModel):
    workers: list[WorkerOut]


def worker_out(worker: WorkerRecord) -> WorkerOut:
    return WorkerOut(
        id=worker.id,
        host=worker.host,
        pid=worker.pid,
        queues=list(worker.queues),
        version=worker.version,
        startedAt=datetime.fromtimestamp(worker.started_at, UTC),
        heartbeatAt=datetime.fromtimestamp(worker.heartbeat_at, UTC),
        live=worker.live,
        workflows={
            name: [ParamOut(name=p, kind=kind) for p, kind in params]
            for name, params in worker.workflows.items()
        },
        flows=worker.flows,
    )


def router(app: App) -> APIRouter:
    api = APIRouter(prefix="/v1/workers", tags=["workers"])

    @api.get(
        "",
        response_model=WorkersOut,
        responses=responses(),
        summary="The registered worker processes, live or dead (crashed), oldest first",
    )
    async def list_workers() -> WorkersOut:
        return WorkersOut(workers=[worker_out(w) for w in await app.store.list_workers()])

    return api
