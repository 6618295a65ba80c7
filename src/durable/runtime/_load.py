"""What a claim reads before replay: the journal, the pending signals, the prepared data."""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import DurableError, StoreError
from ..registry import Workflow
from ..store import JournalEntry, RunRecord, SignalRecord, Store


def first_claim(run: RunRecord) -> bool:
    """Claimed for the first time, never signalled: nothing to read back.

    The journal is written only under a claim (epoch 1 is the first), and every signal
    (and cancellation request) moves the mailbox version.
    """
    return run.epoch == 1 and run.mailbox_version == 0


async def load(
    store: Store, run: RunRecord, workflow: Workflow[Any, Any], fresh: bool
) -> tuple[list[JournalEntry], list[SignalRecord], Any]:
    """The journal, the pending signals and the prepared data, read concurrently; a
    first claim has no journal or signals to read (and makes no task)."""
    if first_claim(run):
        return [], [], await prepare(store, run, workflow)
    return await asyncio.gather(
        read_journal(store, run, fresh), read_signals(store, run), prepare(store, run, workflow)
    )


async def read_journal(store: Store, run: RunRecord, fresh: bool) -> list[JournalEntry]:
    """The run's journal; ``fresh``: the run just continued as new, its journal is empty."""
    if fresh or first_claim(run):
        return []
    return await store.read_journal(run.id)


async def read_signals(store: Store, run: RunRecord) -> list[SignalRecord]:
    if first_claim(run):
        return []
    return await store.pending_signals(run.id, 0)


async def prepare(store: Store, run: RunRecord, workflow: Workflow[Any, Any]) -> Any:
    """What the workflow's ``prepare`` hook loads, or the error that fails the run."""
    if workflow.prepare is None:
        return None
    try:
        return await workflow.prepare(store, run)
    except StoreError:
        raise  # the database failed: the run is retried later
    except DurableError as exc:
        return exc  # what the run needs is missing for good: it fails when it begins
