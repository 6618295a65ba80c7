"""The compiled form of a definition: what the flow interpreter walks.

A :class:`FlowGraph` is built only from a valid definition, with every expression and
decision table already parsed, so running a step never parses anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._expr import Expression, Value
from ._table import DecisionTable


@dataclass(frozen=True, slots=True)
class Timer:
    """A boundary timer: after ``seconds`` the flow also (or instead) goes to ``target``."""

    duration: str
    seconds: float
    interrupting: bool
    target: str


@dataclass(frozen=True, slots=True)
class Node:
    """One step. Fields beyond ``id``, ``name`` and ``type`` depend on the type."""

    id: str
    name: str
    type: str
    next: str | None = None
    timers: tuple[Timer, ...] = ()
    job_type: str | None = None
    retries: int = 0
    branches: tuple[tuple[Expression, str], ...] = ()
    assignments: tuple[tuple[str, Value], ...] = ()
    table: DecisionTable | None = None
    parallel: tuple[str, ...] = ()
    join: str | None = None


@dataclass(frozen=True, slots=True)
class FlowGraph:
    """A definition ready to run: its steps by id, the first one being the entry."""

    id: str
    name: str
    entry: str
    nodes: Mapping[str, Node]
    next_workflow: str | None = None
    version: int = 0
    document: Mapping[str, Any] = field(default_factory=dict)
