"""Validating a definition: every problem at once, each with its JSON path and step id.

:func:`compile_definition` checks a document of any shape (it never raises anything but
:class:`~durable.ValidationError`) and returns the :class:`FlowGraph` the interpreter runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError as PydanticError

from ..errors import ExpressionError, Problem, ValidationError
from . import _model
from ._expr import compile_expression, compile_value
from ._graph import FlowGraph, Node, Timer
from ._table import compile_table

MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_STEPS = 10_000


def compile_definition(document: Any) -> FlowGraph:
    """The runnable graph of a definition.

    Raises:
        durable.ValidationError: listing every problem of the document.
    """
    return _Checker(document).run()


def validate_definition(document: Any) -> list[Problem]:
    """Every problem of a definition; an empty list when it is valid."""
    try:
        compile_definition(document)
    except ValidationError as exc:
        return exc.problems
    return []


def _oversized(document: Any) -> Problem | None:
    """Reject documents too deep or too large before anything recurses into them."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if depth > MAX_DEPTH:
            return Problem("$", f"the document is nested deeper than {MAX_DEPTH} levels")
        if seen > MAX_NODES:
            return Problem("$", f"the document holds more than {MAX_NODES} values")
        if isinstance(value, Mapping):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((v, depth + 1) for v in value)
    return None


