"""Queues in the worker: which runs it may claim, and slots for activities of limited queues.

``ServedQueues`` turns the worker's queues, their stored limits and the runs it holds into
the per-queue caps of a claim. ``QueueLimiter`` makes an activity attempt wait for a slot
of its queue: the queue's per-worker limit is an asyncio semaphore; its global limit and
its rate limit are rows of ``queue_slots`` taken with one statement each (see the store), so
any number of processes share them. A held concurrency slot is a lease, renewed while
the attempt runs and freed when it ends; a process that dies frees its slots when their
leases expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigurationError, DurableError
from ..queues import DEFAULT_QUEUE, Queue, check_name
from ..store import QueueClaim, SlotGrant
from ..store._notify import queue_topic

if TYPE_CHECKING:
    from .._services import Services

log = logging.getLogger("durable.worker")

CONCURRENCY = "concurrency"
RATE = "rate"


def served_queues(
    services: Services, queues: Sequence[str | Queue] | None
) -> tuple[list[str], dict[str, Queue]]:
    """The names of the queues a worker serves, and the declarations it stores at start.

    By default a worker serves ``"default"``, every queue declared on the App and every
    queue a registered workflow names. It stores the App's declarations and those of
    the ``Queue`` objects it was given.
    """
    declared = dict(services.queues)
    if queues is None:
        homes = {wf.queue for wf in services.registry.workflows.values() if wf.queue is not None}
        return sorted({DEFAULT_QUEUE, *declared, *homes}), declared
    if isinstance(queues, str | Queue) or not queues:
        raise ConfigurationError(
            f"queues must be a non-empty list of queue names or durable.Queue objects,"
            f" got {queues!r}"
        )
    names = []
    for queue in queues:
        if not isinstance(queue, Queue):
            names.append(check_name(queue, "a queue served by the worker"))
            continue
        known = declared.setdefault(queue.name, queue)
        if known != queue:
            raise ConfigurationError(
                f"queue {queue.name!r} is given to the worker with other limits than the"
                f" App declares ({known}); declare each queue once"
            )
        names.append(queue.name)
    return list(dict.fromkeys(names)), declared


class ServedQueues:
    """The queues a worker claims runs from, their stored limits, and its runs in each."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(dict.fromkeys(names))
        self.limits: dict[str, Queue] = {}
        """The stored declaration of each queue that has one (refreshed by heartbeat)."""
        self.held: Counter[str] = Counter()

    def claims(self, batch: int) -> list[QueueClaim]:
        """The queues a claim of up to ``batch`` runs may take from now, with their caps."""
        found = []
        for name in self.names:
            queue = self.limits.get(name)
            cap = batch
            if queue is not None and queue.worker_concurrency is not None:
                cap = min(cap, queue.worker_concurrency - self.held[name])
            if cap > 0:
                found.append(QueueClaim(name, cap, queue is not None and queue.limited))
        return found

    def limited(self, name: str) -> bool:
        queue = self.limits.get(name)
        return queue is not None and queue.limited


