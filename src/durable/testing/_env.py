"""``TestEnv``: workflows on a fresh embedded store, with a clock that skips idle time.

Time in the environment is real time plus an offset (a :class:`~durable._clock.
VirtualClock` shared by the store, the executor and the worker). While a test waits for
a result (``env.run``, ``env.result``, ``handle.result``) or sleeps (``env.sleep``), the
environment watches for the moment nothing can make progress (no store call in flight,
no runnable run, every loaded run waiting on a timer, a signal or a child, no activity
running) and then moves the offset to the next due time: the earliest timer of a loaded
run or ``runnable_at`` of a stored one. Everything due then fires in due-time order, the
system settles again, and so on. A 30-day ``ctx.sleep`` thus takes milliseconds, and
timers keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from .._clock import VirtualClock
from ..app import App
from ..errors import ConfigurationError
from ..handle import Handle
from ..policy import to_seconds
from ..registry import Activity, Override, Registry, Workflow, activity_for
from ..runtime import activity_info, strict
from ..store._notify import WORK
from ..worker import Worker

R = TypeVar("R")

LEASE_SECONDS = 100 * 365 * 86400.0
"""The environment's one worker never loses a run to a lease expiring across a jump."""


@dataclass
class MockedActivity:
    """An activity replaced in a :class:`TestEnv` (``env.mock_activity``)."""

    name: str
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    """The ``(args, kwargs)`` of every attempt, in order."""


class _EnvHandle(Handle[R]):
    """A handle whose ``result()`` skips idle time like ``env.result``."""

    def __init__(self, env: TestEnv, run_id: str, workflow: Workflow[Any, R] | None) -> None:
        super().__init__(env.app, run_id, workflow)
        self._env = env

    async def result(self, timeout: float | None = None) -> R:
        return await self._env.result(self, timeout=timeout)


