"""Starting operations live and turning their outcomes into deliveries.

Activities run as asyncio tasks, one attempt at a time: a failed attempt that its retry
policy retries comes back as a ``RETRY`` delivery, is journaled with the time of the
next attempt, and that attempt starts when due (after a crash too). Timers fire through
the event loop; signals and finished children come from the run's mailbox.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from .. import _logging, _tracing
from ..errors import (
    ActivityError,
    Cancelled,
    SerializationError,
    WaitTimeout,
    WorkflowFailed,
    describe_exception,
)
from ..policy import DEFAULT_RETRY
from ..serde import dumps, loads
from ..store import ChildStart, SignalRecord, child_start_payload
from . import _activity
from ._journal import ERROR, RESULT, RETRY, START, TIMER, Call
from ._state import Delivery, Op, RunState

KEEP_LOADED_FOR = 60.0
"""A run whose only wait is a retry backoff this short stays in memory; longer, it suspends."""
SHORT_WAIT = 2.0
"""A run whose next timer fires this soon stays in memory rather than suspend and be
claimed again at once; this also absorbs small clock skew between workers and Postgres."""


class AttemptObserver(Protocol):
    """Told how each activity attempt went (the worker's metrics)."""

    def observe_attempt(self, workflow: str, activity: str, outcome: str, seconds: float) -> None:
        """``outcome`` is ``ok``, ``retry`` or ``error``; ``seconds`` the attempt's length."""


class Dispatch(RunState):
    """Starts operations live and turns their outcomes into deliveries."""

    observer: AttemptObserver | None = None

    def start_ops(self) -> None:
        waiting, self.unstarted = self.unstarted, []
        # Buffered signals first: a signal that arrived before the worker looked wins over a
        # timer that came due meanwhile (as it does for a wait with a timeout).
        waiting.sort(key=lambda op: not op.wait)
        for op in waiting:
            if self.ops.get(op.seq) is not op:
                continue
            if op.call.kind == "activity":
                if self.draining:
                    self.unstarted.append(op)
                    continue
                retry = self.journal.retries.get(op.seq)
                if retry is None:
                    self.launch_attempt(op)
                else:
                    op.attempt = retry[0]
                    self.schedule_attempt(op, retry[1])
                continue
            if op.call.kind == "child":
                self._create_child(op)
            if op.wait and self._match_signal(op):
                continue
            if op.delay is not None:
                self._arm_timer(op)

    def _create_child(self, op: Op) -> None:
        if op.seq in self.journal.started:
            return
        assert op.workflow is not None
        self.journal.started[op.seq] = op.child_id
        # The child waits in its workflow's queue, else in its parent's, at its priority.
        queue = op.workflow.queue or self.run_record.queue
        child = ChildStart(
            op.child_id,
            op.workflow.name,
            op.args_text,
            queue,
            self.run_record.priority,
            _tracing.inject(),  # the current run span: the child's spans join its trace
        )
        self.children.append(child)
        self.buffer.append(self.entry(op.seq, START, op.call, child_start_payload(op.child_id)))
        self.flush_soon = True

    def _arm_timer(self, op: Op) -> None:
        fire_at = self.journal.timers.get(op.seq)
        if fire_at is None:
            fire_at = self.clock.now() + (op.delay or 0.0)
            self.journal.timers[op.seq] = fire_at
            self.buffer.append(self.entry(op.seq, TIMER, op.call, repr(fire_at)))
            self.flush_soon = True
        op.fire_at = fire_at
        if op.call.kind == "sleep":
            due = Delivery(op, RESULT, "null")
        else:
            message = f"no signal {op.call.name!r} arrived within {op.delay} s"
            due = Delivery(op, ERROR, dumps({"type": "WaitTimeout", "message": message}))
        self._call_at(fire_at, self.queue.put_nowait, due, op)

    def _call_at(self, at: float, fn: Any, arg: Any, op: Op) -> None:
        delay = at - self.clock.now()
        if delay <= 0:
            fn(arg)
        else:
            op.timer = self.clock.call_later(delay, fn, arg)

    # -- activities -----------------------------------------------------------------
    def schedule_attempt(self, op: Op, at: float) -> None:
        """Start the op's next attempt at ``at`` (seconds since the epoch)."""
        op.fire_at = at
        self._call_at(at, self.launch_attempt, op, op)

    def launch_attempt(self, op: Op) -> None:
        op.timer = None
        if self.unloading or self.ops.get(op.seq) is not op:
            return
        if self.draining:  # give the run back rather than start anything new
            self.unstarted.append(op)
            self.queue.put_nowait(Delivery(None))
            return
        op.fire_at = None
        op.task = asyncio.create_task(self._run_attempt(op))

    def activities_running(self) -> bool:
        """Whether an activity runs now, or something is due soon enough to stay loaded."""
        now = self.clock.now()
        for op in self.ops.values():
            if op.task is not None and not op.task.done():
                return True
            if self.draining or op.fire_at is None:
                continue
            horizon = KEEP_LOADED_FOR if op.call.kind == "activity" else SHORT_WAIT
            if op.fire_at <= now + horizon:
                return True
        return False

    def in_backoff(self) -> bool:
        return any(op.call.kind == "activity" and op.timer is not None for op in self.ops.values())

    async def _run_attempt(self, op: Op) -> None:
        act = op.activity
        assert act is not None
        policy = op.retry or act.retry or DEFAULT_RETRY
        if self.overrides and act.name in self.overrides:
            act = self.overrides[act.name](act)
        limit = op.timeout if op.timeout is not None else act.timeout
        info = _activity.ActivityInfo(
            self.fence.run_id, self.workflow.name, act.name, op.seq, op.attempt
        )
        began = time.perf_counter()
        workflow = self.run_record.workflow  # a flow's definition id, not the flow runner's
        with _tracing.activity_span(workflow, act.name, op.seq, op.attempt) as span:
            try:
                with _logging.bind(step=act.name, seq=op.seq, attempt=op.attempt):
                    if act.queue is None or self.limiter is None:
                        outcome = await _activity.run_attempt(
                            act, op.args_text, info, policy, limit
                        )
                    else:  # the attempt waits for room in its queue; a backoff holds none
                        async with self.limiter.slot(act.queue):
                            outcome = await _activity.run_attempt(
                                act, op.args_text, info, policy, limit
                            )
            except Exception as exc:  # never leave the workflow waiting on a dead task
                outcome = _activity.Outcome(op.attempt, error=describe_exception(exc))
            verdict = (
                "ok" if outcome.error is None else "error" if outcome.retry_in is None else "retry"
            )
            span.finish(verdict, outcome.error)
        if self.observer is not None:
            self.observer.observe_attempt(workflow, act.name, verdict, time.perf_counter() - began)
        if outcome.retry_in is not None:
            retry = {"attempt": op.attempt + 1, "at": self.clock.now() + outcome.retry_in}
            self.queue.put_nowait(Delivery(op, RETRY, dumps({**retry, "error": outcome.error})))
        elif outcome.error is not None:
            payload = dumps({**outcome.error, "attempts": op.attempt})
            self.queue.put_nowait(Delivery(op, ERROR, payload))
        else:
            self.queue.put_nowait(Delivery(op, RESULT, outcome.result))

    # -- signals, children and cancellation -----------------------------------------
    def add_signals(self, signals: list[SignalRecord], *, returned: bool = False) -> None:
        for signal in signals:
            if returned or signal.id > self.last_signal_id:
                self.mailbox.append(signal)
                self.last_signal_id = max(self.last_signal_id, signal.id)
        if returned:
            self.mailbox.sort(key=lambda s: s.id)

    def _match_signal(self, op: Op) -> bool:
        for index, signal in enumerate(self.mailbox):
            if signal.name == op.wait:
                del self.mailbox[index]
                op.matched = True
                self.queue.put_nowait(Delivery(op, RESULT, signal.payload, signal))
                return True
        return False

    def match_waiting(self) -> None:
        """Hand newly known signals to started waits, oldest wait first."""
        for op in sorted(self.ops.values(), key=lambda o: o.seq):
            if not self.mailbox:
                return
            if op.wait and not op.matched and op not in self.unstarted:
                self._match_signal(op)

    async def refresh_mailbox(self) -> None:
        run_id = self.fence.run_id
        # The run first, then its signals: a signal committed in between is then read
        # (its version bump may be missed, not the signal). Read the other way round, the
        # version could count a signal the mailbox lacks, and the run would sleep on it.
        run = await self.store.get_run(run_id)
        signals = await self.store.pending_signals(run_id, self.last_signal_id)
        self.add_signals(signals)
        if run is not None:
            self.mailbox_version = run.mailbox_version
            self.cancel_requested = run.cancel_requested
        self.match_waiting()

    def deliver_cancel(self) -> None:
        """Fail every pending operation with Cancelled: raised at each durable await."""
        pending, self.ops, self.unstarted = list(self.ops.values()), {}, []
        for op in pending:
            if op.timer is not None:
                op.timer.cancel()
            if op.task is not None:
                op.task.cancel()
            op.future.set_exception(Cancelled(f"run {self.fence.run_id!r} was cancelled"))

    def resolve(self, op: Op, event: str, payload: str | None) -> None:
        text = payload if payload is not None else "null"
        try:
            if op.call.kind == "child":
                op.future.set_result(_child_result(op, loads(text)))
            elif event == RESULT:
                codec = op.activity.codec if op.activity is not None else None
                op.future.set_result(codec.decode_result(text) if codec else loads(text))
            elif op.call.kind == "signal":
                op.future.set_exception(WaitTimeout(loads(text)["message"]))
            else:
                op.future.set_exception(_activity_error(op.call, loads(text)))
        except (SerializationError, WorkflowFailed) as exc:
            op.future.set_exception(exc)


def _child_result(op: Op, data: dict[str, Any]) -> Any:
    """The result of a finished child, or the WorkflowFailed it ended with."""
    if data["status"] == "COMPLETED":
        assert op.workflow is not None
        return op.workflow.codec.decode_result(dumps(data["result"]))
    error = data.get("error") or {}
    raise WorkflowFailed(
        data["run_id"],
        data["status"],
        error.get("type", "Error"),
        error.get("message", ""),
        error.get("traceback", ""),
    )


def _activity_error(call: Call, data: dict[str, Any]) -> ActivityError:
    causes = tuple((str(t), str(m)) for t, m in data.get("causes", ()))
    return ActivityError(
        call.name,
        data["type"],
        data["message"],
        data.get("attempts", 1),
        causes=causes,
        traceback=data.get("traceback", ""),
    )
