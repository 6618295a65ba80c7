"""The operations workflow code asks for: the executor's side of ``WorkflowHost``.

An operation that waits (an activity, a sleep, a signal, a child run) becomes an ``Op``
whose future the workflow awaits; one answered at once (a recorded value, a patch
marker, an event) is buffered as a journal entry that rides along with the next commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from .._clock import Clock
from .._future import DurableFuture
from .._values import Values
from .._wire import Event, Kind, child_signal
from ..errors import ContinueAsNew
from ..info import RunInfo, check_tags
from ..policy import RetryPolicy
from ..registry import Activity, Workflow
from ..serde import dumps, loads, pickle_dumps
from ..store import Fence
from ._cursor import Cursor
from ._dispatch import Dispatch
from ._journal import Call
from ._outbox import Outbox
from ._scheduler import Scheduler
from ._state import Op

VOLATILE_KINDS = frozenset({Kind.NOW, Kind.RANDOM, Kind.UUID4})
"""Recorded values that differ on every call: journaled before any activity can use them."""


class Operations:
    """What ``Context``, decorated activities and the flow interpreter call (a ``Host``)."""

    def __init__(
        self,
        fence: Fence,
        workflow: Workflow[Any, Any],
        clock: Clock,
        cursor: Cursor,
        outbox: Outbox,
        dispatch: Dispatch,
        scheduler: Scheduler,
        values: Values,
        name: str,
    ) -> None:
        self.fence = fence
        self.workflow = workflow
        self.clock = clock
        self.cursor = cursor
        self.outbox = outbox
        self.dispatch = dispatch
        self.scheduler = scheduler
        self.values = values
        self.name = name
        self.replaying = True
        self.prepared: Any = None
        """What the workflow's ``prepare`` hook loaded before replay (a flow's plan)."""
        self.patches: dict[str, bool] = {}

    @property
    def next_seq(self) -> int:
        return self.cursor.next_seq

    def run_info(self) -> RunInfo:
        """The run as its workflow sees it; ``workflow`` is the run's workflow as stored
        (a JSON flow's definition id, not the flow runner's name)."""
        return RunInfo(self.fence.run_id, self.name, self.fence.epoch, self.replaying)

    def now(self) -> float:
        return self.clock.now()

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
        act = act.for_app(self.values.serializer)
        args_text = act.codec.encode_args(args, kwargs)
        call = Call(Kind.ACTIVITY, act.name, act.codec.fingerprint(args_text))
        seq = self.cursor.take(call)
        future: DurableFuture[Any] = DurableFuture(f"activity {act.name!r} #{seq}")
        return self.dispatch.issue(Op(seq, call, future, act, args_text, retry, timeout))

    def sleep(self, seconds: float) -> DurableFuture[None]:
        call = Call(Kind.SLEEP, "")
        seq = self.cursor.take(call)
        return self.dispatch.issue(Op(seq, call, DurableFuture(f"sleep #{seq}"), delay=seconds))

    def wait_signal(self, name: str, timeout: float | None) -> DurableFuture[Any]:
        call = Call(Kind.SIGNAL, name)
        seq = self.cursor.take(call)
        future: DurableFuture[Any] = DurableFuture(f"signal {name!r} #{seq}")
        pickled = self.workflow.serializer == "pickle"
        op = Op(seq, call, future, delay=timeout, wait=name, pickled=pickled)
        return self.dispatch.issue(op)

    def start_child(
        self,
        workflow: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        child_id: str | None,
    ) -> tuple[str, DurableFuture[Any]]:
        """Number a child run; it is created with the commit that journals its start."""
        workflow = workflow.for_app(self.values.serializer)
        args_text = workflow.codec.encode_args(args, kwargs)
        self.values.check(
            args_text, self.fence.run_id, f"start arguments of child workflow {workflow.name!r}"
        )
        call = Call(Kind.CHILD, workflow.name, workflow.codec.fingerprint(args_text))
        seq = self.cursor.take(call)
        run_id = (
            child_id
            or self.cursor.journal.started.get(seq)
            or f"{self.fence.run_id}/{seq}-{uuid.uuid4().hex[:8]}"
        )
        future: DurableFuture[Any] = DurableFuture(f"child {workflow.name!r} {run_id!r}")
        op = Op(seq, call, future, args_text=args_text, wait=child_signal(run_id))
        op.workflow, op.child_id = workflow, run_id
        return run_id, self.dispatch.issue(op)

    def record_value(self, kind: Kind, produce: Callable[[], Any], name: str = "") -> Any:
        call = Call(kind, name)
        seq = self.cursor.take(call)
        recorded = self.cursor.journal.final.get(seq)
        if recorded is not None:
            return loads(recorded.payload or "null")
        value = produce()
        entry = self.cursor.entry(seq, Event.RESULT, call, dumps(value))
        self.outbox.add(entry, volatile=kind in VOLATILE_KINDS)
        return value

    def set_event(self, key: str, value: Any) -> None:
        call = Call(Kind.EVENT, key)
        seq = self.cursor.take(call)
        if seq in self.cursor.journal.final:
            return  # published when this point first ran
        if self.workflow.serializer == "pickle":
            text = pickle_dumps(value, f"event {key!r} of run {self.fence.run_id!r}")
        else:
            text = dumps(value)
        self.values.check(text, self.fence.run_id, f"event {key!r} value")
        self.outbox.add_event(key, text, self.cursor.entry(seq, Event.RESULT, call, text))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        pairs = check_tags(tags, f"run {self.fence.run_id!r}")
        call = Call(Kind.TAGS, ",".join(key for key, _ in pairs))
        seq = self.cursor.take(call)
        if seq in self.cursor.journal.final:
            return  # written when this point first ran
        self.outbox.add_tags(pairs, self.cursor.entry(seq, Event.RESULT, call, dumps(dict(pairs))))

    def patched(self, change_id: str) -> bool:
        known = self.patches.get(change_id)
        if known is not None:
            return known
        if self.cursor.marker(change_id):
            taken = True
            self.cursor.take(Call(Kind.PATCH, change_id))
        elif self.cursor.passed():
            taken = False  # the run went past this point before the change: the old path
        else:
            taken = True  # new ground: mark it, so replay takes the new path again
            self.record_value(Kind.PATCH, lambda: True, change_id)
        self.patches[change_id] = taken
        return taken

    def deprecate_patch(self, change_id: str) -> None:
        if self.cursor.marker(change_id):
            self.cursor.take(Call(Kind.PATCH, change_id))

    def continue_as_new(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ContinueAsNew:
        return ContinueAsNew(self.workflow.codec.encode_args(args, kwargs))

    def cancel_op(self, future: DurableFuture[Any], reason: str) -> None:
        self.dispatch.cancel(future, reason)

    def flush_soon(self) -> None:
        self.outbox.hurry()