class TestEnv:
    """A test environment: a fresh SQLite store, a worker and a time-skipping clock.

    ``registry`` defaults to the one ``@durable.workflow`` fills. ``start`` sets the
    virtual time at the beginning (now or later). ``strict`` reports clock reads,
    random draws and sleeps of workflow code as ``durable.DeterminismWarning``.
    ``timeout`` bounds, in real seconds, each wait for a result.

    Example::

        async with durable.testing.TestEnv() as env:
            env.mock_activity(charge, "ch-1")
            result = await env.run(order, "o-1")     # a 30-day ctx.sleep inside: instant
            assert env.now() - started >= timedelta(days=30)
    """

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(
        self,
        *,
        registry: Registry | None = None,
        path: str | os.PathLike[str] | None = None,
        start: datetime | None = None,
        strict: bool = True,
        timeout: float = 30.0,
    ) -> None:
        begin = None if start is None else start.timestamp()
        if begin is not None and begin < VirtualClock().now() - 1.0:
            raise ConfigurationError(f"start must not be in the past, got {start}")
        self.clock = VirtualClock(begin)
        """The virtual clock of the store, the executor and the worker."""
        self.timeout = timeout
        self.mocks: dict[str, MockedActivity] = {}
        """The activities mocked so far, by name."""
        self._registry = registry
        self._path = path
        self._strict = strict
        self._tmp: str | None = None
        self._app: App | None = None
        self._worker: Worker | None = None
        self._exit = contextlib.ExitStack()
        self._moving = asyncio.Lock()  # one mover of the clock at a time

    @property
    def app(self) -> App:
        """The open App on the environment's store (its worker runs in this process)."""
        if self._app is None:
            raise ConfigurationError("the TestEnv is not open: use 'async with TestEnv() as env'")
        return self._app

    async def __aenter__(self) -> TestEnv:
        self._app = App(f"sqlite:///{self._db_path()}", registry=self._registry, clock=self.clock)
        try:
            await self._app.open()
            if self._strict:
                self._exit.enter_context(strict())
            self._worker = self._app.worker(lease_seconds=LEASE_SECONDS, grace_period=1.0)
            await self._worker.start()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    def _db_path(self) -> str:
        if self._path is not None:
            return os.path.abspath(os.fspath(self._path))
        self._tmp = tempfile.mkdtemp(prefix="durable-test-")
        return os.path.join(self._tmp, "durable.db")

    async def _close(self) -> None:
        try:
            if self._worker is not None:
                await self._worker.stop()
            if self._app is not None:
                await self._app.close()
        finally:
            self._exit.close()
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)

    # -- time -----------------------------------------------------------------------
    def now(self) -> datetime:
        """The environment's (virtual) time, UTC."""
        return datetime.fromtimestamp(self.clock.now(), UTC)

    async def sleep(self, duration: float | timedelta) -> None:
        """Let ``duration`` of virtual time pass, firing everything due meanwhile in order.

        Returns once the runs have done what they can at the new time.
        """
        target = self.clock.now() + to_seconds(duration, "sleep duration")
        while True:
            async with self._moving:
                await self._settle()
                due = await self._next_due()
                if due is None or due > target:
                    await self._jump(target)
                    await self._settle()
                    return
                await self._jump(due)

    # -- runs -----------------------------------------------------------------------
    async def start(
        self, workflow: Workflow[Any, R] | str, /, *args: Any, id: str | None = None, **kwargs: Any
    ) -> Handle[R]:
        """``app.start``, then let the run go as far as it can without time passing.

        The handle's ``result()`` skips idle time (like :meth:`result`).
        """
        wf = self.app.registry.workflow(workflow) if isinstance(workflow, str) else workflow
        handle = await self.app.start(wf, *args, id=id, **kwargs)
        await self._settle()
        return _EnvHandle(self, handle.run_id, wf)

    async def run(
        self, workflow: Workflow[Any, R] | str, /, *args: Any, id: str | None = None, **kwargs: Any
    ) -> R:
        """Start a run and return its result, skipping idle time.

        Raises:
            durable.WorkflowFailed: the run ended FAILED or CANCELLED.
            TimeoutError: no result within the environment's ``timeout`` (real seconds).
        """
        return await self.result(await self.start(workflow, *args, id=id, **kwargs))

    async def start_flow(
        self,
        definition: str | dict[str, Any],
        *,
        variables: dict[str, Any] | None = None,
        business_key: str | None = None,
        id: str | None = None,
    ) -> Handle[dict[str, Any]]:
        """Start a JSON flow (a stored definition id, or a document to upload first)."""
        if isinstance(definition, dict):
            definition = (await self.app.definitions.upload(definition)).id
        handle = await self.app.start_flow(
            definition, variables=variables, business_key=business_key, id=id
        )
        await self._settle()
        return _EnvHandle(self, handle.run_id, None)

    def handle(self, run_id: str) -> Handle[Any]:
        """A handle on a run of this environment; its ``result()`` skips idle time."""
        return _EnvHandle(self, run_id, None)

    async def result(self, handle: Handle[R], *, timeout: float | None = None) -> R:
        """Wait for a run's result, moving the clock whenever nothing else can happen.

        Raises:
            durable.WorkflowFailed: the run ended FAILED or CANCELLED.
            durable.NonDeterminismError: the run is parked.
            TimeoutError: ``timeout`` (default: the environment's) real seconds passed;
                typically the run waits for a signal the test has not sent.
        """
        limit = self.timeout if timeout is None else timeout
        waiter = asyncio.ensure_future(Handle.result(handle, timeout=limit))
        skipper = asyncio.ensure_future(self._skip())
        try:
            await asyncio.wait({waiter, skipper}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                skipper.result()  # the skipper failed: say why
            return waiter.result()
        except TimeoutError as exc:
            raise TimeoutError(
                f"{exc} of real time; the virtual clock is at {self.now():%Y-%m-%d %H:%M:%S}Z"
                " and nothing was due: does the run wait for a signal, a user task or an"
                " external job the test has not sent?"
            ) from None
        finally:
            for task in (waiter, skipper):
                task.cancel()
            await asyncio.gather(waiter, skipper, return_exceptions=True)

    async def signal(self, handle: Handle[Any], name: str, payload: Any = None) -> None:
        """Send a signal, then let the run handle it (no time passes)."""
        await handle.signal(name, payload)
        await self._settle()

    async def complete_user_task(
        self, handle: Handle[Any], step_id: str, variables: dict[str, Any] | None = None
    ) -> None:
        """Complete a flow run's waiting user task, then let the run go on (no time passes)."""
        await handle.complete_user_task(step_id, variables)
        await self._settle()

    # -- mocks ----------------------------------------------------------------------
    def mock_activity(self, activity: str | Callable[..., Any], mock: Any) -> MockedActivity:
        """Replace an activity (by name, or the activity itself) for this environment's runs.

        The workflow calls the real activity; arguments are checked against its signature
        and the result converted by its return type, as usual. ``mock`` decides the
        outcome of each attempt: a callable (sync or async) is called with the
        activity's arguments; an exception (instance or class) is raised, so the
        activity's retry policy applies; anything else is returned. A flow's
        SERVICE_TASK is mocked by its ``jobType``. Mocks run on the event loop.

        Returns:
            The record of the mock's calls (``.calls``).
        """
        name = activity if isinstance(activity, str) else activity_for(activity).name
        mocked = self.mocks[name] = MockedActivity(name)
        self.app.activity_overrides[name] = _override(mocked, mock, self.app.registry)
        return mocked

    # -- skipping idle time ---------------------------------------------------------
    async def _skip(self) -> None:
        while True:
            async with self._moving:  # waits settle, look and jump as one step
                await self._settle()
                due = await self._next_due()
                if due is not None:
                    await self._jump(due)
            if due is None:
                await asyncio.sleep(0.005)  # only the test (a signal, a job) can go on

    async def _jump(self, when: float) -> None:
        self.clock.advance_to(when)
        await self.app.store.publish(WORK)  # the claim loop waits in real time: wake it

    async def _next_due(self) -> float | None:
        """The next time something is due: a loaded run's timer, a stored run's wake-up."""
        due = self.clock.next_timer()
        stored = await self.app.store.next_wake_at(self._queues())
        if stored is not None and stored - self.clock.now() < LEASE_SECONDS / 2:  # not a lease
            due = stored if due is None else min(due, stored)
        return due

    async def _settle(self) -> None:
        """Return once nothing can make progress without time passing."""
        quiet = 0
        while quiet < 3:
            for _ in range(3):
                await asyncio.sleep(0)  # let callbacks and woken tasks run
            if self.clock.busy or not (self._worker is None or self._worker.is_idle()):
                quiet = 0
                await asyncio.sleep(0.001)
                continue
            due = await self.app.store.next_wake_at(self._queues())
            if due is not None and due <= self.clock.now():
                quiet = 0  # a run is runnable: the worker is about to claim it
                await self.app.store.publish(WORK)
                await asyncio.sleep(0.001)
                continue
            quiet += 1

    def _queues(self) -> list[str] | None:
        return None if self._worker is None else list(self._worker.served.names)


def _override(mocked: MockedActivity, mock: Any, registry: Registry) -> Override:
    """Given the activity called, an activity like it whose attempts ``mock`` decides."""
    raises = isinstance(mock, BaseException) or (
        isinstance(mock, type) and issubclass(mock, BaseException)
    )

    async def attempt(*args: Any, **kwargs: Any) -> Any:
        mocked.calls.append((args, kwargs))
        if raises:
            raise mock.with_traceback(None) if isinstance(mock, BaseException) else mock()
        value = mock(*args, **kwargs) if callable(mock) else mock
        if inspect.isawaitable(value):
            value = await value
        return value

    def override(real: Activity[Any, Any]) -> Activity[Any, Any]:
        substitute = copy.copy(real)
        substitute.fn = _service_task(real, attempt) if _is_service(real, registry) else attempt
        substitute.is_async = True
        return substitute

    return override


def _is_service(act: Activity[Any, Any], registry: Registry) -> bool:
    """Whether ``act`` is a flow's SERVICE_TASK wrapper around a registered handler."""
    handler = registry.activities.get(act.name)
    wrappers = {} if handler is None else handler.__dict__.get("_durable_service", {})
    return any(wrapper is act for wrapper in wrappers.values())


def _service_task(
    act: Activity[Any, Any], handle: Callable[..., Any]
) -> Callable[[dict[str, Any]], Any]:
    """A SERVICE_TASK attempt whose handler is the mock: it gets the task, returns variables."""
    retries = (act.retry.max_attempts if act.retry is not None else 1) - 1

    async def run(task: dict[str, Any]) -> dict[str, Any]:
        number = activity_info().attempt
        full = {**task, "attempt": number, "retriesRemaining": retries - number + 1}
        return {"variables": await handle(full) or {}, "attempt": number}

    return run
