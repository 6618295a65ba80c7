"""Writing a run's progress: commits, the outcome a run ends with, a log line per state."""

from __future__ import annotations

import logging
from typing import Any

from .._clock import Clock
from .._future import DurableFuture
from .._wire import StoredError
from ..errors import (
    Cancelled,
    ContinueAsNew,
    NonDeterminismError,
    SerializationError,
    WorkflowTimeout,
)
from ..info import Status
from ..registry import Workflow
from ..store import (
    Commit,
    Fence,
    Finish,
    JournalEntry,
    Outcome,
    Park,
    Release,
    Restart,
    Store,
    Suspend,
)
from ._cursor import Cursor
from ._outbox import Outbox

log = logging.getLogger("durable.runtime")


class Writer:
    """Commits what the run's outbox holds, decides how the run ends, logs each state."""

    def __init__(
        self,
        store: Store,
        fence: Fence,
        parent_id: str | None,
        workflow: Workflow[Any, Any],
        cursor: Cursor,
        outbox: Outbox,
        name: str,
    ) -> None:
        self.store = store
        self.fence = fence
        self.parent_id = parent_id
        self.workflow = workflow
        self.cursor = cursor
        self.outbox = outbox
        self.name = name
        """The run's workflow as stored: a flow's definition id, not the flow runner's."""
        self.state = "CLAIMED"
        """The run's state as last logged (``COMPLETED``, ``WAITING``, ``LEASE_LOST`` ...)."""
        self.outcome: Outcome | None = None
        """The last outcome committed (a ``Finish`` holds the run's error)."""
        self.pausing = False
        """The run is to pause: giving it back (Suspend, Release) leaves it PAUSED."""
        self.asked_to_pause = False
        """A commit found the run marked to pause (the executor then pauses it)."""

    async def commit(
        self,
        entry: JournalEntry | None,
        outcome: Outcome | None,
        *,
        consumed: list[tuple[int, int]] | None = None,
        keep: bool = True,
        pause: str | None = None,
    ) -> None:
        """Commit ``entry`` after what the outbox holds (nothing of it unless ``keep``)."""
        entries, children, events, tags = self.outbox.take()
        if not keep:  # a parked run's diverged code writes and publishes nothing
            entries, children, events, tags = [], [], [], []
        if entry is not None:
            entries.append(entry)
        if isinstance(outcome, Restart):  # the journal is wiped in the same transaction
            entries, children = [], []
        parent = self.parent_id if isinstance(outcome, Finish) else None
        commit = Commit(
            self.fence, entries, consumed or [], outcome, children, events, tags, parent, pause
        )
        if await self.store.commit(commit):
            self.asked_to_pause = True
        if isinstance(outcome, Finish) and outcome.status is Status.COMPLETED:
            self.store.completed.add(self.fence.run_id, self.name, outcome.result)
        if outcome is not None:
            self.outcome = outcome
            given_back = isinstance(outcome, (Suspend, Release))
            self.log_state("PAUSED" if self.pausing and given_back else outcome)

    # -- how the run ends -------------------------------------------------------------
    def finish(self, status: Status, result: str | None = None, error: str | None = None) -> Finish:
        return Finish(status, result, error, cancel_children=bool(self.cursor.journal.started))

    def failed(self, exc: BaseException) -> Finish:
        return self.finish(Status.FAILED, error=StoredError.from_exception(exc).dumps())

    def final(self, main: DurableFuture[Any]) -> Finish | Restart:
        """How the run ends now that its workflow function returned or raised."""
        exc = main.exception()
        if exc is None:
            try:
                result = self.workflow.codec.encode_result(main.result())
            except SerializationError as error:
                return self.failed(error)
            return self.finish(Status.COMPLETED, result=result)
        if isinstance(exc, ContinueAsNew):
            return Restart(exc.args_text, cancel_children=bool(self.cursor.journal.started))
        if isinstance(exc, Cancelled):
            return self.finish(Status.CANCELLED, error=StoredError.from_exception(exc).dumps())
        return self.failed(exc)

    def timed_out(self) -> Finish:
        """The end of a run whose execution timeout passed."""
        return self.failed(
            WorkflowTimeout(
                f"run {self.fence.run_id!r} of workflow {self.workflow.name!r} timed out: it was "
                f"still going {self.workflow.execution_timeout} s after it started "
                "(execution_timeout)"
            )
        )

    # -- logs ---------------------------------------------------------------------------
    def log_state(self, outcome: Outcome | str, **fields: object) -> None:
        """One structured line per state change of the run."""
        self.state = state = _state_of(outcome, self.cursor.clock, fields)
        extra = "".join(f" {key}={value}" for key, value in fields.items())
        log.info(
            "run=%s workflow=%s epoch=%d state=%s%s",
            self.fence.run_id,
            self.name,
            self.fence.epoch,
            state,
            extra,
        )


def parked(exc: NonDeterminismError) -> Park:
    """Parking a run whose code diverged from its journal."""
    return Park(StoredError.nondeterminism(exc).dumps_reason())


def _state_of(outcome: Outcome | str, clock: Clock, fields: dict[str, object]) -> str:
    """The state a run is in after ``outcome``; adds what its log line says to ``fields``."""
    match outcome:
        case Suspend(wake_at=wake_at, signal_names=names):
            if wake_at is not None:
                fields["wake_in"] = f"{max(0.0, wake_at - clock.now()):.3f}s"
            if names:
                fields["signals"] = ",".join(names)
            return "WAITING"
        case Finish(status=status):
            return str(status)
        case Park():
            return "PARKED"
        case Release():
            return "RELEASED"
        case Restart():
            return "CONTINUED_AS_NEW"
        case str():
            return outcome
    raise AssertionError(f"unknown outcome {outcome!r}")
