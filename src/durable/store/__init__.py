"""Persistence: the Store protocol (``base``), SQLite (``sqlite``) and Postgres backends.

Nothing outside this package writes SQL. ``open_store`` picks the backend from the DSN's
scheme and imports it lazily.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigurationError
from .base import Store

DEFAULT_DSN = "sqlite:///durable.db"


def resolve_dsn(dsn: str | None) -> str:
    """The DSN to use: the argument, else ``$DURABLE_DSN``, else ``durable.db`` here."""
    return dsn or os.environ.get("DURABLE_DSN") or DEFAULT_DSN


def open_store(dsn: str) -> Store:
    """A (not yet opened) store for a DSN.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (add
    ``?synchronous=normal`` to trade power-loss durability for speed), or
    ``postgresql://user@host:port/database`` (add ``?schema=name`` to use a schema other
    than ``durable``).
    """
    parts = urlsplit(dsn)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ConfigurationError(f"the SQLite DSN {dsn!r} names no file")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ConfigurationError(f"unknown SQLite DSN option(s): {', '.join(sorted(unknown))}")
        return SqliteStore(path, synchronous=options.get("synchronous", "FULL"))
    if scheme in ("postgres", "postgresql"):
        from .postgres import PostgresStore

        return PostgresStore(dsn)
    raise ConfigurationError(
        f"unsupported DSN {dsn!r}: use sqlite:///path.db or postgresql://host/database"
    )


__all__ = ["DEFAULT_DSN", "Store", "open_store", "resolve_dsn"]
