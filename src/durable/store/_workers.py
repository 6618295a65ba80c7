"""Worker registry records: what a running worker tells the store about itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Params = tuple[tuple[str, str], ...]
"""A workflow's parameters as ``(name, kind)``, the kind an ``inspect.Parameter`` kind
name (``POSITIONAL_OR_KEYWORD``, ``KEYWORD_ONLY``, ``VAR_KEYWORD``, ...)."""


@dataclass(frozen=True)
class WorkerInfo:
    """A worker as it registers: who it is, what it serves and knows."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    version: str
    workflows: dict[str, Params] = field(default_factory=dict)
    flows: bool = True
    """Whether it runs JSON flows."""
    stale_after: float = 30.0
    """Seconds without a heartbeat after which the worker counts as dead."""

    def known(self) -> str:
        """The ``workflows`` column: the signatures and whether flows are served."""
        sigs = {name: [list(p) for p in params] for name, params in self.workflows.items()}
        return json.dumps({"workflows": sigs, "flows": self.flows}, sort_keys=True)


@dataclass(frozen=True)
class WorkerRecord(WorkerInfo):
    """A registered worker, with its times (store clock) and whether it is live."""

    started_at: float = 0.0
    heartbeat_at: float = 0.0
    live: bool = False


WORKER_COLUMNS = "id, host, pid, queues, version, workflows, stale_after, started_at, heartbeat_at"


def worker_from_row(row: Any, live: bool) -> WorkerRecord:
    """A record from a row of ``WORKER_COLUMNS``."""
    known = json.loads(row[5])
    return WorkerRecord(
        id=row[0],
        host=row[1],
        pid=row[2],
        queues=tuple(json.loads(row[3])),
        version=row[4],
        workflows={
            name: tuple((str(p[0]), str(p[1])) for p in params)
            for name, params in known.get("workflows", {}).items()
        },
        flows=bool(known.get("flows", False)),
        stale_after=row[6],
        started_at=row[7],
        heartbeat_at=row[8],
        live=live,
    )


class LivenessLock(Protocol):
    """A lock a worker holds for its whole life: whoever finds it free knows the worker's
    process died (or, on Postgres, lost its connection), without waiting for a lease.

    On Postgres it is a session advisory lock keyed by the worker's id, on a connection
    of its own; the server lets it go the moment that connection closes (the kernel
    closes a dead process's socket). On SQLite it is an OS file lock (``flock``) on a
    file beside the database file, let go by the kernel when the process dies.
    """

    async def acquire(self, on_lost: Callable[[], None]) -> bool:
        """Take the lock (connecting again first if its connection closed); False when
        someone else holds it now (a peer taking this worker over, or another process
        registered under the same id). ``on_lost`` is called when the lock is lost."""

    def held(self) -> bool:
        """Whether this process holds the lock as far as it knows."""

    async def dead_peers(self) -> list[str]:
        """The registered workers other than this one whose lock nobody holds: one cheap
        query, no per-run work. Raises StoreError when the lock's connection broke."""

    async def release(self) -> None:
        """Let the lock go (a clean stop); no error if it is not held."""
