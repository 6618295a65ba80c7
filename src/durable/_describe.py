"""Store records in their public form: a run as ``RunDescription``, a journal record as
``HistoryEvent``, a parked run's reason as the error it stands for.

Kept beside ``info`` (the public types), not in it: ``info`` is imported by the store,
whose records these read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .errors import DurableError, NonDeterminismError, NotRegisteredError
from .info import HistoryEvent, RunDescription
from .serde import loads
from .store import JournalEntry, RunRecord


def when(stamp: float) -> datetime:
    """A stored time (seconds since the epoch) as an aware UTC datetime."""
    return datetime.fromtimestamp(stamp, UTC)


def history_event(entry: JournalEntry) -> HistoryEvent:
    """The public form of one journal record."""
    return HistoryEvent(
        position=entry.pos,
        seq=entry.seq,
        event=entry.event,
        kind=entry.kind,
        name=entry.name,
        payload=loads(entry.payload) if entry.payload is not None else None,
        at=when(entry.created_at),
        fingerprint=entry.fingerprint,
    )


def describe(run: RunRecord) -> RunDescription:
    """The public snapshot of a run record (without its children and flow state)."""
    parked = json.loads(run.parked_reason)["message"] if run.parked_reason else None
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
        error=json.loads(run.error) if run.error else None,
        parked_reason=parked,
        cancel_requested=run.cancel_requested,
    )


def parked_error(run: RunRecord) -> DurableError:
    """The error that parked a run, rebuilt from its stored form."""
    data = json.loads(run.parked_reason or "{}")
    if data.get("type") == "NonDeterminismError":
        return NonDeterminismError(run.id, data["seq"], data["recorded"], data["requested"])
    if data.get("type") == "NotRegisteredError":
        return NotRegisteredError(f"run {run.id!r} is parked: {data['message']}")
    return DurableError(f"run {run.id!r} is parked: {data.get('message', '?')}")
