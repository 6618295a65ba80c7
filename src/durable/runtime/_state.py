"""The records the executor's parts pass each other: operations, deliveries, hooks."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from .._clock import Timer
from .._future import DurableFuture
from .._wire import Event
from ..errors import NonDeterminismError
from ..policy import RetryPolicy
from ..registry import Activity, Workflow
from ..store import SignalRecord
from ._journal import Call


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
    event: Event | None = None
    payload: str | None = None
    signal: SignalRecord | None = None
    refresh: bool = False  # new signals or a cancellation request may be waiting
    stop: bool = False  # the lease is lost
    expired: bool = False  # the workflow's execution timeout passed
    pause: str | None = None  # with a RETRY: the attempts ran out; pause with this reason


class SlotLimiter(Protocol):
    """Holds activity attempts to their queue's limits (the worker's ``QueueLimiter``)."""

    def slot(self, queue_name: str | None) -> AbstractAsyncContextManager[None]: ...


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What replaying a journal found, executing nothing (``RunExecutor.replay_journal``)."""

    done: bool
    """The workflow returned or raised."""
    error: BaseException | None
    """What the workflow raised, if it ended so."""
    nondeterminism: NonDeterminismError | None
    """The first call that differs from the journal."""
    unread: tuple[int, str] | None
    """The seq of the first record the code never reached, and what the record holds."""
    pending: tuple[tuple[int, str], ...]
    """The operations the code waits on where the journal ends: ``(seq, call)``."""
    waiting_on: str
    """What the code waits on, in the words of a non-determinism report."""
