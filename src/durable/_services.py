"""``Services``: what the client objects of one App share.

``App`` builds one and hands it to every object it makes (``Handle``, ``Worker``,
``Schedules``, ``Definitions``, ``Jobs``), which use it and never the App: the client
side is a tree with ``App`` at its top, and this module imports none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .errors import ConfigurationError

if TYPE_CHECKING:
    from ._clock import Clock
    from .queues import Queue
    from .registry import Override, Registry
    from .store import Store


class Services:
    """The store, registry, clock, declared queues and activity overrides of one App."""

    def __init__(
        self, store: Store, registry: Registry, clock: Clock, queues: dict[str, Queue]
    ) -> None:
        self._store = store
        self.registry = registry
        self.clock = clock
        """The time source of the store and the workers."""
        self.queues = queues
        """The queues declared on the App, by name."""
        self.retention: float | None = None
        """Seconds after their end that the App's workers delete finished runs
        (``App(retention=)``); None keeps runs until pruned by hand."""
        self.activity_overrides: dict[str, Override] = {}
        """Activities replaced by name in the App's workers (``TestEnv.mock_activity``)."""
        self.is_open = False

    @property
    def services(self) -> Services:
        """Itself: a ``Services`` can be passed wherever an App can (:class:`HasServices`)."""
        return self

    @property
    def store(self) -> Store:
        """The store; raises ConfigurationError until the App is opened."""
        if not self.is_open:
            raise ConfigurationError("the App is not open: use 'async with durable.App() as app'")
        return self._store

    async def open(self) -> None:
        """Connect to the store and apply pending migrations (once)."""
        if not self.is_open:
            await self._store.open()
            self.is_open = True

    async def close(self) -> None:
        """Close the store's connections (once)."""
        if self.is_open:
            self.is_open = False
            await self._store.close()


class HasServices(Protocol):
    """An App, or the ``Services`` of one: what ``Handle`` and ``Worker`` are built from."""

    @property
    def services(self) -> Services: ...
