"""Workers: the claim loop, leases and heartbeats, graceful shutdown, worker metrics."""

from ._metrics import WorkerMetrics as WorkerMetrics
from ._worker import Worker as Worker

__all__ = ["Worker", "WorkerMetrics"]