def _loc(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


class _Checker:
    def __init__(self, document: Any) -> None:
        self.document = document
        self.problems: list[Problem] = []
        self.steps: dict[str, _model.StepModel] = {}
        self.paths: dict[str, str] = {}
        self.nodes: dict[str, Node] = {}

    def add(self, path: str, message: str, step_id: str | None = None) -> None:
        self.problems.append(Problem(path, message, step_id))

    def run(self) -> FlowGraph:
        if not isinstance(self.document, Mapping):
            raise ValidationError([Problem("$", "a definition must be a JSON object")])
        too_big = _oversized(self.document)
        if too_big is not None:
            raise ValidationError([too_big])
        definition = self._check_top()
        steps = self.document.get("steps")
        if isinstance(steps, list) and len(steps) > MAX_STEPS:
            self.add("steps", f"a definition may hold at most {MAX_STEPS} steps")
        elif isinstance(steps, list):
            for index, raw in enumerate(steps):
                self._check_step(index, raw)
            for step_id, step in self.steps.items():
                self._check_links(step_id, step)
            if steps and self.steps:
                self._check_reachability(steps[0])
        if self.problems or definition is None:
            raise ValidationError(self.problems, _subject(self.document))
        return FlowGraph(
            id=definition.id,
            name=definition.name,
            entry=next(iter(self.nodes)),
            nodes=self.nodes,
            next_workflow=definition.nextWorkflowId if definition.autoStartNextWorkflow else None,
            document=self.document,
        )

    def _check_top(self) -> _model.DefinitionModel | None:
        definition = None
        try:
            definition = _model.DefinitionModel.model_validate(self.document)
        except PydanticError as exc:
            for error in exc.errors():
                self.add(_loc(error["loc"]).lstrip("."), error["msg"])
        auto = self.document.get("autoStartNextWorkflow")
        nxt = self.document.get("nextWorkflowId")
        if auto is True and not (isinstance(nxt, str) and nxt):
            self.add("nextWorkflowId", "required when autoStartNextWorkflow is true")
        return definition

    def _check_step(self, index: int, raw: Any) -> None:
        path = f"steps[{index}]"
        if not isinstance(raw, Mapping):
            self.add(path, "a step must be a JSON object")
            return
        step_id = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else None
        kind = raw.get("type")
        if isinstance(step_id, str) and step_id in self.paths:
            self.add(f"{path}.id", f"duplicate step id (also {self.paths[step_id]})", step_id)
            step_id = None
        model = _model.STEP_MODELS.get(kind) if isinstance(kind, str) else None
        if model is None:
            known = ", ".join(_model.STEP_TYPES)
            self.add(f"{path}.type", f"unknown step type {kind!r} (known: {known})", step_id)
            if step_id is not None:
                self.paths[step_id] = path  # still a valid target for references
            return
        if step_id is not None:
            self.paths[step_id] = path
        try:
            step = model.model_validate(raw)
        except PydanticError as exc:
            for error in exc.errors():
                self.add(f"{path}{_loc(error['loc'])}", error["msg"], step_id)
            return
        if step_id is not None:
            self.steps[step_id] = step
            node = self._compile_step(path, step, raw)
            if node is not None:
                self.nodes[step_id] = node

    def _compile_step(
        self, path: str, step: _model.StepModel, raw: Mapping[str, Any]
    ) -> Node | None:
        count = len(self.problems)
        timers = tuple(self._timers(path, step))
        fields: dict[str, Any] = {"next": _next_step(step), "timers": timers}
        if isinstance(step, _model.ServiceTaskModel):
            fields.update(job_type=step.jobType, retries=step.retryCount)
        elif isinstance(step, _model.DecisionModel):
            branches = []
            for source, target in step.conditionalNextSteps.items():
                try:
                    branches.append((compile_expression(source), target))
                except ExpressionError as exc:
                    self.add(f"{path}.conditionalNextSteps[{source!r}]", str(exc), step.id)
            fields["branches"] = tuple(branches)
        elif isinstance(step, _model.TransformationModel):
            assignments = []
            for name, value in step.transformations.items():
                try:
                    assignments.append((name, compile_value(value)))
                except ExpressionError as exc:
                    self.add(f"{path}.transformations.{name}", str(exc), step.id)
            fields["assignments"] = tuple(assignments)
        elif isinstance(step, _model.DecisionTableModel):
            table, problems = compile_table(raw, path)
            self.problems.extend(problems)
            fields["table"] = table
        elif isinstance(step, _model.ParallelGatewayModel):
            fields.update(parallel=tuple(step.parallelNextSteps), join=step.joinStep)
        if len(self.problems) > count:
            return None
        return Node(id=step.id, name=step.name, type=step.type, **fields)

    def _timers(self, path: str, step: _model.StepModel) -> Iterator[Timer]:
        if step.boundaryEvents and step.type not in _model.TIMER_HOSTS:
            hosts = ", ".join(_model.TIMER_HOSTS)
            self.add(
                f"{path}.boundaryEvents", f"boundary events are only allowed on {hosts}", step.id
            )
            return
        for index, event in enumerate(step.boundaryEvents):
            where = f"{path}.boundaryEvents[{index}]"
            if event.type != "TIMER":
                self.add(
                    f"{where}.type",
                    f"unknown boundary event type {event.type!r} (known: TIMER)",
                    step.id,
                )
                continue
            try:
                duration = _model.parse_duration(event.duration)
            except ValueError as exc:
                self.add(f"{where}.duration", str(exc), step.id)
                continue
            if duration.total_seconds() < 0:
                self.add(f"{where}.duration", "a timer duration cannot be negative", step.id)
                continue
            yield Timer(
                event.duration, duration.total_seconds(), event.interrupting, event.targetStepId
            )

    def _check_links(self, step_id: str, step: _model.StepModel) -> None:
        path = self.paths[step_id]
        for where, target in _links(step):
            if target not in self.paths:
                self.add(f"{path}.{where}", f"refers to unknown step {target!r}", step_id)
        if isinstance(step, _model.ParallelGatewayModel):
            join = self.steps.get(step.joinStep)
            if step.joinStep in self.paths and (join is None or join.type != "JOIN_GATEWAY"):
                self.add(
                    f"{path}.joinStep", f"step {step.joinStep!r} is not a JOIN_GATEWAY", step_id
                )

    def _check_reachability(self, first: Any) -> None:
        entry = first.get("id") if isinstance(first, Mapping) else None
        if not isinstance(entry, str) or entry not in self.steps:
            return  # the entry step is broken: that problem is reported already
        seen = {entry}
        queue = deque([entry])
        while queue:
            step = self.steps.get(queue.popleft())
            if step is None:
                continue
            for _, target in _links(step):
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        for step_id, path in self.paths.items():
            if step_id not in seen:
                self.add(
                    path,
                    f"step {step_id!r} is not reachable from the first step {entry!r}",
                    step_id,
                )
        if not any(self.steps[s].type == "END" for s in seen if s in self.steps):
            self.add("steps", f"no END step is reachable from the first step {entry!r}")


def _links(step: _model.StepModel) -> Iterator[tuple[str, str]]:
    """Every (field path, target id) reference a step makes."""
    nxt = _next_step(step)
    if nxt is not None:
        yield "nextStep", nxt
    if isinstance(step, _model.DecisionModel):
        for source, target in step.conditionalNextSteps.items():
            yield f"conditionalNextSteps[{source!r}]", target
    if isinstance(step, _model.ParallelGatewayModel):
        for index, target in enumerate(step.parallelNextSteps):
            yield f"parallelNextSteps[{index}]", target
        yield "joinStep", step.joinStep
    for index, event in enumerate(step.boundaryEvents):
        yield f"boundaryEvents[{index}].targetStepId", event.targetStepId


def _next_step(step: _model.StepModel) -> str | None:
    """``nextStep`` where the type declares it; elsewhere it is an unknown field, ignored."""
    if "nextStep" not in type(step).model_fields:
        return None
    value: str | None = getattr(step, "nextStep", None)
    return value


def _subject(document: Mapping[str, Any]) -> str:
    definition_id = document.get("id")
    return f"definition {definition_id!r}" if isinstance(definition_id, str) else "definition"
