"""Retry policy for activities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal


def to_seconds(value: float | timedelta, what: str) -> float:
    """Seconds from a number or a ``timedelta``; negative values are an error."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how fast an activity is retried.

    The wait before attempt ``n + 1`` is ``initial_interval * backoff_coefficient ** (n - 1)``,
    capped at ``max_interval``. Exceptions whose type is in ``non_retryable`` (or derives
    from ``durable.NonRetryableError``) fail the activity at once.

    Attributes:
        max_attempts: Attempts in all, the first one included (1: no retries).
        initial_interval: Seconds (or a ``timedelta``) before the first retry.
        backoff_coefficient: The factor each further wait grows by (at least 1).
        max_interval: The longest wait between two attempts.
        non_retryable: Exception types that fail the activity at once.
        on_exhausted: ``"fail"`` (the default): when the attempts run out, the activity
            fails and the workflow sees the error. ``"pause"``: the run is PAUSED instead,
            with the last error as its reason; ``Handle.resume()`` (after a fix) runs the
            activity again with a fresh budget of attempts. Errors that are not retried
            (``non_retryable``) fail the activity either way.

    Example::

        @durable.activity(retry=durable.RetryPolicy(max_attempts=5, initial_interval=0.5))
        async def charge(order_id: str) -> str: ...
    """

    max_attempts: int = 3
    initial_interval: float | timedelta = 1.0
    backoff_coefficient: float = 2.0
    max_interval: float | timedelta = 60.0
    non_retryable: tuple[type[BaseException], ...] = ()
    on_exhausted: Literal["fail", "pause"] = "fail"

    def __post_init__(self) -> None:
        if self.on_exhausted not in ("fail", "pause"):
            raise ValueError(f"on_exhausted must be 'fail' or 'pause', got {self.on_exhausted!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.backoff_coefficient < 1:
            raise ValueError(f"backoff_coefficient must be >= 1, got {self.backoff_coefficient}")
        to_seconds(self.initial_interval, "initial_interval")
        to_seconds(self.max_interval, "max_interval")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        initial = to_seconds(self.initial_interval, "initial_interval")
        cap = to_seconds(self.max_interval, "max_interval")
        return float(min(cap, initial * self.backoff_coefficient ** max(0, attempt - 2)))

    def retries(self, exc: BaseException, attempt: int) -> bool:
        """Whether ``exc`` raised by ``attempt`` deserves another attempt."""
        from .errors import NonRetryableError

        if attempt >= self.max_attempts or isinstance(exc, NonRetryableError):
            return False
        return not isinstance(exc, self.non_retryable)

    def pauses(self, exc: BaseException, attempt: int) -> bool:
        """Whether ``exc`` raised by ``attempt`` pauses the run instead of failing the
        activity: ``on_exhausted="pause"`` and the attempts ran out on a retryable error."""
        from .errors import NonRetryableError

        retryable = not isinstance(exc, (NonRetryableError, *self.non_retryable))
        return self.on_exhausted == "pause" and attempt >= self.max_attempts and retryable


DEFAULT_RETRY = RetryPolicy()
