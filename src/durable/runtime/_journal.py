"""The journal of one run as loaded at claim time, and the checks replay makes against it."""

from __future__ import annotations

from dataclasses import dataclass

from ..store.base import JournalEntry

# Kinds answered the moment they are called (no waiting): replay returns them by seq.
INSTANT_KINDS = frozenset({"now", "random", "uuid4", "step"})
RESULT, ERROR, TIMER, CANCEL = "result", "error", "timer", "cancel"


@dataclass(frozen=True, slots=True)
class Call:
    """What workflow code asked for: compared with the journal on replay."""

    kind: str
    name: str
    fingerprint: str | None = None

    def describe(self) -> str:
        text = f"{self.kind} {self.name!r}" if self.name else self.kind
        return f"{text} (arguments {self.fingerprint})" if self.fingerprint else text


def describe_entry(entry: JournalEntry) -> str:
    return Call(entry.kind, entry.name, entry.fingerprint).describe()


class Journal:
    """A run's journal, indexed for replay."""

    def __init__(self, entries: list[JournalEntry]) -> None:
        self.first: dict[int, JournalEntry] = {}
        self.final: dict[int, JournalEntry] = {}
        self.timers: dict[int, float] = {}
        self.deliveries: list[JournalEntry] = []
        self.cancelled = False
        for entry in entries:
            if entry.event == CANCEL:
                self.cancelled = True
                self.deliveries.append(entry)
                continue
            self.first.setdefault(entry.seq, entry)
            if entry.event == TIMER:
                self.timers[entry.seq] = float(entry.payload or 0)
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
