"""The worker: claims runnable runs, executes them, renews their leases, stops gracefully.

One claim loop leases up to ``concurrency`` runs at a time and sleeps until new work is
announced (in-process notification, or the store's own channel), the next timer is due,
or the poll interval passes. One heartbeat loop renews every held lease in a single
transaction, and tells each executor about new signals, cancellations or a lost lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import _logging, _tracing
from .._wire import StoredError, unknown_workflow_reason
from ..errors import DurableError, LeaseLostError, NotRegisteredError
from ..flow._runner import FlowRunner
from ..info import Status
from ..queues import Queue
from ..runtime import RunExecutor
from ..store import (
    Commit,
    Fence,
    Finish,
    Outcome,
    Park,
    QueueClaim,
    Release,
    RunRecord,
)
from ..store._notify import WORK
from ._liveness import Leases, Liveness
from ._queues import QueueLimiter, ServedQueues, served_queues
from ._registration import worker_info
from ._retention_loop import retention_loop
from ._schedule_loop import schedule_loop

if TYPE_CHECKING:
    from .._services import HasServices
    from ._metrics import WorkerMetrics

log = logging.getLogger("durable.worker")


class Worker:
    """Executes the runs of one App. Use as an async context manager, or ``run()``.

    Example::

        async with durable.App() as app:
            async with app.worker(concurrency=50):
                handle = await app.start(order, "o-1")
                print(await handle.result())
    """

    def __init__(
        self,
        app: HasServices,
        *,
        concurrency: int = 100,
        lease_seconds: float = 30.0,
        poll_interval: float = 1.0,
        grace_period: float = 10.0,
        name: str | None = None,
        queues: Sequence[str | Queue] | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        self.services = app.services
        """The store, registry, clock and queues of the App whose runs it executes."""
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.grace_period = grace_period
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._running: dict[str, tuple[RunExecutor, asyncio.Task[None]]] = {}
        self.flows = FlowRunner(self.services.registry)
        self._loops: list[asyncio.Task[None]] = []
        self._slot_freed = asyncio.Event()
        self._room_limited = True
        """The last claim was held back by room (concurrency, per-worker queue caps): a run
        ending may let the next claim take more, so it wakes the claim loop."""
        self._stopping = False
        names, self._declared = served_queues(self.services, queues)
        self.served = ServedQueues(names)
        """The queues this worker claims runs from (``served.names``) and their limits."""
        self.limiter = QueueLimiter(
            self.services, self.id, hold_seconds=lease_seconds, poll_interval=poll_interval
        )
        """Slots for activity attempts in limited queues: ``async with limiter.slot(q)``."""
        self._notices: set[asyncio.Task[None]] = set()
        self._renew_now = asyncio.Event()
        self.leases = Leases(lease_seconds, self._renew_now.set)
        """Each held run's lease by this process's clock: attempts start only within it."""
        self.liveness = Liveness(self.services.store, self.id, self.leases)
        """The liveness lock, and the taking over of dead peers' runs."""
        self.metrics = metrics
        """This process's Prometheus figures (``durable.WorkerMetrics``), or None."""

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Begin claiming runs. Parked runs get another chance with this worker's code."""
        if self.metrics is not None:
            self.metrics.attach(self._held)
            if self.metrics.port is not None:
                log.info(
                    "worker %s: metrics on http://%s:%d/metrics",
                    self.id,
                    self.metrics.host,
                    self.metrics.port,
                )
        await self._declare_queues()
        await self.liveness.start()  # before the row: a row without its lock reads as dead
        try:
            await self._register()
        except BaseException:
            await self.liveness.stop()
            raise
        resumed = await self.services.store.unpark()
        if resumed:
            log.info("worker %s: %d parked run(s) made runnable again", self.id, resumed)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="durable-claim"),
            asyncio.create_task(self._heartbeat_loop(), name="durable-heartbeat"),
            asyncio.create_task(self.liveness.run(), name="durable-liveness"),
            asyncio.create_task(
                schedule_loop(self.services.store, self.id, self.poll_interval), name="durable-cron"
            ),
        ]
        if self.services.retention is not None:
            sweep = retention_loop(self.services.store, self.id, self.services.retention)
            self._loops.append(asyncio.create_task(sweep, name="durable-retention"))
        registry = self.services.registry
        log.info(
            "worker %s started: store %s, queues %s, %s, %s, concurrency %d",
            self.id,
            self.services.store.location,
            ", ".join(self.served.names),
            _some(len(registry.workflows), "workflow", registry.workflows),
            _some(len(registry.activities), "activity", registry.activities),
            self.concurrency,
        )

    async def stop(self, grace_period: float | None = None) -> None:
        """Stop claiming; let activities in flight finish (up to the grace period); release."""
        if self._stopping:
            return
        self._stopping = True
        claim_loop = self._loops[0] if self._loops else None
        if claim_loop is not None:
            claim_loop.cancel()
            await asyncio.gather(claim_loop, return_exceptions=True)
        fences = {task: executor.fence for executor, task in self._running.values()}
        for executor, _ in self._running.values():
            executor.drain()
        grace = self.grace_period if grace_period is None else grace_period
        late: set[asyncio.Task[None]] = set()
        if fences:
            _, late = await asyncio.wait(fences, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for fence in (fences[task] for task in late):  # cut off: hand back now, not at expiry
            with contextlib.suppress(DurableError):
                await self.services.store.commit(Commit(fence, outcome=Release()))
        for task in self._loops[1:]:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await self.limiter.close()
        if self.metrics is not None:
            await self.metrics.detach(self._held)
        with contextlib.suppress(DurableError):  # a crash leaves the row, taken over later
            await self.services.store.unregister_worker(self.id)
        await self.liveness.stop()
        log.info("worker %s stopped", self.id)

    async def run(self) -> None:
        """Run until SIGTERM or SIGINT, then stop gracefully (``durable worker`` uses this)."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            log.info("worker %s: stopping, %d run(s) in flight", self.id, len(self._running))
            await self.stop()

    def is_idle(self) -> bool:
        """Whether every run this worker holds waits on a timer, a signal or a child: none
        is replaying, has a result to handle or runs an activity attempt.

        Nothing held moves until time passes or a signal comes (``durable.testing`` then
        moves its virtual clock).
        """
        return all(task.done() or executor.is_idle() for executor, task in self._running.values())

    # -- claiming -------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        store = self.services.store
        failures = 0
        with store.subscribe(WORK) as work:
            while True:
                if not self.liveness.held:  # peers may be taking this worker's runs over
                    await self.liveness.wait_held()
                work.clear()
                self._slot_freed.clear()
                try:
                    free = self.concurrency - len(self._running)
                    claims = self.served.claims(min(free, 64)) if free > 0 else []
                    self._room_limited = (
                        free < 64
                        or len(claims) < len(self.served.names)
                        or any(c.cap < 64 for c in claims)
                    )
                    if claims:
                        batch = min(free, 64, sum(c.cap for c in claims))
                        stamp = self.leases.renewal()
                        claimed = await store.claim(self.id, batch, self.lease_seconds, claims)
                        for run in claimed:
                            self._launch(run, stamp)
                        if claimed and len(claimed) == batch:
                            continue
                        if claimed:  # their first steps start before the next query
                            await _let_runs_start()
                    wait = self.poll_interval
                    wake_at = await self._next_wake(claims)
                    failures = 0
                except DurableError as exc:
                    failures += 1
                    wait = min(30.0, 0.1 * 2**failures)
                    log.warning(
                        "worker %s: claiming failed (%s); retrying in %.1f s", self.id, exc, wait
                    )
                    wake_at = None
                if wake_at is not None:
                    wait = min(wait, wake_at - self.services.clock.now())
                    if wait <= 0:  # due, yet the claim left it: a row another claimer
                        wait = 0.02  # holds, or a limit read since; do not spin
                await _first(work.wait(wait), self._slot_freed.wait())

    async def _next_wake(self, claims: list[QueueClaim]) -> float | None:
        """When a run of the queues this worker may claim from now becomes due."""
        if not claims:  # full, or every queue at its per-worker limit: a run ending wakes us
            return None
        held_back = [c.name for c in claims if c.limited]
        open_ = [c.name for c in claims if not c.limited]
        return await self.services.store.next_wake_at(open_, limited=held_back)

    def _launch(self, run: RunRecord, stamp: tuple[float, int] | None) -> None:
        self.served.held[run.queue] += 1
        if self.metrics is not None:
            self.metrics.run_claimed(run.workflow)
        try:
            workflow = (
                self.flows.workflow
                if run.flow_version is not None
                else self.services.registry.workflow(run.workflow).for_app(
                    self.services.values.serializer
                )
            )
        except NotRegisteredError as exc:
            task = asyncio.create_task(self._park_unknown(run, exc))
            self._track(run.id, None, task)
            task.add_done_callback(lambda _: self._left_queue(run.queue))
            return
        lease = self.leases.claimed(run.id, stamp)
        executor = RunExecutor(
            self.services.store,
            run,
            workflow,
            clock=self.services.clock,
            overrides=self.services.activity_overrides,
            limiter=self.limiter,
            observer=self.metrics,
            values=self.services.values,
            lease=lease,
        )
        task = asyncio.create_task(self._execute(executor), name=f"durable-run-{run.id}")
        task.add_done_callback(lambda _: self.leases.forget(run.id, lease))
        self._track(run.id, executor, task)
        task.add_done_callback(lambda _: self._left_queue(run.queue))

    def _left_queue(self, queue: str) -> None:
        """A run of ``queue`` ended here; tell the fleet when a global limit had it."""
        self.served.held[queue] -= 1
        if self.served.limited(queue) and not self._stopping:
            notice = asyncio.create_task(self._announce())
            self._notices.add(notice)
            notice.add_done_callback(self._notices.discard)

    async def _announce(self) -> None:
        with contextlib.suppress(DurableError):
            await self.services.store.publish(WORK)

    async def _declare_queues(self) -> None:
        """Store this worker's queue declarations; read every queue's stored limits."""
        if self._declared:
            earlier = await self.services.store.put_queues(list(self._declared.values()))
            for name, before in earlier.items():
                log.warning(
                    "queue %s: limits changed from %s to %s; every worker of the queue"
                    " should declare the same limits",
                    name,
                    before,
                    self._declared[name],
                )
        await self._refresh_queues()

    async def _refresh_queues(self) -> None:
        stored = await self.services.store.get_queues()
        self.served.limits = stored
        self.limiter.update(stored)

    def _track(self, run_id: str, executor: RunExecutor | None, task: asyncio.Task[None]) -> None:
        if executor is not None:
            self._running[run_id] = (executor, task)

        def done(_: asyncio.Task[None]) -> None:
            entry = self._running.get(run_id)
            if entry is not None and entry[1] is task:
                del self._running[run_id]
            if self._room_limited:
                self._slot_freed.set()

        task.add_done_callback(done)

    def _held(self) -> int:
        return len(self._running)

    async def _execute(self, executor: RunExecutor) -> None:
        run = executor.run_record
        # Every log line of the run (runtime, activities, user code) carries these fields;
        # the claim is one span, a child of the context stored when the run was started.
        with (
            _logging.bind(run_id=run.id, workflow=run.workflow, worker=self.id),  # a flow's id
            _tracing.run_span(run) as span,
        ):
            state, error = await self._execute_bound(executor)
            span.finish(state, error)
        if self.metrics is not None:
            self.metrics.run_left(run.workflow, state)

    async def _execute_bound(self, executor: RunExecutor) -> tuple[str, str | None]:
        """Execute the run (and what it continued as); return its last state, and the
        error that ended it (failed, parked, dropped) for its span."""
        run_id = executor.fence.run_id
        try:
            await executor.execute()
            while executor.successor is not None:  # continued as new, under the same lease
                executor = executor.successor
                held = self._running.get(run_id)
                if held is not None:
                    self._running[run_id] = (executor, held[1])
                await executor.execute()
            return executor.state, _failure(executor.outcome)
        except LeaseLostError:
            log.warning(
                "run=%s worker=%s state=LEASE_LOST (another worker holds it)", run_id, self.id
            )
            return "LEASE_LOST", None
        except DurableError as exc:
            log.error(
                "run=%s worker=%s state=DROPPED store failure, retried later: %s",
                run_id,
                self.id,
                exc,
            )
            return "DROPPED", str(exc)
        except Exception as exc:
            # Parked, not released: a run that breaks the executor would break it again at
            # once on every claim. The next worker start (a deploy) tries it again.
            log.exception(
                "run=%s worker=%s state=PARKED unexpected executor error", run_id, self.id
            )
            failure = StoredError(type(exc).__qualname__, f"the executor failed: {exc}")
            reason = failure.dumps_reason()
            with contextlib.suppress(DurableError):
                await self.services.store.commit(Commit(executor.fence, outcome=Park(reason)))
            return "PARKED", str(exc)

    async def _park_unknown(self, run: RunRecord, exc: NotRegisteredError) -> None:
        log.warning("run %s parked: %s", run.id, exc)
        reason = unknown_workflow_reason(str(exc))
        with contextlib.suppress(DurableError):
            await self.services.store.commit(Commit(Fence(run.id, run.epoch), outcome=Park(reason)))

    # -- leases ---------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        interval = self.lease_seconds / 3
        beats = 0
        while True:
            with contextlib.suppress(TimeoutError):  # or sooner, when a lease needs it
                async with asyncio.timeout(interval):
                    await self._renew_now.wait()
            self._renew_now.clear()
            beats += 1
            try:
                await self._beat(unpark=beats % 3 == 0)
            except Exception:  # the loop must outlive any one failure, or every lease lapses
                log.exception("worker %s: heartbeat failed", self.id)

    async def _register(self) -> None:
        # Live while its heartbeat (every third of a lease) is under a lease old.
        info = worker_info(
            self.id, self.services.registry, self.served.names, stale_after=self.lease_seconds
        )
        await self.services.store.register_worker(info)

    async def _beat(self, *, unpark: bool) -> None:
        with contextlib.suppress(DurableError):  # declarations made since by others
            await self._refresh_queues()
        with contextlib.suppress(DurableError):  # one statement; a lost row is written again
            if not await self.services.store.heartbeat_worker(self.id):
                await self._register()
        if unpark:  # runs parked by a worker that did not know their workflow: take them
            with contextlib.suppress(DurableError):
                await self.services.store.unpark(list(self.services.registry.workflows))
        held = {run_id: ex for run_id, (ex, _) in self._running.items()}
        if held:
            stamp = self.leases.renewal()
            try:
                states = await self.services.store.renew(
                    self.id, [ex.fence for ex in held.values()], self.lease_seconds
                )
            except DurableError as exc:
                log.warning("worker %s: lease renewal failed: %s", self.id, exc)
                return
            for run_id, executor in held.items():
                state = states.get(run_id)
                if state is None:
                    executor.lease_lost()
                else:
                    executor.poke(state.mailbox_version, state.cancel_requested)
            self.leases.renewed(stamp, list(states))


def _failure(outcome: Outcome | None) -> str | None:
    """The error a run span records: a failed run's, or why the run was parked."""
    if isinstance(outcome, Finish) and outcome.status == Status.FAILED:
        return outcome.error
    if isinstance(outcome, Park):
        return outcome.reason
    return None


async def _first(*aws: Any) -> None:
    """Wait until the first of several coroutines finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _some(count: int, noun: str, names: Iterable[str], shown: int = 3) -> str:
    """``3 workflows (order, refund, …)``: a count and the first few names."""
    plural = noun if count == 1 else ("activities" if noun == "activity" else noun + "s")
    listed = sorted(names)[:shown] + (["…"] if count > shown else [])
    return f"{count} {plural}" + (f" ({', '.join(listed)})" if listed else "")


async def _let_runs_start() -> None:
    """Yield twice to the event loop: a run just launched replays and starts its first
    activity (two loop turns: its task, then the attempt's) before the claim loop sends
    its next query, whose send would otherwise come first on the start-to-first-step
    path."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)
