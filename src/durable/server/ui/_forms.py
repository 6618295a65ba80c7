"""What the dashboard's forms and links share: JSON fields read with the field named on
error, a run's stored arguments, a run's address."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from ._auth import Refused
from ._settings import PREFIX


def parse_json(text: str, label: str, *, default: Any = None, obj: bool = False) -> Any:
    """A form field's JSON, or a 400 naming the field."""
    if not text.strip():
        return default
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise Refused(400, f"{label} is not valid JSON: {exc}") from None
    if obj and not isinstance(value, dict):
        raise Refused(400, f"{label} must be a JSON object, got {text.strip()[:80]!r}")
    return value


def run_url(run_id: str, **query: str) -> str:
    tail = f"?{urlencode(query)}" if query else ""
    return f"{PREFIX}/runs/{quote(run_id, safe='')}{tail}"


def stored_args(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
