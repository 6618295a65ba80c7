"""Running a compiled flow with the same durable primitives as code-first workflows.

The built-in flow workflow walks a :class:`FlowGraph`. Each path through the graph is a
coroutine of the run; every wait is a journaled operation of the run's
:class:`~durable._current.WorkflowHost` (an activity for SERVICE_TASK, a signal for
USER_TASK and WAIT, a durable sleep for boundary timers), so a flow replays, suspends and
survives crashes exactly like a Python workflow.

Step history is journaled as ``step`` records (``durable._wire.StepRecord``: one when a
step starts, one when it ends) that ride along with the next commit, so they cost no
extra round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._future import DurableFuture, first_completed, gather_futures
from .._wire import JobOutcome, Kind, StepRecord, job_signal_name, user_task_signal
from ..errors import ActivityError, Cancelled, ExpressionError, FlowError
from ..registry import Host, Registry
from ._graph import FlowGraph, Node
from ._handlers import StoreActivities, service_activity
from ._table import DecisionTableError

# A path that takes this many steps in a row without waiting on anything durable loops
# without a wait: it would hold the worker's event loop forever, so its run fails.
MAX_STEPS_WITHOUT_WAIT = 10_000


@dataclass(frozen=True, slots=True)
class FlowPlan:
    """What a flow run needs before replay: its graph, and what it writes to the store."""

    graph: FlowGraph
    store: StoreActivities
    """The journaled store actions: enqueue and withdraw jobs, start the next flow."""
    business_key: str | None
    queue: str
    priority: int


class Scope:
    """The variables one path sees: the run's map, or a parallel branch's overlay of it."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.writes: dict[str, Any] = {}

    def merge(self, output: Mapping[str, Any]) -> None:
        self.values.update(output)
        self.writes.update(output)

    def branch(self) -> Scope:
        return Scope(dict(self.values))


# Steps that finish without waiting on anything durable but an in-process activity: their
# start is never committed on its own, so one record (start and end together) is enough.
_QUICK_TYPES = frozenset({"DECISION", "DECISION_TABLE", "TRANSFORMATION", "JOIN_GATEWAY"})


class _Activation:
    """A step that has started and not ended yet.

    ``seq`` is the sequence number of its start record; a quick step (one record at its
    end) keeps its start time in ``started`` instead, and in ``seq`` the sequence number
    of its first operation (its end record says it as ``first``: where a fork starts it).
    """

    __slots__ = ("attempt", "closed", "node", "order", "pending", "seq", "started")

    def __init__(self, node: Node, order: int, seq: int, started: str | None) -> None:
        self.node = node
        self.order = order
        self.seq = seq
        self.started = started
        self.pending: DurableFuture[Any] | None = None
        self.closed = False
        self.attempt = 1


