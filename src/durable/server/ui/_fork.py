"""Forks on the dashboard: what the fork form offers, reading it, and how a fork differs
from its origin (inputs, variables, and where their journals part)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import DurableError, NotFoundError
from ...info import HistoryEvent, RunDescription, StepExecution
from ._auth import Refused
from ._forms import parse_json, stored_args

if TYPE_CHECKING:
    from starlette.datastructures import FormData

    from ...app import App
    from ...handle import Handle


@dataclass(frozen=True, slots=True)
class Change:
    """One top-level value that differs between the origin and the fork."""

    key: str
    before: Any
    after: Any
    kind: str
    """``changed``, ``added`` or ``removed``."""


@dataclass(frozen=True, slots=True)
class Origin:
    """How a fork relates to the run it was forked from."""

    run_id: str
    at: int | str | None
    inputs: list[Change]
    variables: list[Change]
    shared: int
    """How many journal records the two runs have in common from the start."""


_MISSING = object()


def changes(before: Any, after: Any) -> list[Change]:
    """The top-level keys whose values differ (a single ``value`` when not both objects)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [] if before == after else [Change("value", before, after, "changed")]
    found = []
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key, _MISSING), after.get(key, _MISSING)
        if old is _MISSING:
            found.append(Change(key, None, new, "added"))
        elif new is _MISSING:
            found.append(Change(key, old, None, "removed"))
        elif old != new:
            found.append(Change(key, old, new, "changed"))
    return found


def shared_prefix(origin: list[HistoryEvent], fork: list[HistoryEvent]) -> int:
    """How many records, from the first, the two journals hold alike."""
    count = 0
    for a, b in zip(origin, fork, strict=False):
        if (a.seq, a.event, a.kind, a.name, a.payload) != (
            b.seq,
            b.event,
            b.kind,
            b.name,
            b.payload,
        ):
            break
        count += 1
    return count


async def origin_of(
    app: App, run: RunDescription, args: Any, history: list[HistoryEvent]
) -> Origin | None:
    """The fork's origin and what differs, or None when the run is not a fork (or the
    origin is gone)."""
    if run.forked_from is None:
        return None
    origin_id, at = run.forked_from
    handle = app.handle(origin_id)
    try:
        origin = await handle.describe()
        record = await app.store.get_run(origin_id)
        their_history = await handle.history()
    except NotFoundError:
        return Origin(origin_id, at, [], [], 0)
    if run.flow_version is not None:  # a flow's input is its variables: compare those
        inputs, variables = [], changes(origin.variables, run.variables)
    else:
        inputs, variables = changes(stored_args(record.args if record else None), args), []
    return Origin(origin_id, at, inputs, variables, shared_prefix(their_history, history))


def fork_points(
    run: RunDescription, steps: list[StepExecution], history: list[HistoryEvent]
) -> list[tuple[str, str]]:
    """The ``at`` values the form offers: (value, label), after "where it failed, or its end"."""
    if run.flow_version is not None:
        return [(s, f"step {s}") for s in dict.fromkeys(step.step_id for step in steps)]
    seen: dict[int, str] = {}
    for event in history:
        seen.setdefault(event.seq, f"#{event.seq} {event.kind} {event.name}".rstrip())
    return [(str(seq), label) for seq, label in seen.items()]


async def fork(handle: Handle[Any], run: RunDescription, form: FormData) -> Handle[Any]:
    """Fork ``run`` as the form says."""
    point = str(form.get("at", "")).strip()
    at: int | str | None = None
    if point:
        at = point if run.flow_version is not None else _seq(point)
    options: dict[str, Any] = {}
    if run.flow_version is not None:
        text = str(form.get("variables", ""))
        options["variables"] = parse_json(text, "Variables for the fork (JSON)", obj=True)
    else:
        value = parse_json(str(form.get("arguments", "")), "Arguments for the fork (JSON)")
        if isinstance(value, list):
            options["args"] = value
        elif isinstance(value, dict):
            options["kwargs"] = value
        elif value is not None:
            raise Refused(400, "Arguments for the fork (JSON) must be an object or an array")
    try:
        return await handle.fork(at, **options)
    except DurableError as exc:
        raise Refused(400 if not isinstance(exc, NotFoundError) else 404, str(exc)) from None


def _seq(text: str) -> int:
    if not text.isdigit():
        raise Refused(400, f"Fork at: {text!r} is not an operation number")
    return int(text)
