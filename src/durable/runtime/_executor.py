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

The parts: ``_state`` (what is known about the run), ``_operations`` (what workflow code
calls), ``_dispatch`` (starting operations and collecting their outcomes), this module
(the loop).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any

from .. import _current
from .._clock import Clock, Timer
from ..errors import (
    Cancelled,
    ContinueAsNew,
    DurableError,
    NonDeterminismError,
    SerializationError,
    StoreError,
    WorkflowTimeout,
    describe_exception,
)
from ..info import Status
from ..registry import Workflow
from ..serde import dumps, loads
from ..store import (
    Commit,
    Finish,
    JournalEntry,
    Outcome,
    Park,
    Release,
    Restart,
    RunRecord,
    SignalRecord,
    Store,
    Suspend,
)
from ..store._notify import run_topic
from . import _guard
from ._context import Context
from ._dispatch import AttemptObserver, Dispatch
from ._journal import CANCEL, RETRY, Call, Journal, describe_entry
from ._operations import Operations
from ._state import Delivery, Override, SlotLimiter

log = logging.getLogger("durable.runtime")


class RunExecutor(Operations, Dispatch):
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
    ) -> None:
        super().__init__(store, run, workflow)
        if clock is not None:
            self.clock = clock
        if overrides is not None:
            self.overrides = overrides
        self.limiter = limiter
        self.observer = observer
        self.state = "CLAIMED"
        """The run's state as last logged (``COMPLETED``, ``WAITING``, ``LEASE_LOST`` ...)."""
        self.outcome: Outcome | None = None
        """The last outcome committed (a ``Finish`` holds the run's error)."""
        self.ctx = Context(self)
        self.fresh = fresh
        """The run just continued as new: its journal is known to be empty."""
        self.successor: RunExecutor | None = None
        """Set when the run continued as new: the executor of its next journal."""

    # -- signals from the worker ----------------------------------------------------
    def poke(self, mailbox_version: int, cancel_requested: bool) -> None:
        """The lease renewal saw new signals or a cancellation request."""
        if mailbox_version != self.mailbox_version or cancel_requested != self.cancel_requested:
            self.queue.put_nowait(Delivery(None, refresh=True))

    def drain(self) -> None:
        """Finish the activities in flight, start no new ones, then give the run back."""
        self.draining = True
        self.queue.put_nowait(Delivery(None))

    def lease_lost(self) -> None:
        self.queue.put_nowait(Delivery(None, stop=True))

    # -- the run --------------------------------------------------------------------
    async def execute(self) -> None:
        run_id = self.fence.run_id
        with self.store.subscribe(run_topic(run_id)) as sub:
            watcher = asyncio.create_task(self._watch(sub.wait))
            deadline = self._arm_deadline()
            try:
                entries, signals, self.prepared = await asyncio.gather(
                    self._read_journal(),
                    self._read_signals(),
                    self._prepare(),
                )
                self.journal = Journal(entries)
                self.next_pos = self.journal.next_pos
                self._log_state("RUNNING", journal=len(entries))
                self.add_signals(signals)
                if self._expired():
                    await self._commit(None, self._timed_out())
                    return
                if not await self._begin():
                    return
                self._replay()
                self.replaying = False
                await self._live()
            finally:
                watcher.cancel()
                if deadline is not None:
                    deadline.cancel()
                self._unload()

    def _first_claim(self) -> bool:
        """Claimed for the first time, never signalled: nothing to read back.

        The journal is written only under a claim (epoch 1 is the first), and every
        signal (and cancellation request) moves the mailbox version.
        """
        return self.run_record.epoch == 1 and self.run_record.mailbox_version == 0

    async def _read_journal(self) -> list[JournalEntry]:
        if self.fresh or self._first_claim():
            return []
        return await self.store.read_journal(self.fence.run_id)

    async def _read_signals(self) -> list[SignalRecord]:
        if self._first_claim():
            return []
        return await self.store.pending_signals(self.fence.run_id, 0)

    async def _prepare(self) -> Any:
        prepare = self.workflow.prepare
        if prepare is None:
            return None
        try:
            return await prepare(self.store, self.run_record)
        except StoreError:
            raise  # the database failed: the run is retried later
        except DurableError as exc:
            return exc  # what the run needs is missing for good: it fails in _begin

    async def _watch(self, wait: Callable[[float | None], Coroutine[Any, Any, bool]]) -> None:
        while True:
            await wait(None)
            self.queue.put_nowait(Delivery(None, refresh=True))

    def _arm_deadline(self) -> Timer | None:
        if self.deadline is None:
            return None
        left = max(0.0, self.deadline - self.clock.now())
        return self.clock.call_later(left, self.queue.put_nowait, Delivery(None, expired=True))

    def _expired(self) -> bool:
        return self.deadline is not None and self.clock.now() >= self.deadline

    async def _begin(self) -> bool:
        try:
            if isinstance(self.prepared, DurableError):
                raise self.prepared
            args, kwargs = self.workflow.codec.decode_args(self.run_record.args)
        except DurableError as exc:
            await self._commit(None, self._finish(Status.FAILED, error=_error_json(exc)))
            return False
        try:
            coro = self.workflow.fn(self.ctx, *args, **kwargs)
        except TypeError as exc:  # the deployed signature no longer takes the stored args
            error = SerializationError(
                f"workflow {self.workflow.name!r} cannot take the arguments run "
                f"{self.fence.run_id!r} was started with: {exc}"
            )
            await self._commit(None, self._finish(Status.FAILED, error=_error_json(error)))
            return False
        self.main = self.scheduler.spawn(coro, f"workflow {self.workflow.name!r}")
        self._step()
        return True

    def _replay(self) -> None:
        for entry in self.journal.deliveries:
            if self.nondeterminism is not None or self.main.done():
                break
            if entry.event == CANCEL:
                self.deliver_cancel()
            else:
                op = self.ops.pop(entry.seq, None)
                if op is None:
                    self.flag(entry.seq, describe_entry(entry), self._waiting_on())
                    break
                self.resolve(op, entry.event, entry.payload)
            self._step()

    async def _live(self) -> None:
        while True:
            if self.nondeterminism is None and self.main.done():
                self._check_journal_consumed()
            if self.nondeterminism is not None:
                log.warning("%s", self.nondeterminism)
                await self._commit(None, Park(_parked_json(self.nondeterminism)), keep=False)
                return
            if self.main.done():
                await self._commit(None, self._final_outcome())
                return
            if self.cancel_requested and not self.journal.cancelled:
                self.journal.cancelled = True
                await self._commit(self.entry(0, CANCEL, Call("cancel", ""), None), None)
                self.deliver_cancel()
                self._step()
                continue
            if self.volatile and self._starts_effects():
                # ctx.now()/random()/uuid4() values must be durable before an activity or a
                # child can use them: a replay after a crash must not make new ones.
                await self._commit(None, None)
            self.start_ops()
            if self.queue.empty() and not self.activities_running():
                if self.draining and (self.unstarted or self.in_backoff()):
                    await self._commit(None, Release())
                else:
                    await self._suspend()
                return
            if self.flush_soon and self.buffer and self.queue.empty():
                # An armed timer's due time, a started child, a published event, or a step
                # that waits while an activity runs, is committed now rather than with the
                # next result: a crash in between must not restart the timer, and clients
                # must see the progress.
                await self._commit(None, None)
            delivery = await self.queue.get()
            if delivery.stop:
                self._log_state("LEASE_LOST")
                return
            if delivery.expired:
                await self._commit(None, self._timed_out())
                return
            if delivery.refresh:
                await self.refresh_mailbox()
            elif delivery.op is not None and self.ops.get(delivery.op.seq) is delivery.op:
                if await self._deliver(delivery):
                    return  # the workflow ended with this result
            elif delivery.signal is not None:  # its wait ended otherwise: keep the signal
                self.add_signals([delivery.signal], returned=True)
                self.match_waiting()

    async def _deliver(self, d: Delivery) -> bool:
        """Journal and hand over one outcome; True if the workflow ended with it.

        The workflow steps before the outcome is committed: it starts nothing by stepping
        (new operations start later, in ``start_ops``), so a crash in between replays to
        the same point. That lets a workflow that ends here journal its last result and
        its end in one commit; otherwise the result is committed before anything starts.
        """
        op = d.op
        assert op is not None
        if d.event == RETRY:  # the attempt failed; the next one is due later
            await self._commit(self.entry(op.seq, RETRY, op.call, d.payload), None)
            retry = loads(d.payload or "{}")
            op.attempt = int(retry["attempt"])
            self.journal.retries[op.seq] = (op.attempt, float(retry["at"]))
            self.schedule_attempt(op, float(retry["at"]))
            return False
        del self.ops[op.seq]
        if op.timer is not None:
            op.timer.cancel()
        entry = self.entry(op.seq, d.event, op.call, d.payload)
        consumed = [(d.signal.id, op.seq)] if d.signal is not None else []
        self.resolve(op, d.event, d.payload)
        mark = len(self.buffer)
        self._step()
        if self.nondeterminism is None and self.main.done():
            self._check_journal_consumed()
            outcome = self._final_outcome() if self.nondeterminism is None else None
            if isinstance(outcome, Finish):
                self.buffer.insert(mark, entry)
                await self._commit(None, outcome, consumed=consumed)
                return True
        # What the workflow recorded while stepping rides with the next commit, as it
        # would have had the result been committed first.
        later, soon = self.buffer[mark:], self.flush_soon
        del self.buffer[mark:]
        await self._commit(entry, None, consumed=consumed)
        self.buffer, self.flush_soon = later + self.buffer, soon
        return False

    async def _suspend(self) -> None:
        if not self.ops:
            exc = DurableError(
                "the workflow waits on something that can never finish "
                "(it awaits no activity, timer or signal)"
            )
            await self._commit(None, self._finish(Status.FAILED, error=_error_json(exc)))
            return
        names = tuple(sorted({op.wait for op in self.ops.values() if op.wait}))
        times = [op.fire_at for op in self.ops.values() if op.fire_at]
        if self.deadline is not None:
            times.append(self.deadline)
        await self._commit(None, Suspend(min(times, default=None), names, self.mailbox_version))

    def _starts_effects(self) -> bool:
        return any(op.call.kind in ("activity", "child") for op in self.unstarted)

    def _finish(
        self, status: Status, result: str | None = None, error: str | None = None
    ) -> Finish:
        return Finish(status, result, error, cancel_children=bool(self.journal.started))

    def _timed_out(self) -> Finish:
        limit = self.workflow.execution_timeout
        exc = WorkflowTimeout(
            f"run {self.fence.run_id!r} of workflow {self.workflow.name!r} timed out: "
            f"it was still going {limit} s after it started (execution_timeout)"
        )
        return self._finish(Status.FAILED, error=_error_json(exc))

    def _final_outcome(self) -> Finish | Restart:
        exc = self.main.exception()
        if exc is None:
            try:
                result = self.workflow.codec.encode_result(self.main.result())
            except SerializationError as error:
                return self._finish(Status.FAILED, error=_error_json(error))
            return self._finish(Status.COMPLETED, result=result)
        if isinstance(exc, ContinueAsNew):
            return Restart(exc.args_text, cancel_children=bool(self.journal.started))
        if isinstance(exc, Cancelled):
            return self._finish(Status.CANCELLED, error=_error_json(exc))
        return self._finish(Status.FAILED, error=_error_json(exc))

    # -- journal writes -------------------------------------------------------------
    async def _commit(
        self,
        entry: JournalEntry | None,
        outcome: Outcome | None,
        *,
        consumed: list[tuple[int, int]] | None = None,
        keep: bool = True,
    ) -> None:
        entries = self.buffer if keep else []
        if entry is not None:
            entries.append(entry)
        children = self.children if keep else []
        if isinstance(outcome, Restart):  # the journal is wiped in the same transaction
            entries, children = [], []
        events = self.events if keep else []  # a parked run's diverged code publishes none
        self.buffer, self.children, self.events = [], [], []
        self.flush_soon = self.volatile = False
        parent = self.run_record.parent_id if isinstance(outcome, Finish) else None
        commit = Commit(self.fence, entries, consumed or [], outcome, children, events, parent)
        await self.store.commit(commit)
        if isinstance(outcome, Restart):
            self._continue(outcome)
        if outcome is not None:
            self.outcome = outcome
            self._log_state(outcome)

    def _continue(self, outcome: Restart) -> None:
        run = replace(
            self.run_record,
            args=outcome.args,
            mailbox_version=self.mailbox_version,
            cancel_requested=self.cancel_requested,
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
        )
        self.successor.draining = self.draining

    def _log_state(self, outcome: Outcome | str, **fields: object) -> None:
        """One structured line per state change of the run."""
        match outcome:
            case Suspend(wake_at=wake_at, signal_names=names):
                state = "WAITING"
                if wake_at is not None:
                    fields["wake_in"] = f"{max(0.0, wake_at - self.clock.now()):.3f}s"
                if names:
                    fields["signals"] = ",".join(names)
            case Finish(status=status):
                state = str(status)
            case Park():
                state = "PARKED"
            case Release():
                state = "RELEASED"
            case Restart():
                state = "CONTINUED_AS_NEW"
            case str():
                state = outcome
        self.state = state
        extra = "".join(f" {key}={value}" for key, value in fields.items())
        log.info(
            "run=%s workflow=%s epoch=%d state=%s%s",
            self.fence.run_id,
            self.workflow.name,
            self.fence.epoch,
            state,
            extra,
        )

    # -- stepping the workflow ------------------------------------------------------
    def _step(self) -> None:
        token = _current.workflow_context.set(self.ctx)
        watched = _guard.strict_level > 0 and _guard.watch()
        try:
            self.scheduler.run_until_blocked()
        finally:
            if watched:
                _guard.unwatch()
            _current.workflow_context.reset(token)

    def _unload(self) -> None:
        self.unloading = True
        for op in self.ops.values():
            if op.timer is not None:
                op.timer.cancel()
            if op.task is not None:
                op.task.cancel()
        self.scheduler.close()

    # -- non-determinism ------------------------------------------------------------
    def _waiting_on(self) -> str:
        pending = sorted(self.ops.values(), key=lambda o: o.seq)
        if not pending:
            return "nothing more (the workflow returned)" if self.main.done() else "nothing"
        return "no such call: it waits on " + ", ".join(
            f"{op.call.describe()} at {op.seq}" for op in pending
        )

    def _check_journal_consumed(self) -> None:
        if self.journal.max_seq >= self.next_seq:
            recorded = self.journal.first[self.journal.max_seq]
            self.flag(
                recorded.seq, describe_entry(recorded), "nothing more (the workflow returned)"
            )


def _error_json(exc: BaseException) -> str:
    return dumps(describe_exception(exc))


def _parked_json(exc: NonDeterminismError) -> str:
    return json.dumps(
        {
            "type": "NonDeterminismError",
            "message": str(exc),
            "seq": exc.seq,
            "recorded": exc.recorded,
            "requested": exc.requested,
        }
    )
