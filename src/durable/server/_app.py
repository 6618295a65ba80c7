"""The FastAPI application: routes, error shapes, the guard, health, metrics, OpenAPI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response

from ..app import App
from ..errors import ConfigurationError, StoreError
from . import (
    _definitions,
    _errors,
    _instances,
    _jobs,
    _retention,
    _run_control,
    _run_views,
    _runs,
    _workers,
    ui,
)
from ._cors import ANY_ORIGIN, Cors
from ._engine import Engine
from ._guard import Guard
from ._metrics import MAX_AGE_SECONDS, Metrics
from ._models import DefinitionIn, ErrorOut, HealthOut

HEALTH_TIMEOUT_SECONDS = 5.0


def resolve_token(token: str | None) -> str | None:
    """The token to require: the argument, else ``$DURABLE_API_TOKEN``; empty means none."""
    return token or os.environ.get("DURABLE_API_TOKEN") or None


def build(
    app: App,
    *,
    token: str | None,
    worker: bool,
    cors: Sequence[str] | None = (ANY_ORIGIN,),
    metrics_max_age: float = MAX_AGE_SECONDS,
    grpc_port: int | None = None,
    grpc_host: str = "127.0.0.1",
    read_only: bool = False,
) -> FastAPI:
    """The server for ``app``; with ``worker`` it also runs an in-process worker. ``cors``
    are the origins browsers may call it from (``*``: any), None for no CORS headers. With
    ``grpc_port`` it also serves the gRPC API there while it runs (``docs/grpc.md``).
    The dashboard is served at ``/ui/``; ``read_only`` makes it view-only (the ``/v1`` API
    is unchanged by it)."""
    token = resolve_token(token)
    metrics = Metrics(now=app.clock.now, max_age=metrics_max_age)
    engine = Engine(app, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        opened = False
        try:
            app.store  # noqa: B018 - raises ConfigurationError when the App is not open
        except ConfigurationError:
            await app.open()
            opened = True
        runner = app.worker() if worker else None
        if runner is not None:
            await runner.start()
        grpc_server = None
        try:
            if grpc_port is not None:
                from ._grpc import start_grpc  # the grpc extra: imported only when asked

                grpc_server = await start_grpc(
                    app, engine, host=grpc_host, port=grpc_port, token=token
                )
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(grace=2.0)
            if runner is not None:
                await runner.stop()
            if opened:
                await app.close()

    api = FastAPI(
        title="durable",
        summary="Durable workflows over HTTP (wire-compatible with the Rochallor REST API)",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        strict_content_type=False,
        separate_input_output_schemas=False,
    )
    _errors.install(api)
    api.add_middleware(Guard, token=token)
    if cors is not None:  # added last, so outermost: a preflight never meets the guard
        api.add_middleware(Cors, origins=cors)
    api.include_router(_definitions.router(app))
    api.include_router(_instances.router(engine))
    api.include_router(_runs.router(app))
    api.include_router(_retention.router(app))
    api.include_router(_run_views.router(app))
    api.include_router(_run_control.router(app))
    api.include_router(_jobs.router(engine))
    api.include_router(_workers.router(app))
    ui.install(api, app, token=token, read_only=read_only)

    @api.get(
        "/healthz",
        response_model=HealthOut,
        responses={503: {"model": ErrorOut, "description": "The store does not answer"}},
        tags=["operations"],
        summary="200 when the store answers a query (no token needed)",
    )
    async def healthz() -> Any:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                await app.store.ping()
        except (StoreError, ConfigurationError, TimeoutError) as exc:
            body = _errors.error_body("STORE_UNAVAILABLE", f"the store does not answer: {exc}")
            return JSONResponse(body, status_code=503)
        return HealthOut(status="ok")

    @api.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            401: _errors.responses()[401],
        },
        tags=["operations"],
        summary="Fleet metrics in the Prometheus text format, read from the database",
    )
    async def metrics_endpoint() -> Response:
        body = await metrics.render(app.store)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = _document(api, token is not None)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api


_NAMES = {
    "CancelIn": "CancelRequest",
    "CompleteJobIn": "CompleteJobRequest",
    "CompleteUserTaskIn": "CompleteUserTaskRequest",
    "ErrorOut": "Error",
    "FailJobIn": "FailJobRequest",
    "HealthOut": "Health",
    "HistoryOut": "History",
    "InstanceOut": "Instance",
    "JobOut": "Job",
    "JobsOut": "JobList",
    "PollIn": "PollRequest",
    "ProblemOut": "Problem",
    "RetryStepIn": "RetryStepRequest",
    "StartInstanceIn": "StartInstanceRequest",
    "StepExecutionOut": "StepExecution",
    "StepIn": "Step",
    "StoredDefinitionOut": "StoredDefinition",
}
"""Schema names in the document (the Python classes say which way they go)."""


def _renamed(doc: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(doc)
    for old, new in _NAMES.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    renamed: dict[str, Any] = json.loads(text)
    schemas = renamed["components"]["schemas"]
    renamed["components"]["schemas"] = {_NAMES.get(k, k): v for k, v in schemas.items()}
    return renamed


def _document(api: FastAPI, with_token: bool) -> dict[str, Any]:
    """FastAPI's document, made to say what the server does: no 422s, the upload schema,
    plain schema names, and the bearer scheme when a token is required."""
    doc = get_openapi(
        title=api.title,
        version=api.version,
        summary=api.summary,
        routes=api.routes,
        separate_input_output_schemas=False,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    definition = DefinitionIn.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(definition.pop("$defs", {}))
    schemas["Definition"] = definition
    doc = _renamed(doc)
    if with_token:
        doc["components"]["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
        for route, path in doc.get("paths", {}).items():
            if route != "/healthz":
                for operation in path.values():
                    operation["security"] = [{"bearerAuth": []}]
    return doc
