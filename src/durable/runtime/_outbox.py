"""What the run's next commit writes besides the outcome it carries."""

from __future__ import annotations

from ..store import ChildStart, JournalEntry


class Outbox:
    """Journal entries, children to create and events to publish, waiting for a commit.

    Operations answered at once (recorded values, patch markers, events, armed timers,
    started children) are buffered here and ride along with the next commit, so they
    cost no round trip of their own. Some must not wait for the next result: they make
    the outbox ``urgent``, and the executor commits it before it waits again.
    """

    __slots__ = ("children", "entries", "events", "tags", "urgent", "volatile")

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []
        self.children: list[ChildStart] = []
        self.events: list[tuple[str, str]] = []
        self.tags: list[tuple[str, str]] = []
        self.urgent = False
        """It holds what must not wait for the next result (see ``RunExecutor._live``)."""
        self.volatile = False
        """It holds ``ctx.now()``/``random()``/``uuid4()`` values: journal them before any
        activity or child can use them."""

    def add(self, entry: JournalEntry, *, urgent: bool = False, volatile: bool = False) -> None:
        self.entries.append(entry)
        if urgent:
            self.urgent = True
        if volatile:
            self.volatile = True

    def hurry(self) -> None:
        """Commit what is buffered before the run waits again (``WorkflowHost.flush_soon``)."""
        self.urgent = True

    def add_child(self, child: ChildStart, entry: JournalEntry) -> None:
        """A child run created with the commit that journals its start (``entry``)."""
        self.children.append(child)
        self.add(entry, urgent=True)

    def add_event(self, key: str, text: str, entry: JournalEntry) -> None:
        self.events.append((key, text))
        self.add(entry, urgent=True)

    def add_tags(self, tags: tuple[tuple[str, str], ...], entry: JournalEntry) -> None:
        """Tags written with the next commit (no round trip of their own)."""
        self.tags.extend(tags)
        self.add(entry)

    def take(
        self,
    ) -> tuple[list[JournalEntry], list[ChildStart], list[tuple[str, str]], list[tuple[str, str]]]:
        """Everything buffered, for a commit; the outbox is empty after."""
        taken = self.entries, self.children, self.events, self.tags
        self.entries, self.children, self.events, self.tags = [], [], [], []
        self.urgent = self.volatile = False
        return taken

    def mark(self) -> int:
        """Where the entries buffered from now on begin (for ``insert`` and ``set_aside``)."""
        return len(self.entries)

    def insert(self, mark: int, entry: JournalEntry) -> None:
        """Buffer ``entry`` ahead of those buffered since ``mark``."""
        self.entries.insert(mark, entry)

    def set_aside(self, mark: int) -> tuple[list[JournalEntry], bool, bool]:
        """Take the entries buffered since ``mark``, the urgency and the volatility."""
        later = self.entries[mark:]
        del self.entries[mark:]
        return later, self.urgent, self.volatile

    def put_back(self, later: list[JournalEntry], urgent: bool, volatile: bool) -> None:
        """Buffer again what ``set_aside`` took, ahead of anything buffered since.

        The flags come back too: a value recorded while the workflow stepped must still
        be journaled before the activity it feeds starts.
        """
        self.entries = later + self.entries
        self.urgent, self.volatile = urgent, volatile
