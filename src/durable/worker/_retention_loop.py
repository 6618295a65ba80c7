"""Retention, worker side: the background sweep of ``App(retention=...)``.

Every worker of such an App runs :func:`retention_loop`, and one of them at a time
sweeps: the one holding the store's ``durable.retention`` lease (the others find it
taken and look again later). The holder deletes the runs that finished more than
``retention`` ago in small batches, each its own short transaction, pausing between
batches so the claims and commits of the workers never queue behind a long delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..errors import DurableError
from ..store import Store

log = logging.getLogger("durable.worker")

LEASE = "durable.retention"
"""The name of the lease the sweeping worker holds."""
BATCH = 100
"""Runs deleted per transaction."""
PAUSE = 0.05
"""Seconds between two batches of one sweep."""


def sweep_interval(retention: float) -> float:
    """Seconds between two sweeps: often enough that runs outlive ``retention`` by little
    (a tenth of it), at least every 10 s and at most every 5 min."""
    return max(10.0, min(300.0, retention / 10))


async def retention_loop(
    store: Store, worker_id: str, retention: float, *, interval: float | None = None
) -> None:
    """Sweep whenever this worker holds the lease; give it up when cancelled."""
    every = sweep_interval(retention) if interval is None else interval
    try:
        while True:
            try:
                if await store.take_lease(LEASE, worker_id, 3 * every):
                    await _sweep(store, worker_id, retention, every)
            except DurableError as exc:
                log.warning(
                    "worker %s: pruning old runs failed (%s); retrying later", worker_id, exc
                )
            await asyncio.sleep(every)
    finally:
        with contextlib.suppress(DurableError):
            await asyncio.shield(store.drop_lease(LEASE, worker_id))


async def _sweep(store: Store, worker_id: str, retention: float, every: float) -> None:
    total = 0
    while True:
        deleted = await store.prune_runs(retention, batch=BATCH, max_runs=BATCH)
        total += deleted
        if deleted < BATCH or not await store.take_lease(LEASE, worker_id, 3 * every):
            break
        await asyncio.sleep(PAUSE)
    if total:
        log.info(
            "worker %s: pruned %d run(s) that finished over %.0f s ago", worker_id, total, retention
        )
