"""In-process wake-ups: a store notifies topics, subscribers wait on them.

A subscription is a sticky flag: a notification that arrives between a subscriber's
check of the database and its wait is not lost. Notifications may cross event loops and
threads (several Apps in one process sharing one database file).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable

WORK = "work"
JOBS = "jobs"
"""External jobs were queued or re-queued: pollers waiting for work may look again."""
SCHEDULES = "schedules"
"""A schedule was created, changed or resumed (its due time moved)."""


def run_topic(run_id: str) -> str:
    return f"run:{run_id}"


def queue_topic(name: str) -> str:
    """An activity slot of queue ``name`` was freed."""
    return f"queue:{name}"


def event_topic(run_id: str) -> str:
    """A run published an event (``ctx.set_event``)."""
    return f"event:{run_id}"


class Subscription:
    """A sticky flag set by notifications of one topic."""

    def __init__(self, hub: Notifier, topic: str) -> None:
        self._hub = hub
        self.topic = topic
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._on_set: Callable[[], object] = self._event.set

    def call_on_notify(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` on the subscriber's loop at each notification, instead of
        setting the flag (a subscriber that needs no task waiting on it)."""
        self._on_set = callback

    def _set_threadsafe(self) -> None:
        if asyncio._get_running_loop() is self._loop:  # its own thread: no wake-up needed
            self._on_set()
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._on_set)

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, timeout: float | None) -> bool:
        """Wait until notified (True) or ``timeout`` passes (False); then clear the flag."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        self._event.clear()
        return True

    def close(self) -> None:
        self._hub._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Notifier:
    """Topics and their subscriptions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: defaultdict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, topic: str) -> Subscription:
        sub = Subscription(self, topic)
        with self._lock:
            self._subs[topic].add(sub)
        return sub

    def notify(self, topic: str) -> None:
        with self._lock:
            subs = list(self._subs.get(topic, ()))
        for sub in subs:
            sub._set_threadsafe()

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.topic]
