"""The REST server (``docs/rest.md``): an HTTP API over the store, wire-compatible with Rochallor.

Install the extra: ``pip install 'durable[server]'``; run it with ``durable serve``.

- ``_app``          the FastAPI application, health, metrics, the OpenAPI document
- ``_definitions``, ``_instances``, ``_jobs``  the ``/v1`` routes of each resource
- ``_models``       the wire shapes (pydantic);  ``_convert``  records to wire shapes
- ``_errors``       the error body of every failure;  ``_guard``  token, 415, size
- ``_cors``         CORS headers and preflights, as the Rochallor engine answers them
- ``_metrics``      Prometheus figures read from the database;  ``_serve``  uvicorn
- ``ui``            the web dashboard at ``/ui/`` (``docs/dashboard.md``)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._serve import serve

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..app import App


def create_app(
    app: App,
    *,
    token: str | None = None,
    metrics_max_age: float = 5.0,
    cors_origins: Sequence[str] | None = ("*",),
    read_only: bool = False,
) -> FastAPI:
    """The ASGI application serving the REST API over ``app``'s store.

    It runs no worker. If ``app`` is not open when the server starts (ASGI lifespan), it is
    opened then and closed at shutdown; an App opened by the caller stays the caller's.

    Args:
        app: The App whose store the server reads and writes.
        token: Require ``Authorization: Bearer <token>`` on every endpoint but
            ``/healthz``; default ``$DURABLE_API_TOKEN``; none means no auth.
        metrics_max_age: Seconds one read of the store answers ``/metrics`` for, so
            scrapes within that time (from several Prometheus servers, say) cost one
            read; 0 reads at every scrape.
        cors_origins: The origins browsers may call the API from (``"*"``: any, the
            default); None sends no CORS headers.
        read_only: Make the dashboard (``/ui/``) view-only; the ``/v1`` API is unchanged.

    Example::

        async with durable.App("sqlite:///durable.db") as app:
            api = durable.server.create_app(app, token="s3cret")
            # serve ``api`` with any ASGI server, or test it with httpx.ASGITransport
    """
    from ._app import build

    return build(
        app,
        token=token,
        worker=False,
        cors=cors_origins,
        metrics_max_age=metrics_max_age,
        read_only=read_only,
    )


__all__ = ["create_app", "serve"]
