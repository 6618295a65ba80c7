"""Workers: the claim loop, leases and heartbeats, graceful shutdown."""

from ._worker import Worker as Worker

__all__ = ["Worker"]
