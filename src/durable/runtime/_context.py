"""``durable.Context``: the workflow's handle on durable operations."""

from __future__ import annotations

import random as _random
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, NoReturn, ParamSpec, TypeVar, overload

from .._future import DurableFuture, gather_futures
from .._wire import Kind
from ..info import RunInfo
from ..policy import RetryPolicy, to_seconds
from ..registry import Host, Workflow, activity_for

P = ParamSpec("P")
R = TypeVar("R")


class ChildHandle(Generic[R]):
    """A child run started with ``ctx.start_child``: await it (or ``result()``) for its result.

    Raises:
        durable.WorkflowFailed: when awaited, if the child ended FAILED or CANCELLED;
            ``error_type`` and ``error_message`` say why.
    """

    __slots__ = ("_future", "id")

    def __init__(self, run_id: str, future: DurableFuture[R]) -> None:
        self.id = run_id
        """The child's run id: ``app.handle(id)`` reaches it from outside."""
        self._future = future

    def result(self) -> DurableFuture[R]:
        """The child's result, as an awaitable (the same as awaiting the handle)."""
        return self._future

    def __await__(self) -> Generator[Any, Any, R]:
        return self._future.__await__()


class Context:
    """Passed as the first argument of every workflow; every method is journaled.

    Example::

        @durable.workflow
        async def onboarding(ctx: durable.Context, user: str) -> str:
            await ctx.run(send_welcome, user)
            try:
                kyc = await ctx.wait_signal("kyc-done", timeout=timedelta(days=3))
            except durable.WaitTimeout:
                return "expired"
            return kyc["result"]
    """

    def __init__(self, host: Host) -> None:
        self._host = host

    @property
    def info(self) -> RunInfo:
        """The run's id, workflow name, claim attempt and whether it is replaying."""
        return self._host.run_info()

    @overload
    def run(
        self,
        fn: Callable[P, Awaitable[R]],
        /,
        *args: Any,
        retry: RetryPolicy | None = None,
        timeout: float | timedelta | None = None,
        **kwargs: Any,
    ) -> DurableFuture[R]: ...
    @overload
    def run(
        self,
        fn: Callable[P, R],
        /,
        *args: Any,
        retry: RetryPolicy | None = None,
        timeout: float | timedelta | None = None,
        **kwargs: Any,
    ) -> DurableFuture[R]: ...
    def run(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        retry: RetryPolicy | None = None,
        timeout: float | timedelta | None = None,
        **kwargs: Any,
    ) -> DurableFuture[Any]:
        """Run an activity (``def`` or ``async def``) and journal its result.

        ``retry`` and ``timeout`` (seconds per attempt) override the activity's own.
        The call is numbered at once, so the order of calls, not of completions, decides
        the journal: ``ctx.gather(ctx.run(a), ctx.run(b))`` replays the same way always.
        """
        seconds = None if timeout is None else to_seconds(timeout, "timeout")
        return self._host.call_activity(activity_for(fn), args, kwargs, retry, seconds)

    def sleep(self, duration: float | timedelta) -> DurableFuture[None]:
        """Sleep durably: the run is unloaded and resumes on time, even after a restart."""
        return self._host.sleep(to_seconds(duration, "sleep duration"))

    def wait_signal(
        self, name: str, *, timeout: float | timedelta | None = None
    ) -> DurableFuture[Any]:
        """Wait for the next signal called ``name``; return its payload.

        Signals sent before the wait are buffered and consumed in the order sent.

        Raises:
            durable.WaitTimeout: when ``timeout`` passes first (the outcome is journaled,
                so replay takes the same branch).
        """
        seconds = None if timeout is None else to_seconds(timeout, "timeout")
        return self._host.wait_signal(name, seconds)

    def gather(self, *awaitables: Awaitable[Any]) -> DurableFuture[list[Any]]:
        """Await several durable operations or coroutines at once; results in argument order.

        Coroutines run as concurrent branches of the workflow, scheduled deterministically.
        The first failure is raised; the other branches keep running.
        """
        futures = []
        for index, item in enumerate(awaitables):
            if isinstance(item, DurableFuture):
                futures.append(item)
            elif isinstance(item, ChildHandle):
                futures.append(item.result())
            elif isinstance(item, Coroutine):
                futures.append(self._host.spawn(item, f"gather branch {index}"))
            else:
                raise TypeError(
                    f"ctx.gather() takes activity calls, ctx operations and coroutines, "
                    f"got {item!r} at position {index}"
                )
        return gather_futures(futures)

    def now(self) -> datetime:
        """The current time (UTC), recorded so that replay sees the same value."""
        host = self._host
        stamp = host.record_value(
            Kind.NOW, lambda: datetime.fromtimestamp(host.now(), UTC).isoformat()
        )
        return datetime.fromisoformat(stamp)

    def random(self) -> float:
        """A random float in [0, 1), recorded so that replay sees the same value."""
        return float(self._host.record_value(Kind.RANDOM, _random.random))

    def uuid4(self) -> uuid.UUID:
        """A random UUID, recorded so that replay sees the same value."""
        return uuid.UUID(self._host.record_value(Kind.UUID4, lambda: str(uuid.uuid4())))

    # -- children ---------------------------------------------------------------------
    def child(
        self,
        workflow: Workflow[..., R],
        /,
        *args: Any,
        id: str | None = None,
        **kwargs: Any,
    ) -> DurableFuture[R]:
        """Start a child run of ``workflow`` and wait for its result (durably).

        The child is a run of its own (any worker may execute it) that names this run as
        its parent. ``id`` defaults to one derived from this run; starting is idempotent
        on it. Cancelling this run cancels its children; a child still running when this
        run ends is cancelled too.

        Raises:
            durable.WorkflowFailed: when awaited, if the child ended FAILED or CANCELLED.
        """
        return self.start_child(workflow, *args, id=id, **kwargs).result()

    def start_child(
        self,
        workflow: Workflow[..., R],
        /,
        *args: Any,
        id: str | None = None,
        **kwargs: Any,
    ) -> ChildHandle[R]:
        """Start a child run now and return its handle; await the handle for its result."""
        if not isinstance(workflow, Workflow):
            raise TypeError(f"ctx.child() takes a @durable.workflow function, got {workflow!r}")
        run_id, future = self._host.start_child(workflow, args, kwargs, id)
        return ChildHandle(run_id, future)

    # -- events, versions, restarts ---------------------------------------------------
    def set_event(self, key: str, value: Any) -> None:
        """Publish ``value`` under ``key`` for clients (``Handle.get_event``); latest wins.

        The value is written with the run's next commit, which follows promptly; replay
        does not publish it again.

        Raises:
            durable.PayloadTooLargeError: the value is over ``App(max_payload_bytes=)``.
        """
        self._host.set_event(key, value)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags on this run (``RunDescription.tags``, ``durable.RunFilter(tags=)``).

        A key set before gets the new value; the others stay. The tags are written with
        the run's next commit, and replay does not write them again. Keys and values are
        checked as for ``App.start(tags=)``.

        Example::

            ctx.set_tags({"stage": "paid"})
        """
        self._host.set_tags(tags)

    def patched(self, change_id: str) -> bool:
        """Whether this run takes the new code path of the change ``change_id``.

        True for runs that reach this point running code that has the check (it is
        journaled); False for runs that went past this point before the change was
        deployed, so they replay their old path. Calls with the same id in one run
        return the same answer. See docs/versioning.md for the determinism rules.

        Example::

            if ctx.patched("send-sms"):
                await send_sms(user)      # new runs
            else:
                await send_email(user)    # runs already past this point
        """
        return self._host.patched(change_id)

    def deprecate_patch(self, change_id: str) -> None:
        """Mark the place of a removed ``patched(change_id)`` check whose old path is gone.

        Once no run in flight can take the old path, replace the ``if ctx.patched(...)``
        with this call and keep only the new code: runs that recorded the patch replay
        without a non-determinism error.
        """
        self._host.deprecate_patch(change_id)

    def continue_as_new(self, *args: Any, **kwargs: Any) -> NoReturn:
        """End this journal and start the workflow again, same run id, with new arguments.

        For loops that would otherwise grow their journal without bound. Signals not yet
        consumed carry over; children still running are cancelled. The execution timeout
        keeps counting from the run's first start.
        """
        raise self._host.continue_as_new(args, kwargs)