class FlowRun:
    """One run of a flow: its paths, its active steps and its variables."""

    def __init__(
        self,
        host: Host,
        registry: Registry,
        variables: dict[str, Any],
        fork: dict[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.fork = fork
        """A fork's cut (``Handle.fork``), ``{"at": seq, "variables": {...}}``: the
        variables are merged into the scope of the step that starts at that seq, the
        first step the fork runs again."""
        self.plan: FlowPlan = host.prepared
        self.graph: FlowGraph = self.plan.graph
        self.run_id = host.run_info().run_id
        self.registry = registry
        self.root = Scope(variables)
        self.final = self.root  # the scope that reached END: inside a branch, its overlay
        self.active: dict[int, _Activation] = {}
        self.opened = 0
        self.paths = 0
        self.finished: DurableFuture[str | None] = DurableFuture("flow finished")
        self.stopping = False

    async def run(self) -> dict[str, Any]:
        self._spawn_path(self.graph.entry, self.root, None)
        try:
            await self.finished
        except BaseException as exc:
            if not isinstance(exc, Cancelled):
                self._stop_all("the run failed")
            raise
        return self.final.values

    # -- paths ----------------------------------------------------------------------
    def _spawn_path(self, start: str, scope: Scope, stop: str | None) -> None:
        self.paths += 1
        self.host.spawn(self._path(start, scope, stop), f"flow path from {start!r}")

    async def _path(self, start: str, scope: Scope, stop: str | None) -> None:
        try:
            await self._walk(start, scope, stop)
        except BaseException as exc:  # a failure, or the run's cancellation
            self.finished.set_exception(exc)  # a no-op once an END finished the run
        finally:
            self.paths -= 1
            if self.paths == 0:
                self.finished.set_result(None)  # every path ran into a dead end

    async def _walk(self, step_id: str | None, scope: Scope, stop: str | None) -> None:
        without_wait = 0
        while step_id is not None and step_id != stop and not self.stopping:
            node = self.graph.nodes[step_id]
            fork = self.fork
            if fork is not None and self.host.next_seq >= fork["at"]:
                scope.merge(fork.get("variables") or {})
                self.fork = None
            if node.type in _QUICK_TYPES or node.type == "PARALLEL_GATEWAY":
                without_wait += 1
                if without_wait > MAX_STEPS_WITHOUT_WAIT:
                    raise FlowError(
                        node.id,
                        node.type,
                        f"{MAX_STEPS_WITHOUT_WAIT} steps in a row ran without waiting on "
                        "anything: the flow loops without a wait",
                    )
            else:
                without_wait = 0
            if node.type == "END":
                await self._end(node, scope)
                return
            if node.type == "PARALLEL_GATEWAY":
                step_id = await self._parallel(node, scope)
            elif node.timers:
                step_id = await self._step(node, scope, stop)
            else:  # the common step, without a coroutine of its own
                step_id = await self._body(self._open(node, quick=self._quick(node)), scope)

    async def _parallel(self, node: Node, scope: Scope) -> str | None:
        assert node.join is not None
        self._close(self._open(node, quick=True), "COMPLETED")
        branches = [scope.branch() for _ in node.parallel]
        await gather_futures(
            [
                self.host.spawn(self._walk(target, branch, node.join), f"branch {target!r}")
                for target, branch in zip(node.parallel, branches, strict=True)
            ]
        )
        if self.stopping:
            return None
        merged: dict[str, Any] = {}
        for branch in branches:  # declaration order, whatever finished first
            merged.update(branch.writes)
        scope.merge(merged)
        join = self.graph.nodes[node.join]
        self._close(self._open(join, quick=True), "COMPLETED", output=merged)
        return join.next

    async def _end(self, node: Node, scope: Scope) -> None:
        activation = self._open(node, quick=True)
        self.final = scope
        self.stopping = True
        self._stop_all(f"the flow reached END {node.id!r}", keep=activation)
        if self.graph.next_workflow is not None:
            plan = self.plan
            chain = (self.run_id, self.graph.next_workflow, scope.values, plan.business_key)
            # The next run waits in this run's queue; defaults stay unwritten, so the
            # journaled call of runs that started before queues existed is unchanged.
            where = {"queue": plan.queue, "priority": plan.priority}
            placed = {k: v for k, v in where.items() if v not in ("default", 0)}
            try:
                await self.host.call_activity(plan.store.start_next, chain, placed, None, None)
            except Cancelled:
                self._close(activation, "CANCELLED", reason="the run was cancelled")
                raise
            except ActivityError as exc:
                reason = f"cannot start the next workflow {self.graph.next_workflow!r}: {exc}"
                self._close(activation, "FAILED", reason=reason)
                raise FlowError(node.id, node.type, reason) from None
        self._close(activation, "COMPLETED")
        self.finished.set_result(node.id)

    # -- one step ---------------------------------------------------------------------
    def _quick(self, node: Node) -> bool:
        """Whether ``node`` runs without waiting on anything but an in-process handler:
        its step record is written once, when it ends."""
        return not node.timers and (
            node.type in _QUICK_TYPES
            or (node.type == "SERVICE_TASK" and node.job_type in self.registry.activities)
        )

    async def _step(self, node: Node, scope: Scope, stop: str | None) -> str | None:
        """A step with boundary timers: its body races them."""
        activation = self._open(node, quick=False)
        body = self.host.spawn(self._body(activation, scope), f"step {node.id!r}")
        timers = [self.host.sleep(timer.seconds) for timer in node.timers]
        waiting = list(range(len(timers)))
        while True:
            index = await first_completed([body] + [timers[i] for i in waiting])
            if index == 0:
                for i in waiting:
                    self.host.cancel_op(timers[i], "the step ended first")
                result: str | None = body.result()
                return result
            fired = waiting.pop(index - 1)
            timers[fired].result()  # a cancelled run raises here
            timer = node.timers[fired]
            if timer.interrupting:
                for i in waiting:
                    self.host.cancel_op(timers[i], "the step was interrupted")
                self._interrupt(activation, f"boundary timer {timer.duration} fired")
                return timer.target
            self._spawn_path(timer.target, scope, stop)
            if not waiting:
                value: str | None = await body
                return value

    async def _body(self, activation: _Activation, scope: Scope) -> str | None:
        node = activation.node
        if activation.closed:  # ended (END elsewhere) before this task got to run
            return None
        output: Mapping[str, Any]
        try:
            if node.type == "SERVICE_TASK":  # the common step: one coroutine less
                output, next_step = await self._service(activation, scope), node.next
            else:
                output, next_step = await self._perform(activation, scope)
        except Cancelled:
            if activation.closed:
                if not self.stopping:  # a run that ends withdraws its jobs itself
                    await self._withdraw(activation)
                return None
            self._close(activation, "CANCELLED", reason="the run was cancelled")
            raise
        except (ActivityError, ExpressionError, DecisionTableError, FlowError) as exc:
            if isinstance(exc, ActivityError):
                activation.attempt = exc.attempts
            reason = exc.reason if isinstance(exc, FlowError) else str(exc)
            self._close(activation, "FAILED", reason=reason)
            raise FlowError(node.id, node.type, reason) from None
        if activation.closed:  # interrupted while its result was on the way
            return None
        scope.merge(output)
        self._close(activation, "COMPLETED", output=output)
        return next_step

    async def _perform(
        self, activation: _Activation, scope: Scope
    ) -> tuple[Mapping[str, Any], str | None]:
        node = activation.node
        match node.type:
            case "USER_TASK":
                return await self._wait(activation, user_task_signal(activation.seq)), node.next
            case "WAIT":
                return await self._wait(activation, node.id), node.next
            case "DECISION":
                for expression, target in node.branches:
                    if expression.evaluate_bool(scope.values):
                        return {}, target
                raise FlowError(node.id, node.type, "no branch matched")
            case "DECISION_TABLE":
                assert node.table is not None
                return node.table.evaluate(scope.values), node.next
            case "TRANSFORMATION":
                output: dict[str, Any] = {}
                view = dict(scope.values)
                for name, value in node.assignments:
                    output[name] = view[name] = value.evaluate(view)
                return output, node.next
            case _:  # JOIN_GATEWAY reached outside its gateway: pass through
                return {}, node.next

    async def _service(self, activation: _Activation, scope: Scope) -> dict[str, Any]:
        node = activation.node
        assert node.job_type is not None
        handler = self.registry.activities.get(node.job_type)
        if handler is not None:
            task = {
                "variables": scope.values,
                "instanceId": self.run_id,
                "stepId": node.id,
                "jobType": node.job_type,
            }
            act = service_activity(handler, node.retries)
            activation.pending = self.host.call_activity(act, (task,), {}, None, None)
            result: dict[str, Any] = await activation.pending
            activation.attempt = result["attempt"]
            output: dict[str, Any] = result["variables"]
            return output
        job = (self.run_id, activation.seq, node.id, node.job_type, scope.values, node.retries)
        # Not cancellable while it writes: withdrawing a job that is still being queued
        # could leave it behind. An interrupted step withdraws it once it is queued.
        await self.host.call_activity(self.plan.store.enqueue_job, job, {}, None, None)
        if activation.closed:
            raise Cancelled("the step ended while its job was being queued")
        answer: JobOutcome = await self._wait_signal(activation, job_signal_name(activation.seq))
        activation.attempt = int(answer.get("attempt", 1))
        if not answer.get("ok"):
            raise FlowError(node.id, node.type, str(answer.get("error", "the job failed")))
        variables = answer.get("variables") or {}
        return variables if isinstance(variables, dict) else {}

    async def _wait(self, activation: _Activation, signal: str) -> dict[str, Any]:
        payload = await self._wait_signal(activation, signal)
        return payload if isinstance(payload, dict) else {}

    async def _wait_signal(self, activation: _Activation, signal: str) -> Any:
        activation.pending = self.host.wait_signal(signal, None)
        return await activation.pending

    async def _withdraw(self, activation: _Activation) -> None:
        """An interrupted external job is taken back from the job queue."""
        node = activation.node
        if node.type == "SERVICE_TASK" and node.job_type not in self.registry.activities:
            args = (self.run_id, activation.seq)
            await self.host.call_activity(self.plan.store.cancel_job, args, {}, None, None)

    # -- history ------------------------------------------------------------------------
    def _open(self, node: Node, *, quick: bool = False) -> _Activation:
        self.opened += 1
        if quick:
            activation = _Activation(node, self.opened, self.host.next_seq, _now())
        else:
            payload: StepRecord = {"type": node.type, "at": _now()}
            seq = self.host.next_seq
            self.host.record_value(Kind.STEP, lambda: payload, node.id)
            self.host.flush_soon()  # a waiting step is visible at once
            activation = _Activation(node, self.opened, seq, None)
        self.active[activation.order] = activation
        return activation

    def _close(
        self,
        activation: _Activation,
        status: str,
        *,
        reason: str | None = None,
        output: Mapping[str, Any] | None = None,
    ) -> None:
        if activation.closed:
            return
        activation.closed = True
        self.active.pop(activation.order, None)
        record: StepRecord = {"status": status, "at": _now()}
        if activation.started is None:
            record["start"] = activation.seq
        else:
            record["type"] = activation.node.type
            record["startedAt"] = activation.started
            record["first"] = activation.seq
        if activation.attempt != 1:
            record["attempt"] = activation.attempt
        if reason is not None:
            record["reason"] = reason
        if output:
            record["output"] = dict(output)
        self.host.record_value(Kind.STEP, lambda: record, activation.node.id)

    def _interrupt(self, activation: _Activation, reason: str) -> None:
        self._close(activation, "CANCELLED", reason=reason)
        if activation.pending is not None:
            self.host.cancel_op(activation.pending, reason)

    def _stop_all(self, reason: str, keep: _Activation | None = None) -> None:
        """End every other active step (END reached, or the run failed)."""
        self.stopping = True
        for activation in sorted(self.active.values(), key=lambda a: a.order):
            if activation is not keep:
                self._interrupt(activation, reason)


def _now() -> str:
    return datetime.now(UTC).isoformat()
