"""Replay verification: run workflow code against a recorded history, executing nothing.

The executor's own replay does the work (the same numbering, the same journal checks,
the same ``NonDeterminismError`` text), on a run that no store backs: activities never
start, timers are never armed and nothing is written. Beyond what a worker checks while
replaying, the end of the history is checked too: records the code never reached, and
code that still waits where the recorded run had ended.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from ..errors import DurableError, NonDeterminismError
from ..info import HistoryEvent, Status
from ..registry import Workflow
from ..runtime import ReplayReport, RunExecutor, strict
from ..serde import dumps
from ..store import RunRecord, Store
from ._history import History


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What :func:`replay` found when the code matched the history."""

    run_id: str
    workflow: str
    records: int
    """How many journal records the history holds."""
    outcome: str
    """``"returned"``, ``"raised <Type>: <message>"`` (the code ended with an exception),
    or ``"waiting"`` (the code waits where the history ends, as a run in flight does)."""


class _NoStore:
    """Replay verification reads and writes nothing: any store call is a bug."""

    def __getattr__(self, name: str) -> NoReturn:
        raise RuntimeError(f"durable.testing.replay touched the store ({name})")


def replay(
    workflow: Workflow[..., Any],
    history: History | Sequence[HistoryEvent] | str | os.PathLike[str],
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> ReplayResult:
    """Check that ``workflow``'s code replays a recorded history; execute nothing.

    ``history`` is a :class:`History` (``await History.fetch(app, run_id)``), the path of
    a file written by ``durable runs export``, or the events of ``Handle.history()``
    (then pass the run's ``args``/``kwargs``). Activities are not run and nothing is
    written: recorded results are handed to the code, as a worker does on replay.
    Strict determinism checks are on meanwhile (a ``DeterminismWarning`` for clock
    reads and the like).

    Example::

        history = durable.testing.History.load("order-7.json")
        durable.testing.replay(order, history)   # raises at the first divergence

    Raises:
        durable.NonDeterminismError: the first divergence: its ``seq``, what the history
            holds (``recorded``) and what the code asked for (``requested``).
        durable.DurableError: the history is of another workflow, is a JSON flow run, or
            cannot be read.
        durable.SerializationError: the recorded arguments no longer fit the signature.
    """
    if isinstance(history, str | os.PathLike):
        history = History.load(history)
    elif not isinstance(history, History):
        text = workflow.codec.encode_args(tuple(args), dict(kwargs or {}))
        history = History.from_events(history, workflow=workflow.name, args=json.loads(text))
    if history.flow_version is not None:
        raise DurableError(
            f"run {history.run_id!r} is a run of the JSON flow {history.workflow!r}: flow runs "
            "are pinned to their definition version, replay checks code-first workflows"
        )
    if history.workflow != workflow.name:
        raise DurableError(
            f"run {history.run_id!r} is a run of workflow {history.workflow!r}, "
            f"not of {workflow.name!r}"
        )
    with strict():
        return _check(workflow, history)


def _check(workflow: Workflow[..., Any], history: History) -> ReplayResult:
    stamp = history.created_at.timestamp()
    run = RunRecord(
        history.run_id, workflow.name, history.status, dumps(history.args), None, None, None,
        1, False, 0, stamp, stamp,
    )  # fmt: skip
    executor = RunExecutor(cast(Store, _NoStore()), run, workflow)
    report = executor.replay_journal(history.entries())
    found = report.nondeterminism or _diverged_at_end(report, history)
    if found is not None:
        raise NonDeterminismError(
            found.run_id, found.seq, found.recorded, found.requested, replay=True
        )
    return ReplayResult(history.run_id, workflow.name, len(history.events), _outcome(report))


def _outcome(report: ReplayReport) -> str:
    if not report.done:
        return "waiting"
    exc = report.error
    return "returned" if exc is None else f"raised {type(exc).__name__}: {exc}"


def _diverged_at_end(report: ReplayReport, history: History) -> NonDeterminismError | None:
    """What only the end of the history shows (the executor checks the rest)."""
    if report.unread is not None:
        seq, recorded = report.unread
        if report.done:
            requested = f"nothing more (the workflow {_outcome(report)})"
        else:
            requested = report.waiting_on
        return NonDeterminismError(history.run_id, seq, recorded, requested)
    if report.done or not report.pending:
        return None
    error_type = (history.error or {}).get("type")
    ended = history.status is Status.COMPLETED or (
        history.status is Status.FAILED and error_type != "WorkflowTimeout"
    )
    if not ended:
        return None
    seq, call = report.pending[0]  # the recorded run ended here; the code goes on waiting
    return NonDeterminismError(
        history.run_id, seq, f"nothing more (the run ended {history.status})", call
    )
