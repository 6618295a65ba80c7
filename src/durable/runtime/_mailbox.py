"""The run's mailbox: signals not yet consumed, and what the run record last said of it."""

from __future__ import annotations

from ..store import RunRecord, SignalRecord


class Mailbox:
    """Signals waiting for a ``wait_signal``, oldest first.

    ``version`` and ``cancel_requested`` are the run record's as last read: a lease
    renewal that reports others means new signals or a cancellation request.
    """

    __slots__ = ("cancel_requested", "last_id", "paused", "signals", "version")

    def __init__(self, version: int, cancel_requested: bool, paused: bool = False) -> None:
        self.signals: list[SignalRecord] = []
        self.last_id = 0
        self.version = version
        self.cancel_requested = cancel_requested
        self.paused = paused
        """The run is paused or asked to pause (``Handle.pause``)."""

    def empty(self) -> bool:
        return not self.signals

    def changed(self, version: int, cancel_requested: bool) -> bool:
        return version != self.version or cancel_requested != self.cancel_requested

    def add(self, signals: list[SignalRecord], *, returned: bool = False) -> None:
        """Keep signals not seen yet; ``returned`` ones went to a wait that ended otherwise."""
        for signal in signals:
            if returned or signal.id > self.last_id:
                self.signals.append(signal)
                self.last_id = max(self.last_id, signal.id)
        if returned:
            self.signals.sort(key=lambda s: s.id)

    def update(self, run: RunRecord | None, signals: list[SignalRecord]) -> None:
        """What a fresh read of the run record and its pending signals found."""
        self.add(signals)
        if run is not None:
            self.version = run.mailbox_version
            self.cancel_requested = run.cancel_requested
            self.paused = run.paused_reason is not None

    def take(self, name: str) -> SignalRecord | None:
        """The oldest signal called ``name``, removed from the mailbox."""
        for index, signal in enumerate(self.signals):
            if signal.name == name:
                del self.signals[index]
                return signal
        return None
