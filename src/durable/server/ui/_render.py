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


SHORT = 80
"""JSON up to this wide stays on one line: breaking it up would not help reading."""


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def _indented(value: Any, depth: int) -> str:
    text = _compact(value)
    if len(text) + depth * 2 <= SHORT or not isinstance(value, dict | list) or not value:
        return text
    pad = "  " * (depth + 1)
    if isinstance(value, dict):
        items = [f"{pad}{_compact(str(k))}: {_indented(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
    items = [f"{pad}{_indented(v, depth + 1)}" for v in value]
    return "[\n" + ",\n".join(items) + "\n" + "  " * depth + "]"


def pretty(value: Any) -> str:
    """A value as JSON, indented where a part is wider than a line (the template escapes it).

    Each part is written by the C encoder (``indent=`` would use the slow one): a page of a
    thousand operations holds a thousand values.
    """
    try:
        return _indented(value, 0)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def stamp(value: datetime | None) -> str:
    """``2026-12-07 05:32:12`` in UTC (isoformat: strftime is slow for a thousand rows)."""
    return "" if value is None else value.astimezone(UTC).isoformat(sep=" ")[:19]


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
