"""Executing one claimed run: replay its journal, then run it live until it waits or ends.

The workflow's coroutines are stepped by a deterministic :class:`Scheduler`. Every result
the workflow receives (activity results, fired timers, signals, cancellation) goes through
one queue: it is committed to the journal first, then delivered, then the workflow runs
until it blocks again. Replay delivers the journal's entries in the same order, so the
workflow makes the same calls with the same sequence numbers; a call that differs from
the record parks the run with a :class:`NonDeterminismError`.

When every branch waits on something durable (a timer, a signal, a child, a retry
backoff), the run is suspended: its wake-up condition is written, its lease released and
its coroutines dropped. ``ctx.continue_as_new`` ends the journal; the run restarts with a
fresh one under the same lease (``successor``).

The executor is composed of parts that each own their state: the ``Cursor`` (numbering
and the journal), the ``Outbox`` (what the next commit writes), the ``Mailbox`` (signals),
``Dispatch`` (pending operations, timers, activity attempts, the delivery queue) and
``Operations`` (the ``WorkflowHost`` that workflow code calls). The ``Writer`` commits
and logs; this module is the loop that ties the parts together.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from .. import _current
from .._clock import REAL, Clock, Timer
from .._future import DurableFuture
from .._values import UNLIMITED, Values
from .._wire import Event, Kind, RetryRecord
from ..errors import DurableError, SerializationError
from ..registry import Override, Workflow
from ..store import (
    Fence,
    Finish,
    JournalEntry,
    Outcome,
    Release,
    Restart,
    RunRecord,
    Store,
    Suspend,
    run_topic,
)
from . import _guard, _load, _writer
from ._context import Context
from ._cursor import Cursor
from ._dispatch import AttemptObserver, Dispatch, resolve
from ._journal import Call, describe_entry
from ._mailbox import Mailbox
from ._operations import Operations
from ._outbox import Outbox
from ._scheduler import Scheduler
from ._state import Delivery, LeaseView, ReplayReport, SlotLimiter

log = logging.getLogger("durable.runtime")

_NO_OVERRIDES: Mapping[str, Override] = MappingProxyType({})


class RunExecutor:
    """Replays and runs one claimed run until it suspends, finishes or loses its lease."""

    def __init__(
        self,
        store: Store,
        run: RunRecord,
        workflow: Workflow[Any, Any],
        *,
        fresh: bool = False,
        clock: Clock | None = None,
        overrides: Mapping[str, Override] | None = None,
        limiter: SlotLimiter | None = None,
        observer: AttemptObserver | None = None,
        values: Values = UNLIMITED,
        lease: LeaseView | None = None,
    ) -> None:
        self.store = store
        self.run_record = run
        self.workflow = workflow
        self.fence = Fence(run.id, run.epoch)
        self.clock = REAL if clock is None else clock
        """Where the executor reads the time and sets its timers (the App's clock)."""
        self.overrides = _NO_OVERRIDES if overrides is None else overrides
        """Activity overrides by activity name (empty outside ``durable.testing``)."""
        self.limiter = limiter
        """The worker's queue limits for activities that name a queue."""
        self.observer = observer
        self.values = values
        """The App's payload size limit and journal length warning."""
        self.lease = lease
        """The run's lease as the worker knows it: no attempt starts while it is not valid."""
        self.fresh = fresh
        """The run just continued as new: its journal is known to be empty."""
        self.cursor = Cursor(run.id, self.clock, values.history_warning)
        self.outbox = Outbox()
        self.mailbox = Mailbox(
            run.mailbox_version, run.cancel_requested, run.paused_reason is not None
        )
        self.dispatch = Dispatch(
            run,
            run.workflow,  # as stored: a JSON flow's definition id
            self.cursor,
            self.outbox,
            self.mailbox,
            self.clock,
            self.overrides,
            limiter,
            observer,
            values,
            lease,
        )
        self.writer = _writer.Writer(
            store, self.fence, run.parent_id, workflow, self.cursor, self.outbox, run.workflow
        )
        self.scheduler = Scheduler()
        self.host = Operations(
            self.fence,
            workflow,
            self.clock,
            self.cursor,
            self.outbox,
            self.dispatch,
            self.scheduler,
            values,
            run.workflow,
        )
        self.ctx = Context(self.host)
        self.main: DurableFuture[Any] = DurableFuture("main")
        self.deadline: float | None = (
            None
            if workflow.execution_timeout is None
            else run.created_at + workflow.execution_timeout
        )
        self.successor: RunExecutor | None = None
        """Set when the run continued as new: the executor of its next journal."""

    @property
    def state(self) -> str:
        """The run's state as last logged (``COMPLETED``, ``WAITING``, ``LEASE_LOST`` ...)."""
        return self.writer.state

    @property
    def outcome(self) -> Outcome | None:
        """The last outcome committed (a ``Finish`` holds the run's error)."""
        return self.writer.outcome

    # -- signals from the worker ----------------------------------------------------
    def poke(self, mailbox_version: int, cancel_requested: bool) -> None:
        """The lease renewal saw new signals or a cancellation request."""
        if self.mailbox.changed(mailbox_version, cancel_requested):
            self.dispatch.queue.put_nowait(Delivery(None, refresh=True))

    def drain(self) -> None:
        """Finish the activities in flight, start no new ones, then give the run back."""
        self.dispatch.drain()

    def lease_lost(self) -> None:
        self.dispatch.queue.put_nowait(Delivery(None, stop=True))

    def is_idle(self) -> bool:
        """Whether the run waits on nothing but timers, signals and children: it is not
        replaying, no delivery waits to be handled and no activity attempt runs."""
        dispatch = self.dispatch
        return not (self.host.replaying or not dispatch.queue.empty() or dispatch.attempt_running())

    # -- the run --------------------------------------------------------------------
    async def execute(self) -> None:
        run_id = self.fence.run_id
        with self.store.subscribe(run_topic(run_id)) as sub:
            sub.call_on_notify(self._refresh_soon)
            deadline: Timer | None = None
            try:
                entries, signals, self.host.prepared = await _load.load(
                    self.store, self.run_record, self.workflow, self.fresh
                )
                self.cursor.load(entries)
                retried_at = self.cursor.journal.retried_at
                if self.deadline is not None and retried_at is not None:  # counts anew
                    self.deadline = retried_at + (self.workflow.execution_timeout or 0.0)
                deadline = self._arm_deadline()
                self.writer.log_state("RUNNING", journal=len(entries))
                self.mailbox.add(signals)
                if self.mailbox.paused:  # asked to pause while its last worker held it
                    self._pause()
                if self._expired():
                    await self.writer.commit(None, self.writer.timed_out())
                    return
                if not await self._begin():
                    return
                self._replay()
                self.host.replaying = False
                await self._live()
            finally:
                if deadline is not None:
                    deadline.cancel()
                self._unload()

    def replay_journal(self, entries: list[JournalEntry]) -> ReplayReport:
        """Replay ``entries`` with the workflow's code and report; execute nothing.

        No operation starts and nothing is written: recorded outcomes are handed to the
        code as on a worker's replay. The executor is unloaded afterwards.

        Raises:
            durable.SerializationError: the run's arguments no longer fit the signature.
            TypeError: the workflow function no longer takes them.
        """
        self.cursor.load(entries)
        args, kwargs = self.workflow.codec.decode_args(self.run_record.args)
        coro = self.workflow.fn(self.ctx, *args, **kwargs)
        self.main = self.scheduler.spawn(coro, f"workflow {self.workflow.name!r}")
        try:
            self._step()
            self._replay()
            unread = self.cursor.first_unread()
            done = self.main.done()
            return ReplayReport(
                done,
                self.main.exception() if done else None,
                self.cursor.nondeterminism,
                None if unread is None else (unread.seq, describe_entry(unread)),
                tuple((op.seq, op.call.describe()) for op in self.dispatch.pending()),
                self.dispatch.waiting_on(self.main.done()),
            )
        finally:
            self._unload()

    def _refresh_soon(self) -> None:
        """The run's row may have changed (a signal, a cancel or pause request)."""
        self.dispatch.queue.put_nowait(Delivery(None, refresh=True))

    def _arm_deadline(self) -> Timer | None:
        if self.deadline is None:
            return None
        left = max(0.0, self.deadline - self.clock.now())
        expired = Delivery(None, expired=True)
        return self.clock.call_later(left, self.dispatch.queue.put_nowait, expired)

    def _expired(self) -> bool:
        return self.deadline is not None and self.clock.now() >= self.deadline

    async def _begin(self) -> bool:
        try:
            if isinstance(self.host.prepared, DurableError):
                raise self.host.prepared
            args, kwargs = self.workflow.codec.decode_args(self.run_record.args)
        except DurableError as exc:
            await self.writer.commit(None, self.writer.failed(exc))
            return False
        try:
            coro = self.workflow.fn(self.ctx, *args, **kwargs)
        except TypeError as exc:  # the deployed signature no longer takes the stored args
            error = SerializationError(
                f"workflow {self.workflow.name!r} cannot take the arguments run "
                f"{self.fence.run_id!r} was started with: {exc}"
            )
            await self.writer.commit(None, self.writer.failed(error))
            return False
        self.main = self.scheduler.spawn(coro, f"workflow {self.workflow.name!r}")
        self._step()
        return True

    def _replay(self) -> None:
        cursor, dispatch, cancel = self.cursor, self.dispatch, Event.CANCEL
        for entry in cursor.journal.deliveries:
            if cursor.nondeterminism is not None or self.main.done():
                break
            if entry.event == cancel:
                dispatch.cancel_all()
            else:
                op = dispatch.pop(entry.seq)
                if op is None:
                    waiting = dispatch.waiting_on(self.main.done())
                    cursor.flag(entry.seq, describe_entry(entry), waiting)
                    break
                resolve(op, entry.event, entry.payload)
            self._step()

    async def _live(self) -> None:
        cursor, outbox, dispatch, mailbox = self.cursor, self.outbox, self.dispatch, self.mailbox
        queue = dispatch.queue
        while True:
            if cursor.nondeterminism is None and self.main.done():
                cursor.check_consumed()
            if cursor.nondeterminism is not None:
                log.warning("%s", cursor.nondeterminism)
                parked = _writer.parked(cursor.nondeterminism)
                await self.writer.commit(None, parked, keep=False)
                return
            if self.main.done():
                outcome = self.writer.final(self.main)
                await self.writer.commit(None, outcome)
                if isinstance(outcome, Restart):
                    self._continue(outcome)
                return
            if mailbox.cancel_requested and not cursor.journal.cancelled:
                cursor.journal.cancelled = True
                entry = cursor.entry(0, Event.CANCEL, Call(Kind.CANCEL, ""), None)
                await self.writer.commit(entry, None)
                dispatch.cancel_all()
                self._step()
                continue
            if outbox.volatile and dispatch.starts_effects():
                # ctx.now()/random()/uuid4() values must be durable before an activity or a
                # child can use them: a replay after a crash must not make new ones.
                await self.writer.commit(None, None)
            if self.writer.asked_to_pause and not dispatch.pausing:
                self._pause()  # a commit found the pause before anything new started
            dispatch.start_ops()
            if queue.empty() and not dispatch.activities_running():
                if dispatch.draining and dispatch.held_back():
                    await self.writer.commit(None, Release())
                else:
                    await self._suspend()
                return
            if outbox.urgent and outbox.entries and queue.empty():
                # An armed timer's due time, a started child, a published event, or a step
                # that waits while an activity runs, is committed now rather than with the
                # next result: a crash in between must not restart the timer, and clients
                # must see the progress.
                await self.writer.commit(None, None)
            delivery = await queue.get()
            if delivery.stop:
                self.writer.log_state("LEASE_LOST")
                return
            if delivery.expired:
                await self.writer.commit(None, self.writer.timed_out())
                return
            if delivery.refresh:
                await self._refresh_mailbox()
            elif delivery.op is not None and dispatch.current(delivery.op):
                if await self._deliver(delivery):
                    return  # the workflow ended with this result
            elif delivery.signal is not None:  # its wait ended otherwise: keep the signal
                mailbox.add([delivery.signal], returned=True)
                dispatch.match_waiting()

    async def _refresh_mailbox(self) -> None:
        run_id = self.fence.run_id
        # The run first, then its signals: a signal committed in between is then read
        # (its version bump may be missed, not the signal). Read the other way round, the
        # version could count a signal the mailbox lacks, and the run would sleep on it.
        run = await self.store.get_run(run_id)
        signals = await self.store.pending_signals(run_id, self.mailbox.last_id)
        self.mailbox.update(run, signals)
        if self.mailbox.paused and not self.dispatch.pausing:
            self._pause()
        self.writer.pausing = self.mailbox.paused
        self.dispatch.match_waiting()

    async def _deliver(self, d: Delivery) -> bool:
        """Journal and hand over one outcome; True if the workflow ended with it.

        The workflow steps before the outcome is committed: it starts nothing by stepping
        (new operations start later, in ``start_ops``), so a crash in between replays to
        the same point. That lets a workflow that ends here journal its last result and
        its end in one commit; otherwise the result is committed before anything starts.
        """
        op, event = d.op, d.event
        assert op is not None and event is not None
        if event == Event.RETRY:  # the attempt failed; the next one is due later
            entry = self.cursor.entry(op.seq, event, op.call, d.payload)
            await self.writer.commit(entry, None, pause=d.pause)
            if d.pause is not None:  # the attempts ran out: the next waits for the resume
                self._pause()
            retry = RetryRecord.loads(d.payload or "{}")
            self.dispatch.retry(op, retry.attempt, retry.at)
            return False
        self.dispatch.retire(op)
        entry = self.cursor.entry(op.seq, event, op.call, d.payload)
        consumed = [(d.signal.id, op.seq)] if d.signal is not None else []
        resolve(op, event, d.payload)
        mark = self.outbox.mark()
        self._step()
        if self.cursor.nondeterminism is None and self.main.done():
            self.cursor.check_consumed()
            outcome = self.writer.final(self.main) if self.cursor.nondeterminism is None else None
            if isinstance(outcome, Finish):
                self.outbox.insert(mark, entry)
                await self.writer.commit(None, outcome, consumed=consumed)
                return True
        # What the workflow recorded while stepping rides with the next commit, as it
        # would have had the result been committed first.
        later, urgent, volatile = self.outbox.set_aside(mark)
        await self.writer.commit(entry, None, consumed=consumed)
        self.outbox.put_back(later, urgent, volatile)
        return False

    async def _suspend(self) -> None:
        if not self.dispatch.ops:
            exc = DurableError(
                "the workflow waits on something that can never finish "
                "(it awaits no activity, timer or signal)"
            )
            await self.writer.commit(None, self.writer.failed(exc))
            return
        times, names = self.dispatch.waits()
        if self.deadline is not None:
            times.append(self.deadline)
        wake_at = min(times, default=None)
        await self.writer.commit(None, Suspend(wake_at, names, self.mailbox.version))

    def _pause(self) -> None:
        """Start nothing new; the run is given back PAUSED once the activities in flight
        have ended (the store pauses a run it releases while it is marked)."""
        self.writer.pausing = True
        self.dispatch.pause()

    def _continue(self, outcome: Restart) -> None:
        run = replace(
            self.run_record,
            args=outcome.args,
            mailbox_version=self.mailbox.version,
            cancel_requested=self.mailbox.cancel_requested,
        )
        self.successor = RunExecutor(
            self.store,
            run,
            self.workflow,
            fresh=True,
            clock=self.clock,
            overrides=self.overrides,
            limiter=self.limiter,
            observer=self.observer,
            values=self.values,
            lease=self.lease,
        )
        self.successor.dispatch.draining = self.dispatch.draining
        if self.dispatch.pausing:
            self.successor._pause()

    # -- stepping the workflow ------------------------------------------------------
    def _step(self) -> None:
        token = _current.workflow_context.set(self.host)
        watched = _guard.strict_level > 0 and _guard.watch()
        try:
            self.scheduler.run_until_blocked()
        finally:
            if watched:
                _guard.unwatch()
            _current.workflow_context.reset(token)

    def _unload(self) -> None:
        self.cursor.close()
        self.dispatch.close()
        self.scheduler.close()
