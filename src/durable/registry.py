"""The ``@durable.workflow`` and ``@durable.activity`` decorators and the registry they fill.

Workflows are looked up by name when a worker claims a run, so they live in a registry.
Activities are called directly by workflow code (on first execution and on replay alike),
so the registry keeps them only for introspection and for the JSON flows' ``jobType``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeAlias, TypeVar, cast, overload

from . import _current
from ._current import WorkflowHost
from ._values import Serializer, check_serializer
from .errors import ConfigurationError, NotRegisteredError
from .policy import RetryPolicy, to_seconds
from .queues import Queue, queue_name
from .serde import CallCodec, PickleCodec

if TYPE_CHECKING:
    from .store import RunRecord, Store

    Prepare = Callable[[Store, RunRecord], Awaitable[Any]]

P = ParamSpec("P")
R = TypeVar("R")


def _qualified(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


class Workflow(Generic[P, R]):
    """A function registered with ``@durable.workflow``; start it with ``App.start``."""

    def __init__(
        self,
        fn: Callable[..., Coroutine[Any, Any, R]],
        name: str,
        version: str | None,
        execution_timeout: float | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise ConfigurationError(f"workflow {name!r} must be an 'async def' function")
        if not list(inspect.signature(fn).parameters):
            raise ConfigurationError(
                f"workflow {name!r} must take the durable.Context as its first parameter"
            )
        self.fn = fn
        self.name = name
        self.version = version
        self.execution_timeout = execution_timeout
        """Seconds from the start of a run (across continue-as-new) until it fails."""
        self.queue: str | None = None
        """The queue its runs go to unless ``App.start`` names one (None: ``"default"``)."""
        self.serializer = serializer
        """``"pickle"`` or ``"json"`` as declared; None: the App's ``serializer``."""
        self.codec = _codec(fn, f"workflow {name!r}", serializer, skip_first=True)
        self.prepare: Prepare | None = None
        """Loads what a run needs before replay (``WorkflowHost.prepared``: the built-in
        flow workflow's graph and store actions)."""
        functools.update_wrapper(cast(Callable[..., Any], self), fn)

    def __repr__(self) -> str:
        return f"<durable.Workflow {self.name!r}>"

    def for_app(self, serializer: Serializer) -> Workflow[P, R]:
        """Itself, or a copy storing values with the App's ``serializer`` if it names none."""
        return _for_app(self, serializer, skip_first=True)


