"""``Handle``: a client's view of one run."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Generic, TypeVar

from ._blocked import blocked_on
from ._describe import describe, failure, history_event, parked_error
from ._fork import fork_run
from ._services import HasServices
from ._wire import Event
from .errors import RunNotFoundError
from .flow._client import complete_user_task
from .flow._state import flow_state
from .info import HistoryEvent, RunDescription, Status, StepExecution
from .registry import Workflow
from .runtime import superseded
from .serde import encode_any, is_pickled, loads, pickle_dumps, pickle_loads
from .store import RunRecord
from .store._notify import event_topic, run_topic

R = TypeVar("R")

# How often result() re-reads a run whose worker is in another process and whose store
# cannot notify across processes (SQLite); in-process workers wake it at once.
_POLL_SECONDS = 0.5


class Handle(Generic[R]):
    """A started run: wait for its result, signal it, inspect or cancel it.

    Example::

        handle = await app.start(order, "o-1", id="order-o-1")
        await handle.signal("approve", {"by": "ann"})
        result = await handle.result(timeout=60)
    """

    def __init__(
        self, app: HasServices, run_id: str, workflow: Workflow[Any, R] | None = None
    ) -> None:
        self._services = app.services
        self.run_id = run_id
        self._workflow = workflow

    def __repr__(self) -> str:
        return f"<durable.Handle {self.run_id!r}>"

    async def _get(self) -> RunRecord:
        run = await self._services.store.get_run(self.run_id)
        if run is None:
            raise RunNotFoundError(self.run_id)
        return run

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the run to end and return its result.

        Raises:
            durable.WorkflowFailed: the run ended FAILED or CANCELLED; ``error_type``,
                ``error_message`` and ``traceback`` describe the cause.
            durable.NonDeterminismError: the run is parked because the code no longer
                matches its journal (deploy fixed code and it resumes).
            TimeoutError: ``timeout`` seconds passed first.
        """
        store = self._services.store
        deadline = None if timeout is None else time.monotonic() + timeout
        with store.subscribe(run_topic(self.run_id)) as changed:
            while True:
                changed.clear()
                completed = store.completed.get(self.run_id)
                if completed is not None:  # it completed in this process: no round trip
                    return self._decode(*completed)
                run = await self._get()
                if run.status is Status.COMPLETED:
                    return self._decode(run.workflow, run.result)
                if run.status.is_terminal:
                    raise failure(run)
                if run.parked_reason:
                    raise parked_error(run)
                wait = _POLL_SECONDS
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(
                            f"run {self.run_id!r} is still {run.status} after {timeout} s"
                        )
                    wait = min(wait, left)
                await changed.wait(wait)

    def _decode(self, name: str, result: str | None) -> R:
        """The result of a COMPLETED run of workflow ``name`` (as stored)."""
        workflow = self._workflow or self._services.registry.workflows.get(name)
        text = result or "null"
        if workflow is None:
            if self._pickled() and is_pickled(text):
                return pickle_loads(text, f"the result of run {self.run_id!r}")  # type: ignore[no-any-return]
            return loads(text)  # type: ignore[no-any-return]
        workflow = workflow.for_app(self._services.values.serializer)
        return workflow.codec.decode_result(text)  # type: ignore[no-any-return]

    def _pickled(self) -> bool:
        """Whether this handle stores and reads values with cloudpickle: its workflow says
        so, or the App does and the workflow (if known) names no serializer."""
        declared = None if self._workflow is None else self._workflow.serializer
        return (declared or self._services.values.serializer) == "pickle"

    async def signal(self, name: str, payload: Any = None) -> None:
        """Send a signal. Buffered until the workflow waits for ``name``; never lost.

        Raises:
            durable.RunNotFoundError: no such run.
            durable.RunClosedError: the run has already ended.
            durable.PayloadTooLargeError: the payload is over ``App(max_payload_bytes=)``.
        """
        what = f"signal {name!r} payload for run {self.run_id!r}"
        text = pickle_dumps(payload, what) if self._pickled() else encode_any(payload, what)
        self._services.values.check(text, self.run_id, f"signal {name!r} payload")
        await self._services.store.send_signal(self.run_id, name, text)

    async def get_event(self, key: str, *, timeout: float | None = None) -> Any:
        """The value the run last published under ``key`` (``ctx.set_event``).

        Waits up to ``timeout`` seconds for a first value (no waiting when None), and
        returns None if there is none by then, or if the run ended without one.

        Example::

            progress = await handle.get_event("progress", timeout=5)
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        store = self._services.store
        with store.subscribe(event_topic(self.run_id)) as changed:
            while True:
                changed.clear()
                value = await store.get_event(self.run_id, key)
                if value is not None:
                    if self._pickled() and is_pickled(value):
                        return pickle_loads(value, f"event {key!r} of run {self.run_id!r}")
                    return loads(value)
                left = 0.0 if deadline is None else deadline - time.monotonic()
                if left <= 0 or (await self._get()).status.is_terminal:
                    return None
                await changed.wait(min(left, _POLL_SECONDS))

    async def cancel(self) -> None:
        """Ask the run to stop: ``durable.Cancelled`` is raised at its next durable await."""
        await self._services.store.request_cancel(self.run_id)

    async def pause(self, reason: str | None = None) -> None:
        """Pause the run: the activities in flight finish and are journaled, then nothing
        starts until ``resume()``. Signals and timers that come due meanwhile are kept and
        take effect after the resume, in order. A paused run holds no worker and no queue
        slot, and stays paused across worker restarts; ``cancel()`` still works.

        Pausing a paused run changes nothing. ``reason`` shows in ``describe()``.

        Raises:
            durable.RunNotFoundError: no such run.
            durable.RunClosedError: the run has ended.
        """
        await self._services.store.request_pause(self.run_id, reason)

    async def resume(self) -> None:
        """Let a paused run go on where it stopped (a no-op for a run that is not paused).

        A run paused by its retry policy (``on_exhausted="pause"``) runs the activity
        that ran out of attempts again, with a fresh budget.

        Raises:
            durable.RunNotFoundError: no such run.
            durable.RunClosedError: the run has ended.
        """
        await self._services.store.resume(self.run_id)

    async def retry(self) -> None:
        """Run a FAILED run again from where it failed, under the same id, with the code
        deployed now.

        Completed activities are not run again: the failed activity (or, for a flow, the
        failed step) runs again with a fresh budget of attempts, or, when the workflow
        code itself raised, that code runs again. The earlier failure stays in
        ``history()``, marked ``superseded``. An execution timeout counts anew.

        Raises:
            durable.RunNotFoundError: no such run.
            durable.RunStateError: the run is not FAILED.
        """
        await self._services.store.retry_run(self.run_id)

    async def fork(
        self,
        at: int | str | None = None,
        *,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> Handle[R]:
        """Start a new run that copies this run's journal before ``at`` and executes from
        ``at`` on, with the code deployed now; return its handle. This run is untouched.

        ``at`` is the first operation that runs again: a seq as ``history()`` shows it
        (code-first), or a step id (flows: that step's latest start). None: where the run
        failed, or its end. No operation before ``at`` runs again. ``args``/``kwargs``
        replace a code-first run's arguments; ``variables`` are merged over a flow run's
        variables at ``at``. The fork gets this run's tags, queue and priority, and the
        events published before ``at``; not its signals still unread, children still open
        at ``at`` are started again as its own. ``describe().forked_from`` says
        ``(run id, at)``.

        Raises:
            durable.RunNotFoundError: no such run.
            durable.InvalidInputError: ``at`` is not in the run's history, or the
                arguments do not fit the kind of run; the message names them.
            durable.RunConflictError: ``id`` is taken.
        """
        run = await self._get()
        forked = await fork_run(
            self._services, run, at, args=args, kwargs=kwargs, variables=variables, fork_id=id
        )
        return Handle(self._services, forked.id, self._workflow)

    async def describe(self) -> RunDescription:
        """Status, result or error, and parked reason of the run.

        Also the parent run (``parent_id``), the children started with ``ctx.child``,
        what an open run waits for (``blocked_on``, read with the run in one call); for
        a flow run its business key, active steps and current variables.
        """
        found = await self._services.store.diagnose(self.run_id)
        if found is None:
            raise RunNotFoundError(self.run_id)
        run = found.run
        summary = replace(describe(run), children=found.children, blocked_on=blocked_on(found))
        if run.flow_version is None:
            return summary
        state = flow_state(run, await self._services.store.read_journal(self.run_id))
        return replace(summary, current_steps=state.current, variables=state.variables)

    async def steps(self) -> list[StepExecution]:
        """A flow run's step history, oldest first (empty for code-first runs)."""
        run = await self._get()
        if run.flow_version is None:
            return []
        return flow_state(run, await self._services.store.read_journal(self.run_id)).steps

    async def complete_user_task(
        self, step_id: str, variables: dict[str, Any] | None = None
    ) -> None:
        """Complete the waiting USER_TASK ``step_id`` of a flow run, merging ``variables``.

        Completing a task that was completed before is a no-op.

        Raises:
            durable.StepNotWaitingError: the step is not waiting and never was.
            durable.RunNotFoundError: no such run.
        """
        await complete_user_task(self._services.store, self.run_id, step_id, variables)

    async def history(self) -> list[HistoryEvent]:
        """The run's journal, oldest first."""
        await self._get()
        entries = await self._services.store.read_journal(self.run_id)
        gone = superseded(entries)
        return [history_event(e, e.pos in gone and e.event != Event.RETRIED) for e in entries]
