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
from ._expr import compile_expression, compile_value, not_boolean
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
        self.kinds: dict[str, str] = {}
        self.links: dict[str, list[tuple[str, str]]] = {}
        self.opaque: set[str] = set()  # steps whose references cannot be read
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
            for step_id, links in self.links.items():
                self._check_links(step_id, links)
            if steps and self.kinds:
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
        kind: Any = raw.get("type")
        if isinstance(step_id, str) and step_id in self.paths:
            self.add(f"{path}.id", f"duplicate step id (also {self.paths[step_id]})", step_id)
            step_id = None
        model = _model.STEP_MODELS.get(kind) if isinstance(kind, str) else None
        if step_id is not None:
            self.paths[step_id] = path  # a valid target for references, even if broken
        if model is None:
            known = ", ".join(_model.STEP_TYPES)
            self.add(f"{path}.type", f"unknown step type {kind!r} (known: {known})", step_id)
            if step_id is not None:
                self.opaque.add(step_id)
            return
        count = len(self.problems)
        step = None
        try:
            step = model.model_validate(raw)
        except PydanticError as exc:
            for error in exc.errors():
                self.add(f"{path}{_loc(error['loc'])}", error["msg"], step_id)
                if error["loc"] and error["loc"][0] in _LINK_FIELDS and step_id is not None:
                    self.opaque.add(step_id)  # its links are unknown: reachability is too
        # The rules beyond the shape run on the raw step, so a missing field does not hide
        # a bad expression or reference of the same step.
        fields = self._compile_parts(path, kind, raw, step_id)
        if step_id is None:
            return
        self.kinds[step_id] = kind
        self.links[step_id] = list(_links(kind, raw))
        if step is not None and len(self.problems) == count:
            self.nodes[step_id] = Node(
                id=step.id, name=step.name, type=kind, next=_next_step(kind, raw), **fields
            )

    def _compile_parts(
        self, path: str, kind: str, raw: Mapping[str, Any], step_id: str | None
    ) -> dict[str, Any]:
        """The parsed expressions, table and timers of a step; each bad one is a problem."""
        fields: dict[str, Any] = {"timers": tuple(self._timers(path, kind, raw, step_id))}
        if kind == "SERVICE_TASK":
            fields.update(job_type=raw.get("jobType"), retries=raw.get("retryCount", 0))
        elif kind == "DECISION":
            branches = []
            for source, target in _mapping(raw.get("conditionalNextSteps")).items():
                where = f"{path}.conditionalNextSteps[{source!r}]"
                try:
                    condition = compile_expression(source)
                except ExpressionError as exc:
                    self.add(where, str(exc), step_id)
                    continue
                gives = not_boolean(condition)
                if gives is not None:  # as Rochallor refuses it at upload
                    self.add(where, f"a DECISION condition must give true or false; {source!r}"
                             f" gives {gives}", step_id)  # fmt: skip
                branches.append((condition, target))
            fields["branches"] = tuple(branches)
        elif kind == "TRANSFORMATION":
            assignments = []
            for name, value in _mapping(raw.get("transformations")).items():
                try:
                    assignments.append((name, compile_value(value)))
                except ExpressionError as exc:
                    self.add(f"{path}.transformations.{name}", str(exc), step_id)
            fields["assignments"] = tuple(assignments)
        elif kind == "DECISION_TABLE":
            table, problems = compile_table(raw, path)
            self.problems.extend(problems)
            fields["table"] = table
        elif kind == "PARALLEL_GATEWAY":
            fields.update(parallel=tuple(_strings(raw.get("parallelNextSteps"))))
            fields.update(join=raw.get("joinStep"))
        return fields

    def _timers(
        self, path: str, kind: str, raw: Mapping[str, Any], step_id: str | None
    ) -> Iterator[Timer]:
        events = raw.get("boundaryEvents")
        if not isinstance(events, list) or not events:
            return
        if kind not in _model.TIMER_HOSTS:
            hosts = ", ".join(_model.TIMER_HOSTS)
            self.add(
                f"{path}.boundaryEvents", f"boundary events are only allowed on {hosts}", step_id
            )
            return
        for index, event in enumerate(events):
            where = f"{path}.boundaryEvents[{index}]"
            if not isinstance(event, Mapping):
                continue  # a shape problem, reported by the model
            event_type, text = event.get("type"), event.get("duration")
            if isinstance(event_type, str) and event_type != "TIMER":
                self.add(
                    f"{where}.type",
                    f"unknown boundary event type {event_type!r} (known: TIMER)",
                    step_id,
                )
                continue
            if not isinstance(text, str):
                continue
            try:
                duration = _model.parse_duration(text)
            except ValueError as exc:
                self.add(f"{where}.duration", str(exc), step_id)
                continue
            if duration.total_seconds() < 0:
                self.add(f"{where}.duration", "a timer duration cannot be negative", step_id)
                continue
            yield Timer(
                text,
                duration.total_seconds(),
                event.get("interrupting", True),
                event.get("targetStepId", ""),
            )

    def _check_links(self, step_id: str, links: list[tuple[str, str]]) -> None:
        path = self.paths[step_id]
        for where, target in links:
            if target not in self.paths:
                self.add(f"{path}.{where}", f"refers to unknown step {target!r}", step_id)
            elif where == "joinStep" and self.kinds.get(target) != "JOIN_GATEWAY":
                self.add(f"{path}.joinStep", f"step {target!r} is not a JOIN_GATEWAY", step_id)

    def _check_reachability(self, first: Any) -> None:
        entry = first.get("id") if isinstance(first, Mapping) else None
        if not isinstance(entry, str) or entry not in self.kinds:
            return  # the entry step is broken: that problem is reported already
        seen = {entry}
        queue = deque([entry])
        while queue:
            for _, target in self.links.get(queue.popleft(), ()):
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        if seen & self.opaque:
            return  # a reached step's links are unknown: what it reaches is too
        for step_id, path in self.paths.items():
            if step_id not in seen:
                self.add(
                    path,
                    f"step {step_id!r} is not reachable from the first step {entry!r}",
                    step_id,
                )
        if not any(self.kinds.get(s) == "END" for s in seen):
            self.add("steps", f"no END step is reachable from the first step {entry!r}")


