"""Plumbing shared by the benchmark's parts: configurations, results, process tools.

Every measurement runs in a child process of its own (``child.py``): the durable side and
the DBOS side never share an interpreter, a connection pool or a heap, and DBOS (a
process-wide singleton) is configured once per process.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
DEFAULT_DSN = "postgresql://root@127.0.0.1:5432/test"

Config = dict[str, Any]
"""What a child gets: ``store``, ``dsn`` (durable), ``dbos_url``, ``dbos_schema``,
``base_dsn`` (the Postgres server, no schema), ``n``, ``tmp``, ``quick``."""


def emit(result: dict[str, Any]) -> None:
    """Hand a child's result to the parent (one line on stdout)."""
    print("RESULT " + json.dumps(result), flush=True)


def with_schema(dsn: str, schema: str) -> str:
    """``dsn`` with its ``schema`` option set (durable's Postgres store reads it)."""
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"] + [("schema", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def plain_dsn(dsn: str) -> str:
    """``dsn`` without durable's ``schema`` option (for asyncpg and DBOS)."""
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process (this one by default), in MiB."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def wait_for_file(path: Path, timeout: float) -> None:
    """Block until ``path`` exists (a subprocess says it is ready)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a benchmark subprocess: the benchmarks folder importable."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}
