"""The web dashboard (``docs/dashboard.md``): server-rendered pages at ``/ui/``.

- ``_settings``  what the pages need to know (token, read-only) and the security headers
- ``_auth``      the login page, the session cookie, CSRF, the gate of every page/action
- ``_render``    the Jinja2 environment, its filters, and the static files
- ``_runs``      the runs table, its filters and counts, bulk actions
- ``_run``       one run: status, timeline, graph, actions
- ``_timeline``  a run's journal as timeline rows;  ``_graph``  a flow drawn as SVG
- ``_admin``     definitions, schedules, queues and workers
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _admin, _auth, _render, _run, _runs
from ._settings import SecurityHeaders, Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ...app import App


def install(api: FastAPI, app: App, *, token: str | None, read_only: bool) -> None:
    """Serve the dashboard on ``api`` at ``/ui/`` (``/`` redirects there)."""
    settings = Settings.make(token=token, read_only=read_only)
    _auth.install(api, settings)
    api.include_router(_render.router())
    api.include_router(_runs.router(app, settings))
    api.include_router(_run.router(app, settings))
    api.include_router(_admin.router(app, settings))
    api.add_middleware(SecurityHeaders)


__all__ = ["install"]
