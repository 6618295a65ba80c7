"""What an App says about the values it stores: how large a payload and how long a
journal may grow, and how values without a serializer of their own are stored.

``App(max_payload_bytes=..., history_warning=..., serializer=...)`` builds one
:class:`Values`; the client checks starts and signals against it, the workers check
events and activity results. A payload over the limit fails at once with
:class:`PayloadTooLargeError` naming the run, the operation and both sizes, before
anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from .errors import ConfigurationError, PayloadTooLargeError

Serializer: TypeAlias = Literal["json", "pickle"]
"""How arguments, results, signals and events are stored (``docs/values.md``)."""
SERIALIZERS: tuple[Serializer, ...] = ("json", "pickle")

DEFAULT_MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
"""2 MiB: what one stored argument list, result, signal payload or event may take."""
DEFAULT_HISTORY_WARNING = 10_000
"""Journal records after which a run logs that it should continue as new."""


def check_serializer(serializer: object, where: str) -> None:
    """Raise ConfigurationError unless ``serializer`` is one of :data:`SERIALIZERS`."""
    if serializer not in SERIALIZERS:
        raise ConfigurationError(f"{where} must be 'json' or 'pickle', not {serializer!r}")


@dataclass(frozen=True, slots=True)
class Values:
    """``max_payload_bytes`` (None: no limit), ``history_warning`` (None: no warning) and
    the ``serializer`` of workflows and activities that do not name one."""

    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES
    history_warning: int | None = DEFAULT_HISTORY_WARNING
    serializer: Serializer = "json"

    def __post_init__(self) -> None:
        check_serializer(self.serializer, "App(serializer=)")
        for name in ("max_payload_bytes", "history_warning"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigurationError(
                    f"App({name}=) must be a positive number or None, got {value!r}"
                )

    def fits(self, text: str) -> bool:
        """Whether ``text`` is surely within the payload limit (the cheap test first)."""
        limit = self.max_payload_bytes
        return limit is None or len(text) * 4 <= limit

    def check(self, text: str, run_id: str, operation: str) -> None:
        """Raise :class:`PayloadTooLargeError` when ``text`` is over the payload limit."""
        limit = self.max_payload_bytes
        if limit is None or len(text) * 4 <= limit:  # UTF-8 takes at most 4 bytes a character
            return
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise PayloadTooLargeError(run_id, operation, size, limit)


UNLIMITED = Values(None, None)
"""What code that runs without an App checks: nothing (``durable.testing.replay``)."""
