"""The time source of an App: real time, or the virtual clock of ``durable.testing``.

Everything that reads or waits for the time of day in the executor, the worker's claim
loop and the SQLite store goes through one :class:`Clock`, which the App hands out:

- ``clock.now()``: seconds since the epoch (``time.time()`` for the real clock); the
  SQLite store reads it once per call, in the thread that runs the call;
- ``clock.call_later(delay, fn, *args)``: run ``fn`` once ``delay`` seconds of this
  clock's time have passed (a plain event-loop timer for the real clock).

The real clock costs what the direct calls cost (``now`` *is* ``time.time``). A virtual
clock (:class:`VirtualClock`) runs at real speed plus an offset that the test
environment moves forward whenever nothing can make progress; its timers fire in due-time
order when it does. Postgres compares times with the database server's clock, so a
virtual clock works with the SQLite store only.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Timer(Protocol):
    """A scheduled callback (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None: ...


class Clock:
    """Real time: ``now`` is ``time.time``, timers are event-loop timers."""

    virtual = False
    """True for a clock whose time may jump ahead of real time (``VirtualClock``)."""

    def __init__(self) -> None:
        self.now: Callable[[], float] = time.time
        """Seconds since the epoch, as this clock tells it."""

    def call_later(self, delay: float, fn: Callable[..., object], *args: Any) -> Timer:
        """Call ``fn(*args)`` once ``delay`` seconds of this clock have passed."""
        return asyncio.get_running_loop().call_later(delay, fn, *args)


REAL = Clock()
"""The real clock, shared by every App that was not given another one."""


class _VirtualTimer:
    """A callback due at a virtual time; armed on the loop for the real time left."""

    __slots__ = ("args", "clock", "context", "done", "fn", "handle", "when")

    def __init__(
        self, clock: VirtualClock, when: float, fn: Callable[..., object], args: tuple[Any, ...]
    ) -> None:
        self.clock = clock
        self.when = when
        self.fn = fn
        self.args = args
        self.context = contextvars.copy_context()
        self.done = False
        self.handle: asyncio.Handle | None = None

    def arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.handle is not None:
            self.handle.cancel()
        delay = self.when - self.clock.now()
        if delay <= 0:
            self.handle = loop.call_soon(self.fire, context=self.context)
        else:
            self.handle = loop.call_later(delay, self.fire, context=self.context)

    def fire(self) -> None:
        if not self.done:
            self.done = True
            self.fn(*self.args)

    def cancel(self) -> None:
        self.done = True
        if self.handle is not None:
            self.handle.cancel()


class VirtualClock(Clock):
    """Real time plus an offset that only grows; ``advance_to`` jumps it ahead.

    Its timers fire when real time reaches them, or at once, in due-time order, when the
    clock jumps past them. ``busy`` counts the store calls in flight, so that whoever
    moves the clock can tell when nothing is happening.
    """

    virtual = True

    def __init__(self, start: float | None = None) -> None:
        super().__init__()
        self.offset = 0.0 if start is None else max(0.0, start - time.time())
        self.now = self._now
        self.busy = 0
        self._timers: list[tuple[float, int, _VirtualTimer]] = []
        self._order = itertools.count()

    def _now(self) -> float:
        return time.time() + self.offset

    def call_later(self, delay: float, fn: Callable[..., object], *args: Any) -> Timer:
        timer = _VirtualTimer(self, self.now() + max(0.0, delay), fn, args)
        heapq.heappush(self._timers, (timer.when, next(self._order), timer))
        timer.arm(asyncio.get_running_loop())
        return timer

    def next_timer(self) -> float | None:
        """When the earliest pending timer is due (None when there is none)."""
        while self._timers and self._timers[0][2].done:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def advance_to(self, when: float) -> None:
        """Move the clock to ``when`` (if that is ahead) and fire the timers now due, in order."""
        if when > self.now():
            self.offset += when - self.now()
        loop = asyncio.get_running_loop()
        for _, _, timer in sorted(self._timers):
            if not timer.done:
                timer.arm(loop)  # the due ones are queued in order; the others re-timed

    # -- the store's side -----------------------------------------------------------
    async def track(self, call: Awaitable[T]) -> T:
        """Await a store call, counted in ``busy`` until its caller has its answer."""
        self.busy += 1
        try:
            return await call
        finally:
            self.busy -= 1
