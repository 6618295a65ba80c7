"""Forking a run (``Handle.fork``): a new run that starts with a copy of a journal's prefix.

The fork is cut at ``at``, the first operation that runs again: a journal seq for a
code-first run, a step id for a flow run (that step's latest start). Every operation
numbered below the cut keeps its recorded outcome, so none of them runs again; the fork
executes from the cut on with the code deployed now. ``runtime._journal.fork_prefix``
says what is copied; docs/operating.md says what a fork gets.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ._services import Services
from ._wire import Event, Kind
from .errors import InvalidInputError
from .flow._state import fork_point
from .runtime import failure_seq, fork_prefix
from .serde import dumps
from .store import ForkStart, JournalEntry, RunRecord


async def fork_run(
    services: Services,
    run: RunRecord,
    at: int | str | None,
    *,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    variables: Mapping[str, Any] | None,
    fork_id: str | None,
) -> RunRecord:
    """Create the fork of ``run`` (see the module); return the new run.

    Raises InvalidInputError naming the run and the argument when ``at`` is not a point
    of its journal, or the arguments do not fit the kind of run; RunConflictError when
    ``fork_id`` is taken.
    """
    entries = await services.store.read_journal(run.id)
    if run.flow_version is not None:
        if args is not None or kwargs is not None:
            raise InvalidInputError(
                f"run {run.id!r} is a flow run: fork it with variables=, not args/kwargs"
            )
        cut, args_text, where = _flow_cut(run, entries, at, variables)
    else:
        if variables is not None:
            raise InvalidInputError(
                f"run {run.id!r} is a code-first run: fork it with args/kwargs, not variables="
            )
        cut = _code_cut(run, entries, at)
        args_text = _code_args(services, run, args, kwargs)
        where = json.dumps(cut)
    copied = fork_prefix(entries, cut, new_arguments=args_text != run.args)
    events = [
        (e.name, e.payload)
        for e in copied
        if e.kind == Kind.EVENT and e.event == Event.RESULT and e.payload is not None
    ]
    new_id = fork_id or f"{run.id}-fork-{uuid.uuid4().hex[:8]}"
    fork = ForkStart(new_id, run, where, args_text, copied, events)
    forked = await services.store.fork_run(fork)
    services.store.completed.forget(forked.id)  # a pruned run's id may be used again
    return forked


def _code_cut(run: RunRecord, entries: list[JournalEntry], at: int | str | None) -> int:
    end = max((e.seq for e in entries), default=0) + 1
    if at is None:  # the failure point, else the end
        return failure_seq(entries) or end
    if isinstance(at, bool) or not isinstance(at, int) or not 1 <= at <= end:
        raise InvalidInputError(
            f"cannot fork run {run.id!r} at {at!r}: at= is a seq of its history, 1 to {end}"
        )
    return at


def _flow_cut(
    run: RunRecord,
    entries: list[JournalEntry],
    at: int | str | None,
    variables: Mapping[str, Any] | None,
) -> tuple[int, str, str]:
    """The cut, the stored arguments and the fork point (JSON) of a flow run's fork."""
    if at is not None and not isinstance(at, str):
        raise InvalidInputError(
            f"cannot fork flow run {run.id!r} at {at!r}: at= is the id of a step it ran"
        )
    found = fork_point(entries, at)
    if found is None and at is not None:
        raise InvalidInputError(f"cannot fork flow run {run.id!r} at step {at!r}: it never ran")
    cut, step = found or (max((e.seq for e in entries), default=0) + 1, None)
    stored = json.loads(run.args)
    new: dict[str, Any] = {"variables": stored.get("variables") or {}}
    if variables is not None:
        if not isinstance(variables, Mapping):
            raise InvalidInputError(
                f"variables= of a fork of run {run.id!r} must be a JSON object, got {variables!r}"
            )
        new["fork"] = {"at": cut, "variables": dict(variables)}
    return cut, dumps(new), json.dumps(step)


def _code_args(
    services: Services,
    run: RunRecord,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
) -> str:
    if args is None and kwargs is None:
        return run.args
    workflow = services.registry.workflows.get(run.workflow)
    if workflow is None:
        raise InvalidInputError(
            f"cannot fork run {run.id!r} with new arguments: workflow {run.workflow!r} is"
            " not registered in this App, so they cannot be checked"
        )
    workflow = workflow.for_app(services.values.serializer)
    return workflow.codec.encode_args(tuple(args or ()), dict(kwargs or {}))
