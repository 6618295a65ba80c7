"""Structured logs: every line says which run, workflow and step it is about.

The runtime binds the fields of what it is executing with :func:`bind`; a filter stamps
them onto every log record made meanwhile (in that task, the tasks it starts and the
threads of sync activities: they all inherit the context). Code running inside a
workflow or an activity gets the fields even where nothing was bound, from the context
variables the runtime sets anyway. :func:`configure` (used by ``durable worker`` and
``durable serve``) installs one handler with a ``key=value`` or a JSON formatter.

Example::

    with _logging.bind(run_id=run.id, workflow=run.workflow):
        log.info("claimed")   # time=... level=INFO logger=... run_id=o-7 workflow=order msg=claimed
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from . import _current
from .errors import ConfigurationError

FIELDS = ("run_id", "workflow", "step")
"""The fields every record carries (None when unknown), in the order they are printed."""

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")

_bound: ContextVar[Mapping[str, Any] | None] = ContextVar("durable_log_fields", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=``. uvicorn
# adds ``color_message``, the message with ANSI colour codes: the plain one is printed.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
_PLAIN = re.compile(r"^[^\s\"=\\]+$")


def bind(**fields: Any) -> _Binding:
    """Add ``fields`` to every log record made inside the block (``None`` removes one).

    Bindings nest: an inner ``bind(step=...)`` keeps the outer ``run_id`` and
    ``workflow``. They follow the context: tasks created inside the block and
    ``anyio.to_thread`` calls inherit them.

    Example::

        with bind(run_id="o-7", workflow="order"):
            with bind(step="reserve", attempt=2):
                log.info("activity started")
    """
    return _Binding(fields)


class _Binding:
    """The block of one ``bind`` (a plain context manager: bound at every step)."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    def __enter__(self) -> None:
        merged = {**(_bound.get() or {}), **self._fields}
        self._token = _bound.set({k: v for k, v in merged.items() if v is not None})

    def __exit__(self, *exc: object) -> None:
        _bound.reset(self._token)


def current() -> dict[str, Any]:
    """The fields a record made here would carry (bound ones, else the runtime's own)."""
    fields: dict[str, Any] = {}
    activity = _current.activity_info.get()
    if activity is not None:
        fields.update(
            run_id=activity.run_id,
            workflow=activity.workflow,
            step=activity.activity,
            seq=activity.seq,
            attempt=activity.attempt,
        )
    else:
        host = _current.workflow_context.get()
        if host is not None:
            info = host.run_info()
            fields.update(run_id=info.run_id, workflow=info.workflow)
    fields.update(_bound.get() or {})
    return fields


class ContextFilter(logging.Filter):
    """Stamps ``run_id``, ``workflow``, ``step`` (and any other bound field) onto records.

    A field passed explicitly with ``extra=`` wins over the bound one.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current().items():
            if key not in record.__dict__:
                setattr(record, key, value)
        for key in FIELDS:
            if key not in record.__dict__:
                setattr(record, key, None)
        return True


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    """The record's fields beyond the standard ones, the three run fields first."""
    fields = {key: record.__dict__.get(key) for key in FIELDS}
    for key, value in record.__dict__.items():
        if key not in _STANDARD and key not in fields and not key.startswith("_"):
            fields[key] = value
    return fields


def iso_time(stamp: float) -> str:
    """Seconds since the epoch as the UTC time log lines carry (``...T12:00:00.000Z``)."""
    moment = datetime.fromtimestamp(stamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stamp(record: logging.LogRecord) -> str:
    return iso_time(record.created)


def _quote(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if _PLAIN.match(text):
        return text
    return json.dumps(text, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """``time=... level=INFO logger=durable.worker run_id=... workflow=... step=... msg=...``.

    Fields that are None are left out; values with spaces or quotes are quoted. A
    traceback follows on its own lines.
    """

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"time={_stamp(record)}", f"level={record.levelname}", f"logger={record.name}"]
        parts += [f"{k}={_quote(v)}" for k, v in _extra(record).items() if v is not None]
        parts.append(f"msg={_quote(record.getMessage())}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``run_id``, ``workflow``,
    ``step`` (null when unknown), any other bound or ``extra`` field, ``msg`` and, for an
    exception, ``exc_info`` (the formatted traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _stamp(record),
            "level": record.levelname,
            "logger": record.name,
            **_extra(record),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs (so a second call replaces it)."""


def configure(level: str = "INFO", fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Send log records of ``level`` and above to ``stream`` (stderr) as text or JSON lines.

    Calling it again replaces the handler it installed before; other handlers are kept.

    Raises:
        durable.ConfigurationError: an unknown level or format.
    """
    name = level.upper()
    if name not in LEVELS:
        raise ConfigurationError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ConfigurationError(f"unknown log format {fmt!r}: use text or json")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(name)
