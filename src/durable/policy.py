"""Retry policy for activities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


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

    Example::

        @durable.activity(retry=durable.RetryPolicy(max_attempts=5, initial_interval=0.5))
        async def charge(order_id: str) -> str: ...
    """

    max_attempts: int = 3
    initial_interval: float | timedelta = 1.0
    backoff_coefficient: float = 2.0
    max_interval: float | timedelta = 60.0
    non_retryable: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
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


DEFAULT_RETRY = RetryPolicy()
