"""The operations workflow code asks for (through ``Context``): each is numbered in call order.

An operation that waits (an activity, a sleep, a signal, a child run) becomes an ``Op``
whose future the workflow awaits; one answered at once (a recorded value, a patch
marker, an event) is buffered as a journal entry that rides along with the next commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from ..errors import Cancelled, ContinueAsNew
from ..info import RunInfo
from ..policy import RetryPolicy
from ..registry import Activity, Workflow
from ..serde import dumps, fingerprint, loads
from ..store import child_signal
from ._future import DurableFuture
from ._journal import RESULT, Call
from ._state import Op, RunState

VOLATILE_KINDS = frozenset({"now", "random", "uuid4"})
"""Recorded values that differ on every call: journaled before any activity can use them."""


class Operations(RunState):
    """What ``Context`` calls on the executor."""

    def run_info(self) -> RunInfo:
        return RunInfo(self.fence.run_id, self.workflow.name, self.fence.epoch, self.replaying)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> DurableFuture[Any]:
        return self.scheduler.spawn(coro, name)

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
        seq = self.take_seq(call)
        future: DurableFuture[Any] = DurableFuture(f"activity {act.name!r} #{seq}")
        return self.issue(Op(seq, call, future, act, args_text, retry, timeout))

    def sleep(self, seconds: float) -> DurableFuture[None]:
        seq = self.take_seq(Call("sleep", ""))
        return self.issue(Op(seq, Call("sleep", ""), DurableFuture(f"sleep #{seq}"), delay=seconds))

    def wait_signal(self, name: str, timeout: float | None) -> DurableFuture[Any]:
        call = Call("signal", name)
        seq = self.take_seq(call)
        future: DurableFuture[Any] = DurableFuture(f"signal {name!r} #{seq}")
        return self.issue(Op(seq, call, future, delay=timeout, wait=name))

    def start_child(
        self,
        workflow: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        child_id: str | None,
    ) -> tuple[str, DurableFuture[Any]]:
        """Number a child run; it is created with the commit that journals its start."""
        args_text = workflow.codec.encode_args(args, kwargs)
        call = Call("child", workflow.name, fingerprint(args_text))
        seq = self.take_seq(call)
        run_id = (
            child_id
            or self.journal.started.get(seq)
            or f"{self.fence.run_id}/{seq}-{uuid.uuid4().hex[:8]}"
        )
        future: DurableFuture[Any] = DurableFuture(f"child {workflow.name!r} {run_id!r}")
        op = Op(seq, call, future, args_text=args_text, wait=child_signal(run_id))
        op.workflow, op.child_id = workflow, run_id
        return run_id, self.issue(op)

    def record_value(self, kind: str, produce: Callable[[], Any], name: str = "") -> Any:
        """A value produced once and journaled (with the next commit); replay returns it."""
        call = Call(kind, name)
        seq = self.take_seq(call)
        recorded = self.journal.final.get(seq)
        if recorded is not None:
            return loads(recorded.payload or "null")
        value = produce()
        self.buffer.append(self.entry(seq, RESULT, call, dumps(value)))
        self.volatile = self.volatile or kind in VOLATILE_KINDS
        return value

    def set_event(self, key: str, value: Any) -> None:
        """Publish ``value`` under ``key`` with the next commit, which happens soon."""
        call = Call("event", key)
        seq = self.take_seq(call)
        if seq in self.journal.final:
            return  # published when this point first ran
        text = dumps(value)
        self.buffer.append(self.entry(seq, RESULT, call, text))
        self.events.append((key, text))
        self.flush_soon = True

    def patched(self, change_id: str) -> bool:
        """Whether this run takes the code path of ``change_id`` (see ``Context.patched``)."""
        known = self.patches.get(change_id)
        if known is not None:
            return known
        seq = self.next_seq
        recorded = self.journal.first.get(seq)
        if recorded is not None and recorded.kind == "patch" and recorded.name == change_id:
            taken = True
            self.take_seq(Call("patch", change_id))
        elif self.journal.max_seq >= seq:
            taken = False  # the run went past this point before the change: the old path
        else:
            taken = True  # new ground: mark it, so replay takes the new path again
            self.record_value("patch", lambda: True, change_id)
        self.patches[change_id] = taken
        return taken

    def deprecate_patch(self, change_id: str) -> None:
        """Consume the marker of a patch whose old path is gone, if this run has it."""
        recorded = self.journal.first.get(self.next_seq)
        if recorded is not None and recorded.kind == "patch" and recorded.name == change_id:
            self.take_seq(Call("patch", change_id))

    def continue_as_new(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ContinueAsNew:
        """The exception that ends this journal; the run restarts with these arguments."""
        return ContinueAsNew(self.workflow.codec.encode_args(args, kwargs))

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
