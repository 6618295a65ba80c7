"""The journal of one run as loaded at claim time, and the checks replay makes against it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .._wire import Event, Kind, RetryRecord, child_started, is_failed_job
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


def superseded(entries: list[JournalEntry]) -> set[int]:
    """The positions of the records that retries of the run superseded.

    Each ``retried`` record (``Handle.retry``) supersedes itself and, when the run failed
    at an operation (an error, or a failed external job), every record of that operation
    and everything recorded after it: replay then runs that operation again, with a fresh
    budget of attempts, and the code after it. When effects (an activity's result, a
    child's start or end) were recorded after the last failure, the workflow code itself
    raised later: nothing but the marker is superseded and the code runs again.
    """
    gone: set[int] = set()
    live: list[JournalEntry] = []
    for entry in entries:
        if entry.event != Event.RETRIED:
            live.append(entry)
            continue
        gone.add(entry.pos)
        failed = _failure(live)
        if failed is not None:
            dropped = {e.pos for e in live if e.pos >= failed.pos or e.seq == failed.seq}
            gone |= dropped
            live = [e for e in live if e.pos not in dropped]
    return gone


def failure_seq(entries: list[JournalEntry]) -> int | None:
    """The operation the run failed at (as ``superseded`` finds it), or None."""
    gone = superseded(entries)
    failed = _failure([e for e in entries if e.pos not in gone])
    return None if failed is None else failed.seq


def fork_prefix(
    entries: list[JournalEntry], at: int, *, new_arguments: bool = False
) -> list[JournalEntry]:
    """The records a fork cut at ``at`` starts with, numbered from position 0.

    Every operation numbered below ``at`` keeps its records (those a retry superseded
    excepted), including an outcome that arrived after ``at`` started; the run's
    cancellation and retries are not copied. A child still open there has its start
    dropped: the fork starts it again, as its own child. With ``new_arguments`` the
    records lose their fingerprints: the operations before ``at`` keep their outcomes
    even where the fork's arguments call them with other arguments.
    """
    gone = superseded(entries)
    skipped = (Event.CANCEL, Event.RETRIED)
    kept = [e for e in entries if e.pos not in gone and 0 < e.seq < at and e.event not in skipped]
    ended = {e.seq for e in kept if e.event in (Event.RESULT, Event.ERROR)}
    kept = [e for e in kept if e.event != Event.START or e.seq in ended]
    if new_arguments:
        return [replace(e, pos=pos, fingerprint=None) for pos, e in enumerate(kept)]
    return [replace(e, pos=pos) for pos, e in enumerate(kept)]


def _failure(entries: list[JournalEntry]) -> JournalEntry | None:
    """The record the run failed at: the last failure with no effect recorded after it."""
    for entry in reversed(entries):
        if entry.event == Event.ERROR or (
            entry.kind == Kind.SIGNAL and is_failed_job(entry.name, entry.payload)
        ):
            return entry
        if entry.event == Event.START or (
            entry.event == Event.RESULT and entry.kind in (Kind.ACTIVITY, Kind.CHILD)
        ):
            return None
    return None


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
        self.retried_at: float | None = None
        """When the run was last retried (``Handle.retry``): its execution timeout counts
        from then."""
        self.next_pos = entries[-1].pos + 1 if entries else 0
        retried = [e.created_at for e in entries if e.event == Event.RETRIED]
        if retried:
            self.retried_at = retried[-1]
            gone = superseded(entries)
            entries = [e for e in entries if e.pos not in gone]
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
