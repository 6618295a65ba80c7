"""The journal of one run as loaded at claim time, and the checks replay makes against it."""

from __future__ import annotations

from dataclasses import dataclass

from .._wire import Event, Kind, RetryRecord, child_started
from ..store import JournalEntry

# Kinds answered the moment they are called (no waiting): replay returns them by seq.
INSTANT_KINDS = frozenset(
    {Kind.NOW, Kind.RANDOM, Kind.UUID4, Kind.STEP, Kind.PATCH, Kind.EVENT, Kind.TAGS}
)


@dataclass(frozen=True, slots=True)
class Call:
    """What workflow code asked for: compared with the journal on replay."""

    kind: Kind
    name: str
    fingerprint: str | None = None

    def describe(self) -> str:
        text = f"{self.kind} {self.name!r}" if self.name else f"{self.kind}"
        return f"{text} (arguments {self.fingerprint})" if self.fingerprint else text


def describe_entry(entry: JournalEntry) -> str:
    return Call(entry.kind, entry.name, entry.fingerprint).describe()


class Journal:
    """A run's journal, indexed for replay."""

    def __init__(self, entries: list[JournalEntry]) -> None:
        self.first: dict[int, JournalEntry] = {}
        self.final: dict[int, JournalEntry] = {}
        self.timers: dict[int, float] = {}
        self.retries: dict[int, tuple[int, float]] = {}
        """seq -> (the next attempt, when it starts): the latest retry record wins."""
        self.started: dict[int, str] = {}
        """seq -> the id of the child run started there."""
        self.deliveries: list[JournalEntry] = []
        self.cancelled = False
        cancel, timer, retry, start = Event.CANCEL, Event.TIMER, Event.RETRY, Event.START
        for entry in entries:
            if entry.event == cancel:
                self.cancelled = True
                self.deliveries.append(entry)
                continue
            self.first.setdefault(entry.seq, entry)
            if entry.event == timer:
                self.timers[entry.seq] = float(entry.payload or 0)
            elif entry.event == retry:
                record = RetryRecord.loads(entry.payload or "{}")
                self.retries[entry.seq] = (record.attempt, record.at)
            elif entry.event == start:
                self.started[entry.seq] = child_started(entry.payload)
            else:
                self.final[entry.seq] = entry
                if entry.kind not in INSTANT_KINDS:
                    self.deliveries.append(entry)
        self.next_pos = entries[-1].pos + 1 if entries else 0
        self.max_seq = max(self.first, default=0)

    def mismatch(self, seq: int, call: Call) -> str | None:
        """What the journal holds at ``seq`` if it differs from ``call``, else None."""
        entry = self.first.get(seq)
        if entry is None:
            return None
        same = entry.kind == call.kind and entry.name == call.name
        if same and entry.fingerprint and call.fingerprint:
            same = entry.fingerprint == call.fingerprint
        return None if same else describe_entry(entry)
