"""Store records in their public form: a run as ``RunDescription``, a journal record as
``HistoryEvent``, a run's stored error or parked reason as the error it stands for; and
back: a ``RunFilter`` as the store's ``RunQuery``, a page position as an opaque cursor.

Kept beside ``info`` (the public types), not in it: ``info`` is imported by the store,
whose records these read.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from ._wire import StoredError
from .errors import DurableError, InvalidInputError, WorkflowFailed
from .info import HistoryEvent, RunDescription, RunFilter, Status, check_tags
from .serde import loads
from .store import JournalEntry, RunQuery, RunRecord


def when(stamp: float) -> datetime:
    """A stored time (seconds since the epoch) as an aware UTC datetime."""
    return datetime.fromtimestamp(stamp, UTC)


def history_event(entry: JournalEntry, superseded: bool = False) -> HistoryEvent:
    """The public form of one journal record (``superseded`` by a retry of the run)."""
    return HistoryEvent(
        position=entry.pos,
        seq=entry.seq,
        event=entry.event.value,  # the public record holds plain text
        kind=entry.kind.value,
        name=entry.name,
        payload=loads(entry.payload) if entry.payload is not None else None,
        at=when(entry.created_at),
        fingerprint=entry.fingerprint,
        superseded=superseded,
    )


def describe(run: RunRecord) -> RunDescription:
    """The public snapshot of a run record (without its children and flow state)."""
    parked = StoredError.loads(run.parked_reason).message if run.parked_reason else None
    return RunDescription(
        business_key=run.business_key,
        flow_version=run.flow_version,
        parent_id=run.parent_id,
        queue=run.queue,
        priority=run.priority,
        run_id=run.id,
        workflow=run.workflow,
        status=run.status,
        created_at=when(run.created_at),
        updated_at=when(run.updated_at),
        result=loads(run.result) if run.result is not None else None,
        error=StoredError.loads(run.error).to_dict() if run.error else None,
        parked_reason=parked,
        paused_reason=None if run.status.is_terminal else run.paused_reason,
        forked_from=None if run.forked_from is None else (run.forked_from, fork_at(run)),
        cancel_requested=run.cancel_requested,
        tags=dict(run.tags or {}),
    )


def failure(run: RunRecord) -> WorkflowFailed:
    """The error a FAILED or CANCELLED run ended with, as a caller receives it."""
    return StoredError.loads(run.error or "{}").workflow_failed(run.id, run.status)


def parked_error(run: RunRecord) -> DurableError:
    """The error that parked a run, rebuilt from its stored form."""
    return StoredError.loads(run.parked_reason or "{}").parked_error(run.id)


def run_query(flt: RunFilter) -> RunQuery:
    """The store's form of a public filter."""
    return RunQuery(
        status=Status(flt.status) if flt.status is not None else None,
        workflow=flt.workflow,
        business_key=flt.business_key,
        queue=flt.queue,
        tags=check_tags(flt.tags, "the filter"),
        created_after=flt.created_after.timestamp() if flt.created_after else None,
        created_before=flt.created_before.timestamp() if flt.created_before else None,
    )


def page_cursor(created_at: float, run_id: str) -> str:
    """An opaque page cursor: the (created_at, id) of a page's last run."""
    raw = json.dumps([created_at, run_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(cursor: str | None) -> tuple[float, str] | None:
    """The (created_at, id) a ``page_cursor`` holds; InvalidInputError for anything else."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, run_id = json.loads(raw)
        return float(created_at), str(run_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"list_runs(cursor={cursor!r:.40}) is not a valid cursor") from exc


def fork_at(run: RunRecord) -> int | str | None:
    """Where a forked run was cut: a seq, a step id, or None (a flow forked at its end)."""
    value = json.loads(run.fork_at or "null")
    return value if isinstance(value, (int, str)) else None
