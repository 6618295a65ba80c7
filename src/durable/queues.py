"""``durable.Queue``: a named queue of runs (and activities) with optional limits.

Limits are declared in code, on the App, by every process that serves the queue. A
worker writes its declarations to the store when it starts (the ``queues`` table); the
claim query reads the global limits from there, so a fleet that disagrees converges on
the declaration of the worker that started last (and that worker logs a warning).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta

from .errors import ConfigurationError

DEFAULT_QUEUE = "default"
"""The queue of a run whose workflow and start name none."""

MAX_NAME = 200
_INT32 = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Queue:
    """A queue: where runs wait to be claimed, with optional limits.

    Args:
        name: The queue's name (1 to 200 characters).
        concurrency: At most this many runs of the queue execute at once across all
            workers (an activity queue: this many activity attempts at once).
        worker_concurrency: At most this many at once in any one worker.
        rate_limit: ``(n, period)``: at most ``n`` starts in any ``period`` seconds
            across all workers (a run starts at its first claim; an activity at each
            attempt).

    Example::

        reports = durable.Queue("reports", concurrency=2, rate_limit=(10, 60.0))
        app = durable.App(queues=[reports])

        @durable.workflow(queue="reports")
        async def report(ctx: durable.Context, month: str) -> str: ...
    """

    name: str
    _: KW_ONLY
    concurrency: int | None = None
    worker_concurrency: int | None = None
    rate_limit: tuple[int, float] | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        for field in ("concurrency", "worker_concurrency"):
            value = getattr(self, field)
            if value is not None and not _positive_int(value):
                raise ConfigurationError(
                    f"queue {self.name!r}: {field} must be a positive integer or None,"
                    f" got {value!r}"
                )
        if self.rate_limit is not None:
            object.__setattr__(self, "rate_limit", _rate(self.name, self.rate_limit))

    @property
    def limited(self) -> bool:
        """Whether a limit holds across workers (``concurrency`` or ``rate_limit``)."""
        return self.concurrency is not None or self.rate_limit is not None

    @property
    def has_limits(self) -> bool:
        """Whether any limit is set."""
        return self.limited or self.worker_concurrency is not None


def check_name(name: object, what: str = "queue name") -> str:
    """``name`` when it is a usable queue name; ConfigurationError otherwise.

    A name is 1 to 200 characters, none of them a control character (NUL, a newline, a
    tab...) or a lone surrogate, which the stores cannot keep.
    """
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise ConfigurationError(
            f"{what} must be a string of 1 to {MAX_NAME} characters, got {name!r}"
        )
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise ConfigurationError(
            f"{what} must not contain control characters (NUL, newline, tab...) or lone"
            f" surrogates, got {name!r} (it contains {bad!r})"
        )
    return name


def queue_name(queue: str | Queue | None, what: str = "queue") -> str | None:
    """The name of a queue given by name or as a ``Queue``; None stays None."""
    if queue is None:
        return None
    if isinstance(queue, Queue):
        return queue.name
    return check_name(queue, what)


def check_priority(priority: object) -> int:
    """``priority`` when it is a 32-bit integer; ConfigurationError otherwise."""
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > _INT32:
        raise ConfigurationError(
            f"priority must be an integer between {-_INT32} and {_INT32}, got {priority!r}"
        )
    return priority


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _INT32


def _rate(name: str, rate: object) -> tuple[int, float]:
    problem = (
        f"queue {name!r}: rate_limit must be (starts, period in seconds) with a positive"
        f" integer and a positive period, got {rate!r}"
    )
    if not isinstance(rate, tuple | list) or len(rate) != 2:
        raise ConfigurationError(problem)
    count, period = rate
    if isinstance(period, timedelta):
        period = period.total_seconds()
    if not _positive_int(count) or isinstance(period, bool):
        raise ConfigurationError(problem)
    if not isinstance(period, int | float) or not math.isfinite(period) or period <= 0:
        raise ConfigurationError(problem)
    return int(count), float(period)
