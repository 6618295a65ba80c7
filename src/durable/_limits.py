"""How large a stored payload and how long a journal may grow.

``App(max_payload_bytes=..., history_warning=...)`` builds one :class:`Limits`; the
client checks starts and signals against it, the workers check events and activity
results. A payload over the limit fails at once with :class:`PayloadTooLargeError`
naming the run, the operation and both sizes, before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigurationError, PayloadTooLargeError

DEFAULT_MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
"""2 MiB: what one stored argument list, result, signal payload or event may take."""
DEFAULT_HISTORY_WARNING = 10_000
"""Journal records after which a run logs that it should continue as new."""


@dataclass(frozen=True, slots=True)
class Limits:
    """``max_payload_bytes`` (None: no limit) and ``history_warning`` (None: no warning)."""

    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES
    history_warning: int | None = DEFAULT_HISTORY_WARNING

    def __post_init__(self) -> None:
        for name in ("max_payload_bytes", "history_warning"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigurationError(
                    f"App({name}=) must be a positive number or None, got {value!r}"
                )

    def check(self, text: str, run_id: str, operation: str) -> None:
        """Raise :class:`PayloadTooLargeError` when ``text`` is over the payload limit."""
        limit = self.max_payload_bytes
        if limit is None or len(text) * 4 <= limit:  # UTF-8 takes at most 4 bytes a character
            return
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise PayloadTooLargeError(run_id, operation, size, limit)


NO_LIMITS = Limits(None, None)
"""What code that runs without an App checks: nothing (``durable.testing.replay``)."""
