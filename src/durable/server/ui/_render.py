"""The Jinja2 environment (autoescaping everything), its filters, and the static files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ._settings import PREFIX

if TYPE_CHECKING:
    from fastapi import Request

    from ._settings import Settings

STATIC = {"app.js": "text/javascript", "login.js": "text/javascript", "style.css": "text/css"}
"""The files under ``static/``, served at ``/ui/static/<name>``."""


def pretty(value: Any) -> str:
    """A value as indented JSON (the template escapes it)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def stamp(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def span(value: timedelta | float | None) -> str:
    """A duration in the largest unit that keeps it readable: 850 ms, 4.2 s, 3 min 5 s."""
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{int(seconds // 86400)} d {int(seconds % 86400 // 3600)} h"


ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("durable.server.ui", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["pretty"] = pretty
ENV.filters["stamp"] = stamp
ENV.filters["span"] = span


def render(
    request: Request, settings: Settings, name: str, *, status: int = 200, **values: Any
) -> HTMLResponse:
    """Render template ``name`` with what every page needs (CSRF value, read-only, login)."""
    page = ENV.get_template(name).render(
        prefix=PREFIX,
        path=request.url.path,
        csrf=settings.csrf,
        read_only=settings.read_only,
        login=settings.token is not None,
        notice=request.query_params.get("notice", ""),
        **{"title": "Not done" if status >= 400 else "durable", **values},
    )
    return HTMLResponse(page, status_code=status, headers={"cache-control": "no-store"})


def router() -> APIRouter:
    """``/ui/static/<name>``: the stylesheet and scripts (no data: served without the token)."""
    api = APIRouter(include_in_schema=False)
    folder = resources.files("durable.server.ui") / "static"
    contents = {name: (folder / name).read_bytes() for name in STATIC}

    @api.get(f"{PREFIX}/static/{{name}}")
    async def static(name: str) -> Response:
        if name not in contents:
            return Response("no such file", status_code=404, media_type="text/plain")
        return Response(
            contents[name],
            media_type=STATIC[name],
            headers={"cache-control": "no-cache"},
        )

    return api