_LINK_FIELDS = frozenset(
    {"nextStep", "conditionalNextSteps", "parallelNextSteps", "joinStep", "boundaryEvents"}
)


def _links(kind: str, raw: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Every (field path, target id) reference a step makes, where the field has its shape."""
    nxt = _next_step(kind, raw)
    if nxt is not None:
        yield "nextStep", nxt
    if kind == "DECISION":
        for source, target in _mapping(raw.get("conditionalNextSteps")).items():
            if isinstance(target, str):
                yield f"conditionalNextSteps[{source!r}]", target
    if kind == "PARALLEL_GATEWAY":
        for index, target in enumerate(_strings(raw.get("parallelNextSteps"))):
            yield f"parallelNextSteps[{index}]", target
        if isinstance(raw.get("joinStep"), str):
            yield "joinStep", raw["joinStep"]
    events = raw.get("boundaryEvents")
    for index, event in enumerate(events if isinstance(events, list) else ()):
        target = event.get("targetStepId") if isinstance(event, Mapping) else None
        if isinstance(target, str):
            yield f"boundaryEvents[{index}].targetStepId", target


def _next_step(kind: str, raw: Mapping[str, Any]) -> str | None:
    """``nextStep`` where the type declares it; elsewhere it is an unknown field, ignored."""
    value = raw.get("nextStep")
    declared = "nextStep" in _model.STEP_MODELS[kind].model_fields
    return value if declared and isinstance(value, str) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _subject(document: Mapping[str, Any]) -> str:
    definition_id = document.get("id")
    return f"definition {definition_id!r}" if isinstance(definition_id, str) else "definition"
