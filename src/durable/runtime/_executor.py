"""Executing one claimed run: replay its journal, then run it live until it waits or ends.

The workflow's coroutines are stepped by a deterministic :class:`Scheduler`. Every result
the workflow receives (activity results, fired timers, signals, cancellation) goes through
one queue: it is committed to the journal first, then delivered, then the workflow runs
until it blocks again. Replay delivers the journal's entries in the same order, so the
workflow makes the same calls with the same sequence numbers; a call that differs from
the record parks the run with a :class:`NonDeterminismError`.

When every branch waits on something durable (a timer, a signal), the run is suspended:
its wake-up condition is written, its lease released and its coroutines dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from .. import _current
from ..errors import (
    ActivityError,
    Cancelled,
    DurableError,
    NonDeterminismError,
    SerializationError,
    StoreError,
    WaitTimeout,
    describe_exception,
)
from ..info import RunInfo, Status
from ..policy import RetryPolicy
from ..registry import Activity, Workflow
from ..serde import dumps, fingerprint, loads
from ..store._notify import run_topic
from ..store.base import (
    Commit,
    Fence,
    Finish,
    JournalEntry,
    Outcome,
    Park,
    Release,
    RunRecord,
    SignalRecord,
    Store,
    Suspend,
)
from . import _activity
from ._context import Context
from ._future import DurableFuture
from ._journal import CANCEL, ERROR, RESULT, TIMER, Call, Journal, describe_entry
from ._scheduler import Scheduler

log = logging.getLogger("durable.runtime")


class _Abort(BaseException):
    """Unwinds workflow code after a non-determinism report or while the run is unloaded."""


@dataclass(eq=False, slots=True)
class _Op:
    """A durable operation the workflow is waiting on."""

    seq: int
    call: Call
    future: DurableFuture[Any]
    activity: Activity[Any, Any] | None = None
    args_text: str = ""
    retry: RetryPolicy | None = None
    timeout: float | None = None
    delay: float | None = None  # a sleep's duration, a signal wait's timeout
    fire_at: float | None = None
    timer: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = None
    matched: bool = False  # a signal is on its way to this wait


@dataclass(slots=True)
class _Delivery:
    """Something to journal and hand to the workflow."""

    op: _Op | None
    event: str = ""
    payload: str | None = None
    signal: SignalRecord | None = None
    refresh: bool = False
    stop: bool = False


class RunExecutor:
    """Replays and runs one claimed run until it suspends, finishes or loses its lease."""

    def __init__(self, store: Store, run: RunRecord, workflow: Workflow[Any, Any]) -> None:
        self.store = store
        self.run_record = run
        self.workflow = workflow
        self.fence = Fence(run.id, run.epoch)
        self.mailbox_version = run.mailbox_version
        self.cancel_requested = run.cancel_requested
        self.ctx = Context(self)
        self.scheduler = Scheduler()
        self.journal = Journal([])
        self.replaying = True
        self.unloading = False
        self.draining = False
        self.next_seq = 1
        self.next_pos = 0
        self.ops: dict[int, _Op] = {}
        self.unstarted: list[_Op] = []
        self.buffer: list[JournalEntry] = []
        self.flush_soon = False  # the buffer holds what must not wait for the next result
        self.mailbox: list[SignalRecord] = []
        self.last_signal_id = 0
        self.queue: asyncio.Queue[_Delivery] = asyncio.Queue()
        self.nondeterminism: NonDeterminismError | None = None
        self.main: DurableFuture[Any] = DurableFuture("main")
        self.prepared: Any = None
        """What the workflow's ``prepare`` hook loaded before replay (a flow's graph)."""

    # -- signals from the worker ----------------------------------------------------
    def poke(self, mailbox_version: int, cancel_requested: bool) -> None:
        """The lease renewal saw new signals or a cancellation request."""
        if mailbox_version != self.mailbox_version or cancel_requested != self.cancel_requested:
            self.queue.put_nowait(_Delivery(None, refresh=True))

    def drain(self) -> None:
        """Finish the activities in flight, start no new ones, then give the run back."""
        self.draining = True
        self.queue.put_nowait(_Delivery(None))

    def lease_lost(self) -> None:
        self.queue.put_nowait(_Delivery(None, stop=True))

    # -- the run --------------------------------------------------------------------
    async def execute(self) -> None:
        run_id = self.fence.run_id
        with self.store.subscribe(run_topic(run_id)) as sub:
            watcher = asyncio.create_task(self._watch(sub.wait))
            try:
                entries, signals, self.prepared = await asyncio.gather(
                    self.store.read_journal(run_id),
                    self.store.pending_signals(run_id, 0),
                    self._prepare(),
                )
                self.journal = Journal(entries)
                self.next_pos = self.journal.next_pos
                self._log_state("RUNNING", journal=len(entries))
                self._add_signals(signals)
                if not await self._begin():
                    return
                self._replay()
                self.replaying = False
                await self._live()
            finally:
                watcher.cancel()
                self._unload()

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
            self.queue.put_nowait(_Delivery(None, refresh=True))

    async def _begin(self) -> bool:
        try:
            if isinstance(self.prepared, DurableError):
                raise self.prepared
            args, kwargs = self.workflow.codec.decode_args(self.run_record.args)
        except DurableError as exc:
            await self._commit(None, Finish(Status.FAILED, error=_error_json(exc)))
            return False
        coro = self.workflow.fn(self.ctx, *args, **kwargs)
        self.main = self.scheduler.spawn(coro, f"workflow {self.workflow.name!r}")
        self._step()
        return True

    def _replay(self) -> None:
        for entry in self.journal.deliveries:
            if self.nondeterminism is not None or self.main.done():
                break
            if entry.event == CANCEL:
                self._deliver_cancel()
            else:
                op = self.ops.pop(entry.seq, None)
                if op is None:
                    self._flag(entry.seq, describe_entry(entry), self._waiting_on())
                    break
                self._resolve(op, entry.event, entry.payload)
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
                await self._commit(self._entry(0, CANCEL, Call("cancel", ""), None), None)
                self._deliver_cancel()
                self._step()
                continue
            self._start_ops()
            if self.queue.empty() and not self._activities_running():
                if self.draining and self.unstarted:
                    await self._commit(None, Release())
                else:
                    await self._suspend()
                return
            if self.flush_soon and self.buffer and self.queue.empty():
                # An armed timer's due time, or a step that waits while an activity runs,
                # is committed now rather than with the activity's result: a crash in
                # between must not restart the timer, and clients must see the wait.
                await self._commit(None, None)
            delivery = await self.queue.get()
            if delivery.stop:
                self._log_state("LEASE_LOST")
                return
            if delivery.refresh:
                await self._refresh_mailbox()
            elif delivery.op is not None and self.ops.get(delivery.op.seq) is delivery.op:
                await self._deliver(delivery)
            elif delivery.signal is not None:  # its wait ended otherwise: keep the signal
                self._add_signals([delivery.signal], returned=True)
                self._match_waiting()

    async def _deliver(self, d: _Delivery) -> None:
        op = d.op
        assert op is not None
        del self.ops[op.seq]
        if op.timer is not None:
            op.timer.cancel()
        entry = self._entry(op.seq, d.event, op.call, d.payload)
        consumed = [(d.signal.id, op.seq)] if d.signal is not None else []
        await self._commit(entry, None, consumed=consumed)
        self._resolve(op, d.event, d.payload)
        self._step()

    async def _suspend(self) -> None:
        if not self.ops:
            exc = DurableError(
                "the workflow waits on something that can never finish "
                "(it awaits no activity, timer or signal)"
            )
            await self._commit(None, Finish(Status.FAILED, error=_error_json(exc)))
            return
        names = tuple(
            sorted({op.call.name for op in self.ops.values() if op.call.kind == "signal"})
        )
        wake_at = min((op.fire_at for op in self.ops.values() if op.fire_at), default=None)
        await self._commit(None, Suspend(wake_at, names, self.mailbox_version))

    def _final_outcome(self) -> Finish:
        exc = self.main.exception()
        if exc is None:
            try:
                result = self.workflow.codec.encode_result(self.main.result())
            except SerializationError as error:
                return Finish(Status.FAILED, error=_error_json(error))
            return Finish(Status.COMPLETED, result=result)
        if isinstance(exc, Cancelled):
            return Finish(Status.CANCELLED, error=_error_json(exc))
        return Finish(Status.FAILED, error=_error_json(exc))

    # -- journal writes -------------------------------------------------------------
    def _entry(self, seq: int, event: str, call: Call, payload: str | None) -> JournalEntry:
        entry = JournalEntry(
            self.next_pos, seq, event, call.kind, call.name, call.fingerprint, payload, time.time()
        )
        self.next_pos += 1
        return entry

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
        self.buffer = []
        self.flush_soon = False
        await self.store.commit(Commit(self.fence, entries, consumed or [], outcome))
        if outcome is not None:
            self._log_state(outcome)

    def _log_state(self, outcome: Outcome | str, **fields: object) -> None:
        """One structured line per state change of the run."""
        match outcome:
            case Suspend(wake_at=wake_at, signal_names=names):
                state = "WAITING"
                if wake_at is not None:
                    fields["wake_in"] = f"{max(0.0, wake_at - time.time()):.3f}s"
                if names:
                    fields["signals"] = ",".join(names)
            case Finish(status=status):
                state = str(status)
            case Park():
                state = "PARKED"
            case Release():
                state = "RELEASED"
            case str():
                state = outcome
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
        try:
            self.scheduler.run_until_blocked()
        finally:
            _current.workflow_context.reset(token)

    def _unload(self) -> None:
        self.unloading = True
        for op in self.ops.values():
            if op.timer is not None:
                op.timer.cancel()
            if op.task is not None:
                op.task.cancel()
        self.scheduler.close()

    # -- operations issued by the workflow (called through Context) -----------------
    def run_info(self) -> RunInfo:
        return RunInfo(self.fence.run_id, self.workflow.name, self.fence.epoch, self.replaying)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> DurableFuture[Any]:
        return self.scheduler.spawn(coro, name)

    def _next_seq(self, call: Call) -> int:
        if self.unloading or self.nondeterminism is not None:
            raise _Abort()
        seq = self.next_seq
        self.next_seq += 1
        recorded = self.journal.mismatch(seq, call)
        if recorded is not None:
            self._flag(seq, recorded, call.describe())
            raise _Abort()
        return seq

    def _issue(self, op: _Op) -> DurableFuture[Any]:
        self.ops[op.seq] = op
        if op.seq not in self.journal.final:
            self.unstarted.append(op)
        return op.future

    def call_activity(
        self,
        act: Activity[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retry: RetryPolicy | None,
        timeout: float | None,
    ) -> DurableFuture[Any]:
        args_text = act.codec.encode_args(args, kwargs)
        call = Call("activity", act.name, fingerprint(args_text))
        seq = self._next_seq(call)
        future: DurableFuture[Any] = DurableFuture(f"activity {act.name!r} #{seq}")
        return self._issue(_Op(seq, call, future, act, args_text, retry, timeout))

    def sleep(self, seconds: float) -> DurableFuture[None]:
        seq = self._next_seq(Call("sleep", ""))
        return self._issue(
            _Op(seq, Call("sleep", ""), DurableFuture(f"sleep #{seq}"), delay=seconds)
        )

    def wait_signal(self, name: str, timeout: float | None) -> DurableFuture[Any]:
        call = Call("signal", name)
        seq = self._next_seq(call)
        return self._issue(_Op(seq, call, DurableFuture(f"signal {name!r} #{seq}"), delay=timeout))

    def record_value(self, kind: str, produce: Callable[[], Any], name: str = "") -> Any:
        """A value produced once and journaled (with the next commit); replay returns it."""
        call = Call(kind, name)
        seq = self._next_seq(call)
        entry = self.journal.final.get(seq)
        if entry is not None:
            return loads(entry.payload or "null")
        value = produce()
        self.buffer.append(self._entry(seq, RESULT, call, dumps(value)))
        return value

    def cancel_op(self, future: DurableFuture[Any], reason: str) -> None:
        """Withdraw a pending operation: its future fails with Cancelled, nothing is journaled.

        Only for cancellations that follow from a journaled outcome (a boundary timer that
        fired, a flow that ended), so that replay withdraws the same operation again.
        """
        for op in list(self.ops.values()):
            if op.future is future:
                del self.ops[op.seq]
                if op.timer is not None:
                    op.timer.cancel()
                if op.task is not None:
                    op.task.cancel()
                future.set_exception(Cancelled(reason))
                return

    # -- starting operations live ---------------------------------------------------
    def _start_ops(self) -> None:
        waiting, self.unstarted = self.unstarted, []
        # Buffered signals first: a signal that arrived before the worker looked wins over a
        # timer that came due meanwhile (as it does for a wait with a timeout).
        waiting.sort(key=lambda op: op.call.kind != "signal")
        for op in waiting:
            if self.ops.get(op.seq) is not op:
                continue
            if op.call.kind == "activity":
                if self.draining:
                    self.unstarted.append(op)
                else:
                    op.task = asyncio.create_task(self._run_activity(op))
                continue
            if op.call.kind == "signal" and self._match_signal(op):
                continue
            if op.delay is not None:
                self._arm_timer(op)

    def _arm_timer(self, op: _Op) -> None:
        fire_at = self.journal.timers.get(op.seq)
        if fire_at is None:
            fire_at = time.time() + (op.delay or 0.0)
            self.journal.timers[op.seq] = fire_at
            self.buffer.append(self._entry(op.seq, TIMER, op.call, repr(fire_at)))
            self.flush_soon = True
        op.fire_at = fire_at
        if op.call.kind == "sleep":
            due = _Delivery(op, RESULT, "null")
        else:
            message = f"no signal {op.call.name!r} arrived within {op.delay} s"
            due = _Delivery(op, ERROR, dumps({"type": "WaitTimeout", "message": message}))
        delay = fire_at - time.time()
        if delay <= 0:
            self.queue.put_nowait(due)
        else:
            loop = asyncio.get_running_loop()
            op.timer = loop.call_at(loop.time() + delay, self.queue.put_nowait, due)

    def _activities_running(self) -> bool:
        return any(op.task is not None and not op.task.done() for op in self.ops.values())

    async def _run_activity(self, op: _Op) -> None:
        assert op.activity is not None
        act = op.activity
        info = _activity.ActivityInfo(self.fence.run_id, self.workflow.name, act.name, op.seq, 1)
        try:
            args, kwargs = act.codec.decode_args(op.args_text)
            outcome = await _activity.execute(act, args, kwargs, info, op.retry, op.timeout)
        except Exception as exc:  # never leave the workflow waiting on a dead task
            outcome = _activity.Outcome(attempts=1, error=describe_exception(exc))
        if outcome.error is not None:
            payload = dumps({**outcome.error, "attempts": outcome.attempts})
            self.queue.put_nowait(_Delivery(op, ERROR, payload))
        else:
            self.queue.put_nowait(_Delivery(op, RESULT, outcome.result))

    # -- signals and cancellation ---------------------------------------------------
    def _add_signals(self, signals: list[SignalRecord], *, returned: bool = False) -> None:
        for signal in signals:
            if returned or signal.id > self.last_signal_id:
                self.mailbox.append(signal)
                self.last_signal_id = max(self.last_signal_id, signal.id)
        if returned:
            self.mailbox.sort(key=lambda s: s.id)

    def _match_signal(self, op: _Op) -> bool:
        for index, signal in enumerate(self.mailbox):
            if signal.name == op.call.name:
                del self.mailbox[index]
                op.matched = True
                self.queue.put_nowait(_Delivery(op, RESULT, signal.payload, signal))
                return True
        return False

    def _match_waiting(self) -> None:
        """Hand newly known signals to started waits, oldest wait first."""
        for op in sorted(self.ops.values(), key=lambda o: o.seq):
            if not self.mailbox:
                return
            if op.call.kind == "signal" and not op.matched and op not in self.unstarted:
                self._match_signal(op)

    async def _refresh_mailbox(self) -> None:
        run_id = self.fence.run_id
        signals, run = await asyncio.gather(
            self.store.pending_signals(run_id, self.last_signal_id), self.store.get_run(run_id)
        )
        self._add_signals(signals)
        if run is not None:
            self.mailbox_version = run.mailbox_version
            self.cancel_requested = run.cancel_requested
        self._match_waiting()

    def _deliver_cancel(self) -> None:
        """Fail every pending operation with Cancelled: raised at each durable await."""
        pending, self.ops, self.unstarted = list(self.ops.values()), {}, []
        for op in pending:
            if op.timer is not None:
                op.timer.cancel()
            if op.task is not None:
                op.task.cancel()
            op.future.set_exception(Cancelled(f"run {self.fence.run_id!r} was cancelled"))

    def _resolve(self, op: _Op, event: str, payload: str | None) -> None:
        text = payload if payload is not None else "null"
        if event == RESULT:
            try:
                value = (
                    op.activity.codec.decode_result(text)
                    if op.activity is not None
                    else loads(text)
                )
            except SerializationError as exc:
                op.future.set_exception(exc)
                return
            op.future.set_result(value)
            return
        data: dict[str, Any] = loads(text)
        if op.call.kind == "signal":
            op.future.set_exception(WaitTimeout(data["message"]))
        else:
            op.future.set_exception(
                ActivityError(op.call.name, data["type"], data["message"], data.get("attempts", 1))
            )

    # -- non-determinism ------------------------------------------------------------
    def _flag(self, seq: int, recorded: str, requested: str) -> None:
        if self.nondeterminism is None:
            self.nondeterminism = NonDeterminismError(self.fence.run_id, seq, recorded, requested)

    def _waiting_on(self) -> str:
        pending = sorted(self.ops.values(), key=lambda o: o.seq)
        if not pending:
            return "nothing more (the workflow returned)" if self.main.done() else "nothing"
        return "no such call: it waits on " + ", ".join(
            f"{op.call.describe()} at {op.seq}" for op in pending
        )

    def _check_journal_consumed(self) -> None:
        if self.journal.max_seq >= self.next_seq:
            entry = self.journal.first[self.journal.max_seq]
            self._flag(entry.seq, describe_entry(entry), "nothing more (the workflow returned)")


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
