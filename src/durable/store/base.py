"""The Store protocol: the persistence primitives the runtime and the client need.

A store holds runs, their journals and their signals. It knows nothing of replay: it
claims runs under leases, appends journal entries under a fencing epoch, and wakes
whoever waits for a change. ``sqlite.py`` and ``postgres.py`` implement it; one
conformance suite (``tests/store``) runs against both.

Times are seconds since the epoch (floats), taken from the store's clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..info import Status
from ._notify import Subscription

TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    workflow: str
    status: Status
    args: str
    result: str | None
    error: str | None
    parked_reason: str | None
    epoch: int
    cancel_requested: bool
    mailbox_version: int
    created_at: float
    updated_at: float


RUN_COLUMNS = (
    "id, workflow, status, args, result, error, parked_reason, epoch, cancel_requested, "
    "mailbox_version, created_at, updated_at"
)


def run_from_row(row: Sequence[Any]) -> RunRecord:
    """A RunRecord from a row selected as ``RUN_COLUMNS``."""
    return RunRecord(
        id=row[0],
        workflow=row[1],
        status=Status(row[2]),
        args=row[3],
        result=row[4],
        error=row[5],
        parked_reason=row[6],
        epoch=row[7],
        cancel_requested=bool(row[8]),
        mailbox_version=row[9],
        created_at=row[10],
        updated_at=row[11],
    )


CANCELLED_BEFORE_START = (
    '{"type":"Cancelled","message":"cancelled before it started","traceback":""}'
)


def lease_lost(run_id: str) -> Exception:
    from ..errors import LeaseLostError

    return LeaseLostError(
        f"run {run_id!r} was taken over by another worker; this worker's write was refused"
    )


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal row. ``pos`` orders the rows of a run; ``seq`` names the operation."""

    pos: int
    seq: int
    event: str
    kind: str
    name: str
    fingerprint: str | None
    payload: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class SignalRecord:
    id: int
    name: str
    payload: str


@dataclass(frozen=True, slots=True)
class Fence:
    """A worker's claim on a run: writes succeed only while ``epoch`` is the run's epoch."""

    run_id: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Suspend:
    """Release the run until ``wake_at`` or a signal named in ``signal_names`` arrives.

    ``mailbox_version`` is the version the executor last read: if a signal or a
    cancellation arrived since (the run's version moved on), the run stays runnable, so a
    signal racing the suspension is never lost.
    """

    wake_at: float | None
    signal_names: tuple[str, ...]
    mailbox_version: int


@dataclass(frozen=True, slots=True)
class Finish:
    status: Status
    result: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Park:
    """Stop running the run until a worker with different code starts (non-determinism)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Release:
    """Give the run back at once (a worker shutting down)."""


Outcome = Suspend | Finish | Park | Release


@dataclass(slots=True)
class Commit:
    """One atomic write of a run's progress, accepted only under ``fence``."""

    fence: Fence
    entries: list[JournalEntry] = field(default_factory=list)
    consumed_signals: list[tuple[int, int]] = field(default_factory=list)
    """(signal id, seq of the wait that consumed it)."""
    outcome: Outcome | None = None


@dataclass(frozen=True, slots=True)
class LeaseState:
    """What a lease renewal reports about a run the worker still holds."""

    mailbox_version: int
    cancel_requested: bool


class Store(Protocol):
    """Persistence primitives. Every method is a single transaction."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None: ...

    # -- client operations ----------------------------------------------------------
    async def create_run(self, run_id: str, workflow: str, args: str) -> tuple[RunRecord, bool]:
        """Insert a PENDING run unless the id exists; return the run and whether it is new."""

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def list_runs(
        self, *, status: Status | None, workflow: str | None, limit: int
    ) -> list[RunRecord]: ...

    async def read_journal(self, run_id: str) -> list[JournalEntry]: ...

    async def send_signal(self, run_id: str, name: str, payload: str) -> None:
        """Buffer a signal and wake the run; raises RunNotFoundError or RunClosedError."""

    async def request_cancel(self, run_id: str) -> RunRecord:
        """Mark the run for cancellation (a PENDING run ends CANCELLED at once)."""

    # -- worker operations ----------------------------------------------------------
    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[RunRecord]:
        """Lease up to ``limit`` runnable runs, bumping each one's epoch."""

    async def renew(
        self, owner: str, fences: list[Fence], lease_seconds: float
    ) -> dict[str, LeaseState]:
        """Extend leases; runs missing from the answer were lost to another worker."""

    async def pending_signals(self, run_id: str, after_id: int) -> list[SignalRecord]:
        """Unconsumed signals of a run with an id above ``after_id``, oldest first."""

    async def commit(self, commit: Commit) -> None:
        """Append entries, consume signals and apply the outcome, atomically.

        Raises LeaseLostError, writing nothing, when the run's epoch moved on.
        """

    async def next_wake_at(self) -> float | None:
        """The earliest time any run becomes runnable."""

    async def unpark(self) -> int:
        """Make parked runs runnable again (new code was deployed); return how many."""

    # -- notifications --------------------------------------------------------------
    def subscribe(self, topic: str) -> Subscription:
        """A flag set when ``topic`` may have changed: ``WORK`` or ``run_topic(run_id)``."""
