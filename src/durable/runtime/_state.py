"""The state of one executing run, shared by the executor's parts.

``RunState`` holds what the executor knows about a claimed run and the helpers every
part needs (numbering operations, building journal entries, flagging non-determinism).
``_operations`` adds what workflow code calls, ``_dispatch`` how operations start live
and how their results come back, ``_executor`` the loop that replays, commits and
suspends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from .._clock import REAL, Clock, Timer
from ..errors import NonDeterminismError
from ..policy import RetryPolicy
from ..registry import Activity, Workflow
from ..store import ChildStart, Fence, JournalEntry, RunRecord, SignalRecord, Store
from ._context import Context
from ._future import DurableFuture
from ._journal import Call, Journal
from ._scheduler import Scheduler


class Abort(BaseException):
    """Unwinds workflow code after a non-determinism report or while the run is unloaded."""


@dataclass(eq=False, slots=True)
class Op:
    """A durable operation the workflow is waiting on."""

    seq: int
    call: Call
    future: DurableFuture[Any]
    activity: Activity[Any, Any] | None = None
    args_text: str = ""
    retry: RetryPolicy | None = None
    timeout: float | None = None
    delay: float | None = None  # a sleep's duration, a signal wait's timeout
    fire_at: float | None = None  # when its timer fires, or its next attempt starts
    timer: Timer | None = None
    task: asyncio.Task[None] | None = None
    wait: str = ""  # the signal that ends it: a signal wait's name, a child's end
    matched: bool = False  # a signal is on its way to this wait
    attempt: int = 1  # an activity's current attempt
    workflow: Workflow[Any, Any] | None = None  # a child's workflow
    child_id: str = ""


@dataclass(slots=True)
class Delivery:
    """Something to journal and hand to the workflow, or news for the executor's loop."""

    op: Op | None
    event: str = ""
    payload: str | None = None
    signal: SignalRecord | None = None
    refresh: bool = False  # new signals or a cancellation request may be waiting
    stop: bool = False  # the lease is lost
    expired: bool = False  # the workflow's execution timeout passed


Override = Callable[[Activity[Any, Any]], Activity[Any, Any]]
"""Given the activity a workflow called, the one to run instead (``durable.testing`` mocks)."""


class SlotLimiter(Protocol):
    """Holds activity attempts to their queue's limits (the worker's ``QueueLimiter``)."""

    def slot(self, queue_name: str | None) -> AbstractAsyncContextManager[None]: ...


class RunState:
    """What the executor knows about one claimed run."""

    ctx: Context
    clock: Clock = REAL
    """Where the executor reads the time and sets its timers (the App's clock)."""
    overrides: Mapping[str, Override] = MappingProxyType({})
    """Activity overrides by activity name (empty outside ``durable.testing``)."""
    limiter: SlotLimiter | None = None
    """The worker's queue limits for activities that name a queue."""

    def __init__(self, store: Store, run: RunRecord, workflow: Workflow[Any, Any]) -> None:
        self.store = store
        self.run_record = run
        self.workflow = workflow
        self.fence = Fence(run.id, run.epoch)
        self.mailbox_version = run.mailbox_version
        self.cancel_requested = run.cancel_requested
        self.scheduler = Scheduler()
        self.journal = Journal([])
        self.replaying = True
        self.unloading = False
        self.draining = False
        self.next_seq = 1
        self.next_pos = 0
        self.ops: dict[int, Op] = {}
        self.unstarted: list[Op] = []
        self.buffer: list[JournalEntry] = []
        self.flush_soon = False  # the buffer holds what must not wait for the next result
        self.volatile = False  # the buffer holds ctx.now()/random()/uuid4() values
        self.children: list[ChildStart] = []  # children to create with the next commit
        self.events: list[tuple[str, str]] = []  # events to publish with the next commit
        self.patches: dict[str, bool] = {}
        self.mailbox: list[SignalRecord] = []
        self.last_signal_id = 0
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self.nondeterminism: NonDeterminismError | None = None
        self.main: DurableFuture[Any] = DurableFuture("main")
        self.prepared: Any = None
        """What the workflow's ``prepare`` hook loaded before replay (a flow's graph)."""
        self.deadline: float | None = (
            None
            if workflow.execution_timeout is None
            else run.created_at + workflow.execution_timeout
        )

    def entry(self, seq: int, event: str, call: Call, payload: str | None) -> JournalEntry:
        """The next journal entry of this run (positions are assigned in write order)."""
        at = self.clock.now()
        made = JournalEntry(
            self.next_pos, seq, event, call.kind, call.name, call.fingerprint, payload, at
        )
        self.next_pos += 1
        return made

    def take_seq(self, call: Call) -> int:
        """Number the next operation, checking it against the journal."""
        if self.unloading or self.nondeterminism is not None:
            raise Abort()
        seq = self.next_seq
        self.next_seq += 1
        recorded = self.journal.mismatch(seq, call)
        if recorded is not None:
            self.flag(seq, recorded, call.describe())
            raise Abort()
        return seq

    def issue(self, op: Op) -> DurableFuture[Any]:
        self.ops[op.seq] = op
        if op.seq not in self.journal.final:
            self.unstarted.append(op)
        return op.future

    def flag(self, seq: int, recorded: str, requested: str) -> None:
        if self.nondeterminism is None:
            self.nondeterminism = NonDeterminismError(self.fence.run_id, seq, recorded, requested)