class Activity(Generic[P, R]):
    """A function registered with ``@durable.activity``.

    Called inside a workflow it is journaled (an awaitable with the result); called
    anywhere else it is a plain function call.
    """

    def __init__(
        self,
        fn: Callable[P, R] | Callable[P, Awaitable[R]],
        name: str,
        retry: RetryPolicy | None,
        timeout: float | None,
        heartbeat_timeout: float | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.retry = retry
        self.timeout = timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.queue: str | None = None
        """Its attempts run only while they hold a slot of this queue's limits."""
        self.is_async = inspect.iscoroutinefunction(fn)
        self.serializer = serializer
        """``"pickle"`` or ``"json"`` as declared; None: the App's ``serializer``."""
        self.codec = _codec(fn, f"activity {name!r}", serializer, skip_first=False)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        host = _current.workflow_context.get()
        if host is not None:  # all the arguments are the activity's: no retry or timeout
            return host.call_activity(self, args, kwargs, None, None)
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<durable.Activity {self.name!r}>"

    def for_app(self, serializer: Serializer) -> Activity[P, R]:
        """Itself, or a copy storing values with the App's ``serializer`` if it names none."""
        return _for_app(self, serializer, skip_first=False)


def _codec(
    fn: Callable[..., Any], owner: str, serializer: Serializer | None, *, skip_first: bool
) -> CallCodec:
    if serializer is None or serializer == "json":
        return CallCodec(fn, owner, skip_first=skip_first)
    return PickleCodec(fn, owner, skip_first=skip_first)


_T = TypeVar("_T")


def _for_app(obj: _T, serializer: Serializer, *, skip_first: bool) -> _T:
    """``obj`` (a Workflow or Activity), or its cached copy with the App's serializer."""
    declared: Any = obj
    if declared.serializer is not None or serializer == "json":
        return obj
    variants: dict[str, Any] = declared.__dict__.setdefault("_app_variants", {})
    found = variants.get(serializer)
    if found is None:
        found = copy.copy(declared)
        found.__dict__.pop("_app_variants", None)
        found.serializer = serializer
        found.codec = _codec(declared.fn, declared.codec.owner, serializer, skip_first=skip_first)
        variants[serializer] = found
    return cast(_T, found)


Host: TypeAlias = WorkflowHost[Activity[Any, Any], Workflow[Any, Any]]
"""The executor as workflow code sees it, taking this module's activities and workflows."""

Override: TypeAlias = Callable[[Activity[Any, Any]], Activity[Any, Any]]
"""Given the activity a workflow called, the one to run instead (``durable.testing`` mocks)."""


class Registry:
    """Workflows and activities by name."""

    def __init__(self) -> None:
        self.workflows: dict[str, Workflow[Any, Any]] = {}
        self.activities: dict[str, Activity[Any, Any]] = {}

    def add_workflow(self, wf: Workflow[Any, Any]) -> None:
        _check_unique(self.workflows.get(wf.name), wf.fn, "workflow", wf.name)
        self.workflows[wf.name] = wf

    def add_activity(self, act: Activity[Any, Any]) -> None:
        _check_unique(self.activities.get(act.name), act.fn, "activity", act.name)
        self.activities[act.name] = act

    def workflow(self, name: str) -> Workflow[Any, Any]:
        try:
            return self.workflows[name]
        except KeyError:
            known = ", ".join(sorted(self.workflows)) or "none"
            raise NotRegisteredError(
                f"no workflow named {name!r} is registered (registered: {known}); "
                "import the module that defines it before starting the worker"
            ) from None


def _check_unique(existing: Any, fn: Callable[..., Any], what: str, name: str) -> None:
    # Re-registering the same function (a module imported twice, a test re-defining a
    # helper) replaces it; two different functions under one name are a mistake.
    if existing is not None and _qualified(existing.fn) != _qualified(fn):
        raise ConfigurationError(
            f"{what} name {name!r} is already used by {_qualified(existing.fn)}; "
            f"give {_qualified(fn)} another name"
        )


default_registry = Registry()


@overload
def workflow(fn: Callable[..., Coroutine[Any, Any, R]], /) -> Workflow[..., R]: ...
@overload
def workflow(
    *,
    name: str | None = None,
    version: str | None = None,
    execution_timeout: float | timedelta | None = None,
    queue: str | Queue | None = None,
    serializer: Serializer | None = None,
) -> Callable[[Callable[..., Coroutine[Any, Any, R]]], Workflow[..., R]]: ...
def workflow(
    fn: Callable[..., Coroutine[Any, Any, R]] | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    execution_timeout: float | timedelta | None = None,
    queue: str | Queue | None = None,
    serializer: Serializer | None = None,
) -> Workflow[..., R] | Callable[[Callable[..., Coroutine[Any, Any, R]]], Workflow[..., R]]:
    """Register an ``async def`` as a workflow. Its first parameter is the ``durable.Context``.

    Example::

        @durable.workflow
        async def order(ctx: durable.Context, order_id: str) -> dict:
            ref = await reserve(order_id)
            await ctx.sleep(60)
            return {"ref": ref}

    ``execution_timeout`` (seconds or a ``timedelta``) ends a run FAILED with a
    ``durable.WorkflowTimeout`` once that long has passed since it was started; the clock
    keeps running across ``ctx.continue_as_new``.

    ``queue`` (a name or a ``durable.Queue``) is where its runs wait to be claimed,
    ``"default"`` unless given here or to ``App.start``.

    ``serializer="pickle"`` stores its arguments, result and events with cloudpickle
    instead of the typed JSON codec, and reads pickled signals sent to it (values without
    a JSON form); default: the App's ``serializer``, ``"json"`` unless set. Pickled values
    are loaded by this App's workers and clients only (``docs/values.md``).
    """
    if serializer is not None:
        check_serializer(serializer, "@durable.workflow(serializer=)")
    limit = (
        None if execution_timeout is None else to_seconds(execution_timeout, "execution_timeout")
    )
    home = queue_name(queue)

    def register(f: Callable[..., Coroutine[Any, Any, R]]) -> Workflow[..., R]:
        wf: Workflow[..., R] = Workflow(f, name or f.__qualname__, version, limit, serializer)
        wf.queue = home
        default_registry.add_workflow(wf)
        return wf

    return register(fn) if fn is not None else register


@overload
def activity(fn: Callable[P, R], /) -> Activity[P, R]: ...
@overload
def activity(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | timedelta | None = None,
    heartbeat_timeout: float | timedelta | None = None,
    queue: str | Queue | None = None,
    serializer: Serializer | None = None,
) -> Callable[[Callable[P, R]], Activity[P, R]]: ...
def activity(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | timedelta | None = None,
    heartbeat_timeout: float | timedelta | None = None,
    queue: str | Queue | None = None,
    serializer: Serializer | None = None,
) -> Activity[P, R] | Callable[[Callable[P, R]], Activity[P, R]]:
    """Register a function (``def`` or ``async def``) as an activity.

    Inside a workflow, calling it runs it at least once and journals its result exactly
    once; sync activities run in a worker thread. Anywhere else it is a plain call.

    ``retry`` decides how failed attempts are retried (the attempt count and backoff are
    durable); ``timeout`` bounds one attempt in seconds; an activity with
    ``heartbeat_timeout`` must call :func:`durable.heartbeat` at least that often, or the
    attempt is abandoned and counts as failed. With ``queue``, each attempt waits for a
    slot of that queue's limits (declared on the App) and holds it while it runs.
    ``serializer="pickle"`` stores its arguments and result with cloudpickle (see
    :func:`workflow`); default: the App's ``serializer``.

    Example::

        @durable.activity(name="charge-payment", retry=durable.RetryPolicy(max_attempts=5))
        def charge(order_id: str) -> str: ...
    """
    if serializer is not None:
        check_serializer(serializer, "@durable.activity(serializer=)")
    seconds = None if timeout is None else to_seconds(timeout, "timeout")
    beat = None if heartbeat_timeout is None else to_seconds(heartbeat_timeout, "heartbeat_timeout")
    home = queue_name(queue)

    def register(f: Callable[P, R]) -> Activity[P, R]:
        act: Activity[P, R] = Activity(f, name or f.__qualname__, retry, seconds, beat, serializer)
        act.queue = home
        default_registry.add_activity(act)
        return act

    return register(fn) if fn is not None else register


def activity_for(fn: Callable[..., Any]) -> Activity[Any, Any]:
    """The activity behind ``fn``: itself when decorated, else an unregistered wrapper."""
    if isinstance(fn, Activity):
        return fn
    cached: Activity[Any, Any] | None = getattr(fn, "__durable_activity__", None)
    if cached is None:
        cached = Activity(fn, fn.__qualname__, None, None)
        # builtins and the like take no attributes: they get a fresh wrapper per call
        with contextlib.suppress(AttributeError):
            fn.__durable_activity__ = cached  # type: ignore[attr-defined]
    return cached
