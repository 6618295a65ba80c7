"""The worker's liveness: its lock, dead peers taken over at once, leases by its own clock.

A worker holds a liveness lock for its whole life (``store.liveness_lock``): a session
advisory lock on Postgres, an OS file lock on SQLite. When a process dies its lock goes
with it, so a live peer that looks about once a second sees it free and takes the dead
worker's runs over at once (``store.take_over``), instead of waiting for their leases to
expire. A lock found free is taken over only if it is still free ``grace`` seconds later:
a worker whose connection was cut but whose process lives takes its lock again within
that time, and keeps its runs. When it cannot, its runs are taken over and the epoch
fencing refuses its late writes; meanwhile it claims nothing and starts no activity.

The lease stays the bound when no connection closes (a machine lost, a frozen process).
``Leases`` keeps each run's lease as this process knows it, by its own monotonic clock:
an activity attempt starts only while the lease has not passed and the liveness lock is
held; otherwise it waits for the next renewal, which either confirms the run or reports
it lost (and the run is unloaded). A process woken from SIGSTOP past its lease thus
starts nothing for a run another worker may hold by now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ..errors import ConfigurationError, DurableError
from ..store import Store

log = logging.getLogger("durable.worker")

CHECK_INTERVAL = 1.0
"""How often a live worker looks for dead peers, in seconds."""
GRACE = 0.5
"""How long a lock must stay free before its worker's runs are taken over, in seconds."""


class Leases:
    """The leases of the runs a worker holds, by this process's monotonic clock."""

    def __init__(self, seconds: float, renew_now: Callable[[], None]) -> None:
        self.seconds = seconds
        self.suspended = False
        """The liveness lock is lost: no lease counts until a renewal after regaining it."""
        self.generation = 0
        """Bumped when the lock is lost: a renewal sent before then confirms nothing."""
        self._renew_now = renew_now
        self._changed = asyncio.Event()
        self._runs: dict[str, RunLease] = {}

    def claimed(self, run_id: str, stamp: tuple[float, int] | None) -> RunLease:
        """The lease of a run claimed by a request stamped ``stamp`` (``renewal``)."""
        lease = RunLease(self, float("-inf"))
        if stamp is not None and stamp[1] == self.generation:
            lease.until = stamp[0] + self.seconds
        self._runs[run_id] = lease
        return lease

    def forget(self, run_id: str, lease: RunLease) -> None:
        if self._runs.get(run_id) is lease:
            del self._runs[run_id]

    def renewal(self) -> tuple[float, int] | None:
        """Stamp a claim or renewal about to be sent: (sent at, generation); None while
        suspended
        (what it answers must not confirm a lease a peer may be taking over)."""
        return None if self.suspended else (time.monotonic(), self.generation)

    def renewed(self, stamp: tuple[float, int] | None, run_ids: list[str]) -> None:
        """A renewal stamped ``stamp`` kept ``run_ids``."""
        if stamp is None or stamp[1] != self.generation or self.suspended:
            return
        until = stamp[0] + self.seconds
        for run_id in run_ids:
            lease = self._runs.get(run_id)
            if lease is not None:
                lease.until = max(lease.until, until)
        self.changed()

    def suspend(self) -> None:
        """The liveness lock is lost: every lease needs a renewal after it is regained."""
        self.suspended = True
        self.generation += 1
        for lease in self._runs.values():
            lease.until = float("-inf")

    def resume(self) -> None:
        self.suspended = False
        self._renew_now()

    def changed(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_changed(self) -> None:
        self._renew_now()
        await self._changed.wait()


class RunLease:
    """One run's lease as this process knows it (the executor's ``LeaseView``)."""

    def __init__(self, leases: Leases, until: float) -> None:
        self._leases = leases
        self.until = until
        """Monotonic time until which the lease surely holds (from the request's send)."""

    def valid(self) -> bool:
        return not self._leases.suspended and time.monotonic() < self.until

    async def wait_valid(self) -> None:
        while not self.valid():
            await self._leases.wait_changed()


class Liveness:
    """Holds a worker's liveness lock and takes over dead peers (see the module)."""

    def __init__(
        self,
        store: Store,
        worker_id: str,
        leases: Leases,
        *,
        check_interval: float = CHECK_INTERVAL,
        grace: float = GRACE,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.leases = leases
        self.check_interval = check_interval
        self.grace = grace
        self.lock = store.liveness_lock(worker_id)
        self._lost = asyncio.Event()
        self._held = asyncio.Event()
        self._retry_in = 0.0
        """While the lock cannot be taken again: seconds until the next try (backs off)."""

    @property
    def held(self) -> bool:
        return self._held.is_set()

    async def wait_held(self) -> None:
        await self._held.wait()

    async def start(self) -> None:
        """Take the lock; a worker id another live process holds is refused."""
        if not await self.lock.acquire(self._on_lost):
            raise ConfigurationError(
                f"worker id {self.worker_id!r} is in use by another live worker; give each"
                " worker a name of its own"
            )
        self._held.set()

    async def stop(self) -> None:
        self._held.clear()
        with contextlib.suppress(DurableError):
            await self.lock.release()

    def _on_lost(self) -> None:
        self._lost.set()

    async def run(self) -> None:
        """Every ``check_interval`` (or at once when the lock is lost): hold the lock,
        and take over the runs of peers whose lock stays free."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_interval):
                    await self._lost.wait()
            try:
                if not self.lock.held():
                    await self._retake()
                    continue
                dead = await self.lock.dead_peers()
                if dead:
                    await asyncio.sleep(self.grace)  # a live process takes its lock again
                    await self._take_over(dead)
            except DurableError as exc:
                log.warning("worker %s: liveness check failed: %s", self.worker_id, exc)
            except Exception:  # the loop must outlive any one failure
                log.exception("worker %s: liveness check failed", self.worker_id)

    async def _retake(self) -> None:
        self._lost.clear()
        if self.held:
            self._held.clear()
            self.leases.suspend()
            log.warning(
                "worker %s: liveness lock lost (its connection closed); claiming nothing and"
                " starting no activity until it holds the lock again",
                self.worker_id,
            )
        try:
            got = await self.lock.acquire(self._on_lost)
        except DurableError as exc:
            if not self._retry_in:  # once per outage, not at every try
                log.warning("worker %s: cannot take its liveness lock: %s", self.worker_id, exc)
            got = False
        if not got:
            self._retry_in = min(2.0, max(0.05, self._retry_in * 2))
            await asyncio.sleep(self._retry_in)
            self._lost.set()  # try again soon, not only at the next check
            return
        self._retry_in = 0.0
        self._held.set()
        self.leases.resume()
        log.warning("worker %s: liveness lock held again", self.worker_id)

    async def _take_over(self, dead: list[str]) -> None:
        taken = await self.store.take_over(dead)
        for worker_id, freed in taken.items():
            log.warning(
                "worker %s: worker %s died (its liveness lock is free); %d run(s) taken over",
                self.worker_id,
                worker_id,
                freed,
            )
