"""What a worker registers about itself in the store's worker registry."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from importlib import metadata

from ..registry import Registry
from ..store import WorkerInfo


def package_version() -> str:
    """The installed ``durable`` distribution's version ("unknown" when not installed)."""
    try:
        return metadata.version("durable")
    except metadata.PackageNotFoundError:
        return "unknown"


def worker_info(
    worker_id: str, registry: Registry, queues: Sequence[str], stale_after: float
) -> WorkerInfo:
    """This process as a registry row: its workflows' signatures (what ``durable start``
    checks names and arguments against) and the queues it claims from."""
    workflows = {
        name: tuple((p.name, p.kind.name) for p in wf.codec.signature.parameters.values())
        for name, wf in registry.workflows.items()
    }
    return WorkerInfo(
        id=worker_id,
        host=socket.gethostname(),
        pid=os.getpid(),
        queues=tuple(queues),
        version=package_version(),
        workflows=workflows,
        flows=True,  # every worker runs JSON flows (its FlowRunner)
        stale_after=stale_after,
    )
