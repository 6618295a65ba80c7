"""Numbering a run's operations in call order, and checking each against its journal."""

from __future__ import annotations

import logging

from .._clock import Clock
from .._wire import Event, Kind
from ..errors import NonDeterminismError
from ..store import JournalEntry
from ._journal import Call, Journal, describe_entry
from ._state import Abort

log = logging.getLogger("durable.runtime")


class Cursor:
    """Where the workflow is in its journal: the next sequence number and write position.

    The first difference between what the code asks for and what the journal holds is
    kept as ``nondeterminism``; from then on (and once the run is unloaded) every new
    operation unwinds the workflow with :class:`Abort`.
    """

    def __init__(self, run_id: str, clock: Clock, history_warning: int | None = None) -> None:
        self.run_id = run_id
        self.clock = clock
        self.history_warning = history_warning
        """Warn once when the journal reaches this many records (``App(history_warning=)``)."""
        self.journal = Journal([])
        self.next_seq = 1
        self.next_pos = 0
        self.nondeterminism: NonDeterminismError | None = None
        self.closed = False

    def load(self, entries: list[JournalEntry]) -> None:
        """Replay ``entries`` (the run's journal, in write order); new ones follow them."""
        self.journal = Journal(entries)
        self.next_pos = self.journal.next_pos

    def close(self) -> None:
        """The run is unloaded: workflow code still running makes no more calls."""
        self.closed = True

    def take(self, call: Call) -> int:
        """Number the next operation, checking it against the journal."""
        if self.closed or self.nondeterminism is not None:
            raise Abort()
        seq = self.next_seq
        self.next_seq += 1
        recorded = self.journal.mismatch(seq, call)
        if recorded is not None:
            self.flag(seq, recorded, call.describe())
            raise Abort()
        return seq

    def entry(self, seq: int, event: Event, call: Call, payload: str | None) -> JournalEntry:
        """The next journal entry of this run (positions are assigned in write order)."""
        at = self.clock.now()
        made = JournalEntry(
            self.next_pos, seq, event, call.kind, call.name, call.fingerprint, payload, at
        )
        self.next_pos += 1
        if self.next_pos == self.history_warning:
            log.warning(
                "run %s: its journal has reached %d records; a long-lived workflow should "
                "call ctx.continue_as_new to start a fresh journal (App(history_warning=))",
                self.run_id,
                self.next_pos,
            )
        return made

    def flag(self, seq: int, recorded: str, requested: str) -> None:
        """Report a divergence from the journal (the first one counts)."""
        if self.nondeterminism is None:
            self.nondeterminism = NonDeterminismError(self.run_id, seq, recorded, requested)

    def marker(self, change_id: str) -> bool:
        """Whether the journal holds the marker of patch ``change_id`` at the next seq."""
        recorded = self.journal.first.get(self.next_seq)
        return recorded is not None and recorded.kind == Kind.PATCH and recorded.name == change_id

    def passed(self) -> bool:
        """Whether the recorded run went past the next seq (code that ran before a change)."""
        return self.journal.max_seq >= self.next_seq

    def first_unread(self) -> JournalEntry | None:
        """The first record at or after the next seq: one the code has not reached."""
        unread = [seq for seq in self.journal.first if seq >= self.next_seq]
        return self.journal.first[min(unread)] if unread else None

    def check_consumed(self) -> None:
        """The workflow returned: flag the journal's records it never reached."""
        if self.journal.max_seq >= self.next_seq:
            recorded = self.journal.first[self.journal.max_seq]
            self.flag(
                recorded.seq, describe_entry(recorded), "nothing more (the workflow returned)"
            )