class QueueLimiter:
    """Holds activity attempts to the limits of their queues, across every worker.

    ``slot(name)`` is an async context manager: it waits until the queue has room under
    its ``worker_concurrency`` (in this worker), its global ``concurrency`` and its
    ``rate_limit`` (across all workers), and holds the room until the block ends. A
    queue without limits, or None, costs nothing.

    Example::

        async with worker.limiter.slot(activity.queue):
            result = await run_one_attempt()
    """

    def __init__(
        self,
        services: Services,
        holder: str,
        *,
        hold_seconds: float = 30.0,
        poll_interval: float = 1.0,
    ) -> None:
        self.services = services
        self.holder = holder
        self.hold_seconds = hold_seconds
        """How long a concurrency slot stays held without renewal (renewed every third)."""
        self.poll_interval = poll_interval
        self._limits: dict[str, Queue | None] = {}
        self._semaphores: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._held: dict[str, str] = {}  # token -> queue
        self._renewer: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    def update(self, stored: Mapping[str, Queue]) -> None:
        """Take the stored declarations of queues (names missing from it are looked up)."""
        self._limits = dict(stored)

    async def limits(self, name: str) -> Queue | None:
        """The limits of a queue: stored, else declared on the App, else none."""
        if name not in self._limits:
            try:
                stored = await self.services.store.get_queues([name])
            except DurableError as exc:  # the attempt must not fail for it: ask again later
                log.warning("queue %s: reading its limits failed (%s)", name, exc)
                return self.services.queues.get(name)
            self._limits[name] = stored.get(name) or self.services.queues.get(name)
        return self._limits[name]

    @contextlib.asynccontextmanager
    async def slot(self, queue_name: str | None) -> AsyncIterator[None]:
        """Wait for room in ``queue_name`` and hold it for the block (see the class)."""
        queue = None if queue_name is None else await self.limits(queue_name)
        if queue is None or not queue.has_limits:
            yield
            return
        async with contextlib.AsyncExitStack() as stack:
            if queue.worker_concurrency is not None:
                local = self._semaphore(queue.name, queue.worker_concurrency)
                await stack.enter_async_context(local)
            if queue.concurrency is not None:
                token = await self._acquire(queue.name, CONCURRENCY, queue.concurrency)
                stack.push_async_callback(self._release, queue.name, token)
            if queue.rate_limit is not None:
                count, period = queue.rate_limit
                await self._acquire(queue.name, RATE, count, period)
            yield

    async def close(self) -> None:
        """Stop renewing (the slots still held lapse with their leases)."""
        tasks = [t for t in (self._renewer, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._renewer = None

    def _semaphore(self, name: str, size: int) -> asyncio.Semaphore:
        key = (name, size)  # a new declaration gets a new semaphore
        if key not in self._semaphores:
            self._semaphores[key] = asyncio.Semaphore(size)
        return self._semaphores[key]

    async def _acquire(self, name: str, kind: str, slots: int, hold: float | None = None) -> str:
        """Take one of ``slots`` slots of ``(name, kind)``, waiting as long as it takes."""
        store = self.services.store
        seconds = self.hold_seconds if hold is None else hold
        with store.subscribe(queue_topic(name)) as freed:
            while True:
                freed.clear()
                call = store.acquire_queue_slot(name, kind, slots, self.holder, seconds)
                task = asyncio.ensure_future(call)
                try:
                    grant = await asyncio.shield(task)
                except asyncio.CancelledError:
                    # the UPDATE may still take a slot: hand it back once it has
                    task.add_done_callback(lambda t: self._release_late(name, kind, t))
                    raise
                except DurableError as exc:
                    log.warning("queue %s: taking a slot failed (%s); retrying", name, exc)
                    await asyncio.sleep(self.poll_interval)
                    continue
                if grant.token is not None:
                    if kind == CONCURRENCY:
                        self._held[grant.token] = name
                        self._renew_soon()
                    return grant.token
                wait = self.poll_interval
                if grant.retry_at is not None:  # a slot frees (or expires) then
                    wait = min(wait, max(0.005, grant.retry_at - self.services.clock.now()))
                await freed.wait(wait)

    def _release_late(self, name: str, kind: str, task: asyncio.Future[SlotGrant]) -> None:
        if kind != CONCURRENCY or task.cancelled() or task.exception() is not None:
            return
        token = task.result().token
        if token is not None:
            late = asyncio.ensure_future(self._release(name, token))
            self._background.add(late)
            late.add_done_callback(self._background.discard)

    async def _release(self, name: str, token: str) -> None:
        self._held.pop(token, None)
        try:
            await asyncio.shield(self.services.store.release_queue_slot(name, token))
        except DurableError as exc:
            log.warning("queue %s: freeing a slot failed (%s); it frees at expiry", name, exc)

    def _renew_soon(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew(), name="durable-queue-slots")

    async def _renew(self) -> None:
        """Extend the held slots every third of their hold, until none is held."""
        while self._held:
            await asyncio.sleep(self.hold_seconds / 3)
            tokens: Sequence[str] = list(self._held)
            if not tokens:
                return
            try:
                kept = await self.services.store.renew_queue_slots(tokens, self.hold_seconds)
            except DurableError as exc:
                log.warning("worker %s: renewing queue slots failed: %s", self.holder, exc)
                continue
            for token in set(tokens) - kept:
                name = self._held.pop(token, None)
                if name is not None:
                    log.warning(
                        "queue %s: worker %s lost a slot (its lease expired); the activity"
                        " holding it may now run beside one more than the limit",
                        name,
                        self.holder,
                    )
