"""What the code running now belongs to: a workflow's host, or an activity's attempt.

``workflow_context`` holds the :class:`WorkflowHost` of the run whose workflow code the
executor is stepping; ``Context``, a decorated activity called inside a workflow, the
flow interpreter, log records and the determinism guard reach the executor through it
and through nothing else. ``activity_info`` holds the :class:`ActivityInfo` of the
activity attempt running in this task or thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ._future import DurableFuture
    from ._wire import Kind
    from .errors import ContinueAsNew
    from .info import RunInfo
    from .policy import RetryPolicy

A = TypeVar("A", contravariant=True)
W = TypeVar("W", contravariant=True)


class WorkflowHost(Protocol[A, W]):
    """What workflow code asks of the executor that runs it.

    Every operation is numbered in call order and checked against the journal on replay.
    An operation that waits returns a future the workflow awaits; one answered at once
    (a recorded value, a patch marker, an event) rides along with the next commit.

    Generic in the types of activities (``A``) and workflows (``W``) so that this module
    needs nothing from the registry, which defines them and looks the host up here;
    ``durable.registry.Host`` is the host of the registry's types.
    """

    @property
    def next_seq(self) -> int:
        """The sequence number the next operation takes."""
        ...

    @property
    def prepared(self) -> Any:
        """What the workflow's ``prepare`` hook loaded for this run (a flow's plan)."""
        ...

    def run_info(self) -> RunInfo:
        """The run's id, workflow name, claim attempt and whether it is replaying."""
        ...

    def now(self) -> float:
        """The run's clock in seconds since the epoch; not journaled (``record_value`` is)."""
        ...

    def call_activity(
        self,
        act: A,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retry: RetryPolicy | None,
        timeout: float | None,
    ) -> DurableFuture[Any]:
        """Run an activity; ``retry`` and ``timeout`` override its own when given."""
        ...

    def sleep(self, seconds: float) -> DurableFuture[None]: ...

    def wait_signal(self, name: str, timeout: float | None) -> DurableFuture[Any]:
        """The payload of the next signal ``name``; a ``WaitTimeout`` once ``timeout`` passes."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> DurableFuture[Any]:
        """Run ``coro`` as a concurrent branch of the workflow, scheduled deterministically."""
        ...

    def start_child(
        self, workflow: W, args: tuple[Any, ...], kwargs: dict[str, Any], child_id: str | None
    ) -> tuple[str, DurableFuture[Any]]:
        """Start a child run: its id, and the future of its result."""
        ...

    def record_value(self, kind: Kind, produce: Callable[[], Any], name: str = "") -> Any:
        """A value produced once and journaled; replay returns the recorded one."""
        ...

    def set_event(self, key: str, value: Any) -> None:
        """Publish ``value`` under ``key`` with the next commit, which happens soon."""
        ...

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set the run's tags with its next commit; replay writes them only once."""
        ...

    def patched(self, change_id: str) -> bool:
        """Whether this run takes the code path of ``change_id`` (``Context.patched``)."""
        ...

    def deprecate_patch(self, change_id: str) -> None:
        """Consume the marker of a patch whose old path is gone, if this run has it."""
        ...

    def continue_as_new(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ContinueAsNew:
        """The exception that ends this journal; the run restarts with these arguments."""
        ...

    def cancel_op(self, future: DurableFuture[Any], reason: str) -> None:
        """Withdraw a pending operation: its future fails with ``Cancelled``, nothing is
        journaled. Only for cancellations that follow from a journaled outcome, so that
        replay withdraws the same operation again."""
        ...

    def flush_soon(self) -> None:
        """Commit what is buffered now rather than with the next result (clients see it)."""
        ...


workflow_context: ContextVar[WorkflowHost[Any, Any] | None] = ContextVar(
    "durable_workflow", default=None
)


def current_host() -> WorkflowHost[Any, Any]:
    """The host of the workflow code running now.

    Raises:
        RuntimeError: outside workflow code.
    """
    host = workflow_context.get()
    if host is None:
        raise RuntimeError("this is only available inside workflow code")
    return host


class _Flag:
    """A flag set once and read from any thread (a bool write is atomic; nobody waits on
    it, so a ``threading.Event`` with its lock would be made per attempt for nothing)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class AttemptState:
    """What the worker and a running attempt tell each other (shared across threads)."""

    __slots__ = ("cancelled", "last_beat")

    def __init__(self) -> None:
        self.cancelled = _Flag()
        self.last_beat = time.monotonic()


@dataclass(frozen=True, slots=True)
class ActivityInfo:
    """What a running activity knows about its call (``durable.activity_info()``)."""

    run_id: str
    workflow: str
    activity: str
    seq: int
    attempt: int
    """1 on the first attempt; the count is durable across worker crashes."""
    _state: AttemptState = field(default_factory=AttemptState, repr=False, compare=False)

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and re-executions: pass it to external systems."""
        return f"{self.run_id}:{self.seq}"

    @property
    def cancelled(self) -> bool:
        """True once the run was cancelled or this attempt timed out: stop soon.

        Async activities are cancelled at their next ``await``; sync ones keep running in
        their thread and should check this (or call :func:`durable.heartbeat`).
        """
        return self._state.cancelled.is_set()


activity_info: ContextVar[ActivityInfo | None] = ContextVar("durable_activity", default=None)
