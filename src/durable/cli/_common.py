"""What every verb shares: the ``--dsn`` and ``--json`` options, opening the store,
parsing JSON arguments, and printing for people or scripts. A user's App is loaded by
``durable.app.load_app``, as the REST server loads it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Coroutine
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast
from urllib.parse import urlsplit

import typer

from ..app import App, load_app
from ..errors import ConfigurationError
from ..registry import Registry
from ..store import resolve_dsn

T = TypeVar("T")

EXIT_OK = 0
EXIT_ERROR = 1
"""A user error: not found, refused by the store, validation failed, unreachable database."""
EXIT_USAGE = 2
"""The command line or configuration is wrong: an unknown option, a missing argument,
malformed JSON, a DSN whose database, role or password the server refuses."""

Dsn = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        envvar="DURABLE_DSN",
        show_envvar=True,
        help="The store: sqlite:///path.db or postgresql://user@host/db "
        "(default: $DURABLE_DSN, else sqlite:///durable.db).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts (shapes: docs/cli.md).")]
AppTarget = Annotated[
    str | None,
    typer.Option(
        "--app",
        envvar="DURABLE_APP",
        show_envvar=True,
        help="Your App as module:attribute; used to check workflow arguments before "
        "the run is stored (and to pass them positionally).",
    ),
]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one verb's async body."""
    return asyncio.run(coroutine)


def usage(message: str) -> Exception:
    """A usage error (exit 2) that is not about one option's value."""
    # click's UsageError; typer does not re-export it (and ships its own copy of click).
    cls = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    return cast(Exception, cls(message))


def fail(message: str) -> typer.Exit:
    """Print one line to stderr; return the exit (code 1) to raise."""
    typer.echo(f"durable: {message}", err=True)
    return typer.Exit(EXIT_ERROR)


def _sqlite_path(dsn: str) -> str | None:
    parts = urlsplit(dsn)
    if parts.scheme.lower() != "sqlite":
        return None
    return parts.path[1:] if parts.path.startswith("/") else parts.path


@contextlib.asynccontextmanager
async def open_app(
    dsn: str | None, *, create: bool = False, registry: Registry | None = None
) -> AsyncIterator[App]:
    """An open App on ``dsn``.

    Verbs that only read or address existing runs pass ``create=False``: a SQLite file
    that does not exist is then an error instead of a new, empty database (a typo in
    ``--dsn`` should not look like "no runs").

    With ``$DURABLE_APP`` set, the App is the one it names, on ``dsn``: its payload codec
    decodes what the verb reads (without it, encoded values show as ``"encoded"``).
    """
    resolved = resolve_dsn(dsn)
    if not create:
        _check_exists(resolved, dsn is not None)
    target = os.environ.get("DURABLE_APP")
    app = load_app(target, dsn=resolved) if target else App(resolved, registry=registry)
    await open_or_exit(app)
    try:
        yield app
    finally:
        await app.close()


async def open_or_exit(app: App) -> None:
    """Open the App's store; a configuration error (a database, role or password the
    server refuses) ends the command with exit 2, as retrying or another verb cannot help."""
    try:
        await app.open()
    except ConfigurationError as exc:
        typer.echo(f"durable: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _check_exists(dsn: str, given: bool) -> None:
    path = _sqlite_path(dsn)
    if path and not Path(path).exists():
        source = "--dsn or $DURABLE_DSN" if given else "the default DSN"
        raise ConfigurationError(
            f"no database at {path!r} ({dsn!r}, from {source}); "
            "pass the store with --dsn or set DURABLE_DSN"
        )


def parse_json(text: str | None, what: str) -> Any:
    """The value of a JSON argument; malformed JSON is a usage error (exit 2)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise typer.BadParameter(f"not valid JSON ({detail}): {text!r}", param_hint=what) from None


def parse_object(text: str | None, what: str) -> dict[str, Any] | None:
    """A JSON argument that must be an object (a map of variables)."""
    value = parse_json(text, what)
    if value is not None and not isinstance(value, dict):
        raise typer.BadParameter(
            f"must be a JSON object, got {json_type(value)}: {text!r}", param_hint=what
        )
    return value


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number"}
    names |= {float: "a number", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def plain(value: Any) -> Any:
    """A dataclass, datetime or enum made JSON-compatible (recursively)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {key: plain(item) for key, item in asdict(value).items()}
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(plain(value), indent=2, ensure_ascii=False, default=str))


def compact(value: Any, width: int = 80) -> str:
    """A value as one line of JSON, cut to ``width`` characters."""
    text = json.dumps(plain(value), ensure_ascii=False, default=str, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def when(moment: datetime | None) -> str:
    """A time for people: UTC, to the millisecond."""
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
