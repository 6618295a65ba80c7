"""Starting operations live and turning their outcomes into deliveries.

Activities run as asyncio tasks, one attempt at a time: a failed attempt that its retry
policy retries comes back as a ``RETRY`` delivery, is journaled with the time of the
next attempt, and that attempt starts when due (after a crash too). Timers fire through
the event loop; signals and finished children come from the run's mailbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from .. import _logging, _tracing
from .._clock import Clock
from .._current import ActivityInfo
from .._future import DurableFuture
from .._values import Values
from .._wire import ChildEnd, Event, Kind, RetryRecord, StoredError, child_start_payload
from ..errors import Cancelled, SerializationError, WaitTimeout, WorkflowFailed
from ..policy import DEFAULT_RETRY
from ..registry import Override
from ..serde import dumps, is_pickled, loads, pickle_loads
from ..store import ChildStart, RunRecord
from . import _activity
from ._cursor import Cursor
from ._mailbox import Mailbox
from ._outbox import Outbox
from ._state import Delivery, LeaseView, Op, SlotLimiter

log = logging.getLogger("durable.runtime")

KEEP_LOADED_FOR = 60.0
"""A run whose only wait is a retry backoff this short stays in memory; longer, it suspends."""
SHORT_WAIT = 2.0
"""A run whose next timer fires this soon stays in memory rather than suspend and be
claimed again at once; this also absorbs small clock skew between workers and Postgres."""


class AttemptObserver(Protocol):
    """Told how each activity attempt went (the worker's metrics)."""

    def observe_attempt(self, workflow: str, activity: str, outcome: str, seconds: float) -> None:
        """``outcome`` is ``ok``, ``retry`` or ``error``; ``seconds`` the attempt's length."""


class Dispatch:
    """The run's pending operations: starts them live and turns outcomes into deliveries.

    Owns the operations the workflow waits on (``ops``), those not started yet, and the
    queue of deliveries the executor's loop consumes. It journals what it starts through
    the outbox (a timer's due time, a child's start) numbered by the cursor, and takes
    signals from the mailbox.
    """

    def __init__(
        self,
        run: RunRecord,
        workflow_name: str,
        cursor: Cursor,
        outbox: Outbox,
        mailbox: Mailbox,
        clock: Clock,
        overrides: Mapping[str, Override],
        limiter: SlotLimiter | None,
        observer: AttemptObserver | None,
        values: Values,
        lease: LeaseView | None = None,
    ) -> None:
        self.run = run
        self.workflow_name = workflow_name
        self.cursor = cursor
        self.outbox = outbox
        self.mailbox = mailbox
        self.clock = clock
        self.overrides = overrides
        self.limiter = limiter
        self.observer = observer
        self.values = values
        self.lease = lease
        """Checked before each attempt starts: a process frozen past its lease (SIGSTOP,
        a long pause) starts nothing for a run it may no longer hold until it renewed."""
        self.ops: dict[int, Op] = {}
        self.unstarted: list[Op] = []
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self.draining = False
        """Start no new activity; the run is given back once those in flight end."""
        self.pausing = False
        """Start nothing new at all (the run is pausing): no activity, child, signal
        wait or timer; the run is given back once the activities in flight end."""
        self.closed = False
        """The run is unloaded: nothing starts any more."""

    def issue(self, op: Op) -> DurableFuture[Any]:
        """Wait on ``op``: it starts with the next ``start_ops`` unless the journal ended it."""
        self.ops[op.seq] = op
        if op.seq not in self.cursor.journal.final:
            self.unstarted.append(op)
        return op.future

    def start_ops(self) -> None:
        waiting, self.unstarted = self.unstarted, []
        # Buffered signals first: a signal that arrived before the worker looked wins over a
        # timer that came due meanwhile (as it does for a wait with a timeout).
        waiting.sort(key=lambda op: not op.wait)
        journal = self.cursor.journal
        for op in waiting:
            if self.ops.get(op.seq) is not op:
                continue
            if self.pausing:
                self.unstarted.append(op)
                continue
            if op.call.kind == Kind.ACTIVITY:
                if self.draining:
                    self.unstarted.append(op)
                    continue
                retry = journal.retries.get(op.seq)
                if retry is None:
                    self.launch_attempt(op)
                else:
                    op.attempt = retry[0]
                    self.schedule_attempt(op, retry[1])
                continue
            if op.call.kind == Kind.CHILD:
                self._create_child(op)
            if op.wait and self._match_signal(op):
                continue
            if op.delay is not None:
                self._arm_timer(op)

    def _create_child(self, op: Op) -> None:
        started = self.cursor.journal.started
        if op.seq in started:
            return
        assert op.workflow is not None
        started[op.seq] = op.child_id
        # The child waits in its workflow's queue, else in its parent's, at its priority.
        queue = op.workflow.queue or self.run.queue
        child = ChildStart(
            op.child_id,
            op.workflow.name,
            op.args_text,
            queue,
            self.run.priority,
            _tracing.inject(),  # the current run span: the child's spans join its trace
        )
        entry = self.cursor.entry(op.seq, Event.START, op.call, child_start_payload(op.child_id))
        self.outbox.add_child(child, entry)

    def _arm_timer(self, op: Op) -> None:
        timers = self.cursor.journal.timers
        fire_at = timers.get(op.seq)
        if fire_at is None:
            fire_at = self.clock.now() + (op.delay or 0.0)
            timers[op.seq] = fire_at
            entry = self.cursor.entry(op.seq, Event.TIMER, op.call, repr(fire_at))
            self.outbox.add(entry, urgent=True)
        op.fire_at = fire_at
        if op.call.kind == Kind.SLEEP:
            due = Delivery(op, Event.RESULT, "null")
        else:
            message = f"no signal {op.call.name!r} arrived within {op.delay} s"
            due = Delivery(op, Event.ERROR, StoredError("WaitTimeout", message).dumps())
        self._call_at(fire_at, self.queue.put_nowait, due, op)

    def _call_at(self, at: float, fn: Any, arg: Any, op: Op) -> None:
        delay = at - self.clock.now()
        if delay <= 0:
            fn(arg)
        else:
            op.timer = self.clock.call_later(delay, fn, arg)

    # -- what the loop asks ---------------------------------------------------------
    def current(self, op: Op) -> bool:
        """Whether ``op`` is still pending (a delivery for a withdrawn op is dropped)."""
        return self.ops.get(op.seq) is op

    def pop(self, seq: int) -> Op | None:
        return self.ops.pop(seq, None)

    def retire(self, op: Op) -> None:
        """``op`` ended: forget it and its timer."""
        del self.ops[op.seq]
        if op.timer is not None:
            op.timer.cancel()

    def pending(self) -> list[Op]:
        """The operations the workflow waits on, in call order."""
        return sorted(self.ops.values(), key=lambda o: o.seq)

    def waiting_on(self, returned: bool) -> str:
        """What the workflow waits on, as a non-determinism report says it."""
        pending = self.pending()
        if not pending:
            return "nothing more (the workflow returned)" if returned else "nothing"
        return "no such call: it waits on " + ", ".join(
            f"{op.call.describe()} at {op.seq}" for op in pending
        )

    def waits(self) -> tuple[list[float], tuple[str, ...]]:
        """When the pending operations' timers fire, and the signals that end them."""
        names = tuple(sorted({op.wait for op in self.ops.values() if op.wait}))
        return [op.fire_at for op in self.ops.values() if op.fire_at], names

    def starts_effects(self) -> bool:
        """Whether an activity or a child is about to start."""
        effects = (Kind.ACTIVITY, Kind.CHILD)
        return any(op.call.kind in effects for op in self.unstarted)

    def held_back(self) -> bool:
        """Whether draining keeps an activity from starting (now or after its backoff)."""
        return bool(self.unstarted) or self.in_backoff()

    def drain(self) -> None:
        self.draining = True
        self.queue.put_nowait(Delivery(None))

    def pause(self) -> None:
        """The run is pausing: start nothing new, give it back when the activities in
        flight have ended (their results are journaled)."""
        self.pausing = True
        self.drain()

    def close(self) -> None:
        """The run is unloaded: cancel every timer and attempt."""
        self.closed = True
        for op in self.ops.values():
            if op.timer is not None:
                op.timer.cancel()
            if op.task is not None:
                op.task.cancel()

    # -- activities -----------------------------------------------------------------
    def retry(self, op: Op, attempt: int, at: float) -> None:
        """The attempt failed and is journaled: attempt ``attempt`` starts at ``at``."""
        op.attempt = attempt
        self.cursor.journal.retries[op.seq] = (attempt, at)
        self.schedule_attempt(op, at)

    def schedule_attempt(self, op: Op, at: float) -> None:
        """Start the op's next attempt at ``at`` (seconds since the epoch)."""
        op.fire_at = at
        self._call_at(at, self.launch_attempt, op, op)

    def launch_attempt(self, op: Op) -> None:
        op.timer = None
        if self.closed or self.ops.get(op.seq) is not op:
            return
        if self.draining:  # give the run back rather than start anything new
            self.unstarted.append(op)
            self.queue.put_nowait(Delivery(None))
            return
        op.fire_at = None
        op.task = asyncio.create_task(self._run_attempt(op))

    def activities_running(self) -> bool:
        """Whether an activity runs now, or something is due soon enough to stay loaded."""
        now, activity = self.clock.now(), Kind.ACTIVITY
        for op in self.ops.values():
            if op.task is not None and not op.task.done():
                return True
            if self.draining or op.fire_at is None:
                continue
            horizon = KEEP_LOADED_FOR if op.call.kind == activity else SHORT_WAIT
            if op.fire_at <= now + horizon:
                return True
        return False

    def attempt_running(self) -> bool:
        return any(op.task is not None and not op.task.done() for op in self.ops.values())

    def in_backoff(self) -> bool:
        activity = Kind.ACTIVITY
        return any(op.call.kind == activity and op.timer is not None for op in self.ops.values())

    async def _run_attempt(self, op: Op) -> None:
        act = op.activity
        assert act is not None
        policy = op.retry or act.retry or DEFAULT_RETRY
        if self.overrides and act.name in self.overrides:
            act = self.overrides[act.name](act)
        limit = op.timeout if op.timeout is not None else act.timeout
        info = ActivityInfo(self.run.id, self.workflow_name, act.name, op.seq, op.attempt)
        began = time.perf_counter()
        workflow = self.run.workflow  # a flow's definition id, not the flow runner's
        with _tracing.activity_span(workflow, act.name, op.seq, op.attempt) as span:
            try:  # records made in the attempt carry its step, seq and attempt (_logging)
                if act.queue is None or self.limiter is None:
                    await self._check_lease()
                    outcome = await _activity.run_attempt(
                        act, op.args_text, info, policy, limit, self.values
                    )
                else:  # the attempt waits for room in its queue; a backoff holds none
                    async with self.limiter.slot(act.queue):
                        await self._check_lease()
                        outcome = await _activity.run_attempt(
                            act, op.args_text, info, policy, limit, self.values
                        )
            except Exception as exc:  # never leave the workflow waiting on a dead task
                outcome = _activity.Outcome(op.attempt, error=StoredError.from_exception(exc))
            verdict = (
                "ok" if outcome.error is None else "error" if outcome.retry_in is None else "retry"
            )
            span.finish(verdict, outcome.error)
        if self.observer is not None:
            self.observer.observe_attempt(workflow, act.name, verdict, time.perf_counter() - began)
        at = None if outcome.retry_in is None else self.clock.now() + outcome.retry_in
        if outcome.error is not None:
            _log_failed_attempt(
                self.run.id, act.name, op, policy.max_attempts, outcome.error, at, outcome.pause
            )
        if outcome.pause and outcome.error is not None:  # attempt 1 again after the resume
            retry = RetryRecord(1, self.clock.now(), outcome.error)
            reason = (
                f"activity {act.name!r} failed {op.attempt} time(s), last with"
                f" {outcome.error.type}: {outcome.error.message}"
            )
            self.queue.put_nowait(Delivery(op, Event.RETRY, retry.dumps(), pause=reason))
        elif at is not None:
            retry = RetryRecord(op.attempt + 1, at, outcome.error)
            self.queue.put_nowait(Delivery(op, Event.RETRY, retry.dumps()))
        elif outcome.error is not None:
            payload = outcome.error.with_attempts(op.attempt).dumps()
            self.queue.put_nowait(Delivery(op, Event.ERROR, payload))
        else:
            self.queue.put_nowait(Delivery(op, Event.RESULT, outcome.result))

    async def _check_lease(self) -> None:
        lease = self.lease
        if lease is not None and not lease.valid():
            await lease.wait_valid()

    # -- signals, children and cancellation -----------------------------------------
    def _match_signal(self, op: Op) -> bool:
        signal = self.mailbox.take(op.wait)
        if signal is None:
            return False
        op.matched = True
        self.queue.put_nowait(Delivery(op, Event.RESULT, signal.payload, signal))
        return True

    def match_waiting(self) -> None:
        """Hand newly known signals to started waits, oldest wait first (none while the
        run pauses: they take effect after the resume)."""
        if self.pausing:
            return
        for op in self.pending():
            if self.mailbox.empty():
                return
            if op.wait and not op.matched and op not in self.unstarted:
                self._match_signal(op)

    def cancel(self, future: DurableFuture[Any], reason: str) -> None:
        """Withdraw the pending operation of ``future``: it fails with ``Cancelled``."""
        for op in list(self.ops.values()):
            if op.future is future:
                del self.ops[op.seq]
                if op.timer is not None:
                    op.timer.cancel()
                if op.task is not None:
                    op.task.cancel()
                future.set_exception(Cancelled(reason))
                return

    def cancel_all(self) -> None:
        """Fail every pending operation with Cancelled: raised at each durable await."""
        pending, self.ops, self.unstarted = list(self.ops.values()), {}, []
        for op in pending:
            if op.timer is not None:
                op.timer.cancel()
            if op.task is not None:
                op.task.cancel()
            op.future.set_exception(Cancelled(f"run {self.run.id!r} was cancelled"))


def _log_failed_attempt(
    run_id: str,
    activity: str,
    op: Op,
    attempts: int,
    error: StoredError,
    at: float | None,
    pause: bool,
) -> None:
    """One WARNING line per failed attempt: what failed, and whether and when it is tried
    again (the journal keeps the error; this is what an operator watching the log sees)."""
    with _logging.bind(step=activity, seq=op.seq, attempt=op.attempt):
        log.warning(
            "run %s: activity %s attempt %d/%d failed: %s: %s; %s",
            run_id,
            activity,
            op.attempt,
            attempts,
            error.type,
            error.message,
            "the run pauses until resumed"
            if pause
            else "not retried"
            if at is None
            else f"next attempt at {_logging.iso_time(at)}",
        )


def resolve(op: Op, event: Event, payload: str | None) -> None:
    """Hand an operation's journaled outcome to the workflow."""
    text = payload if payload is not None else "null"
    kind = op.call.kind
    try:
        if kind == Kind.CHILD:
            op.future.set_result(_child_result(op, ChildEnd.loads(text)))
        elif event == Event.RESULT:
            codec = op.activity.codec if op.activity is not None else None
            if codec is not None:
                op.future.set_result(codec.decode_result(text))
            elif op.pickled and is_pickled(text):
                op.future.set_result(pickle_loads(text, f"signal {op.call.name!r}"))
            else:
                op.future.set_result(loads(text))
        elif kind == Kind.SIGNAL:
            op.future.set_exception(WaitTimeout(StoredError.loads(text).message))
        else:
            op.future.set_exception(StoredError.loads(text).activity_error(op.call.name))
    except (SerializationError, WorkflowFailed) as exc:
        op.future.set_exception(exc)


def _child_result(op: Op, end: ChildEnd) -> Any:
    """The result of a finished child, or the WorkflowFailed it ended with."""
    if end.status == "COMPLETED":
        assert op.workflow is not None
        return op.workflow.codec.decode_result(dumps(end.result))
    raise end.failure()
