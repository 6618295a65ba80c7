"""The runs table's filter fields, read from a query string or a form, as a ``RunFilter``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from ...errors import InvalidInputError
from ...info import RunFilter, Status

FIELDS = ("status", "workflow", "tag", "search", "from", "to")


@dataclass(frozen=True, slots=True)
class Fields:
    """What the operator typed in the filter fields, as typed."""

    values: dict[str, str]

    @classmethod
    def read(cls, source: Mapping[str, object]) -> Fields:
        values = {}
        for name in FIELDS:
            value = source.get(name)
            values[name] = value.strip() if isinstance(value, str) else ""
        return cls(values)

    def query(self) -> str:
        """The fields as a query string (the empty ones left out)."""
        return urlencode({k: v for k, v in self.values.items() if v})

    def run_filter(self) -> RunFilter:
        """The filter the fields mean (Search is handled by the caller: id or business key).

        Raises:
            InvalidInputError: a field is invalid; the message names it.
        """
        v = self.values
        status = None
        if v["status"]:
            try:
                status = Status(v["status"].upper())
            except ValueError:
                names = ", ".join(s.value for s in Status)
                raise InvalidInputError(f"Status: {v['status']!r} is not one of {names}") from None
        return RunFilter(
            status=status,
            workflow=v["workflow"] or None,
            tags=tags(v["tag"]),
            business_key=None,
            created_after=moment(v["from"], "From"),
            created_before=moment(v["to"], "To"),
        )


def tags(text: str) -> dict[str, str] | None:
    """``key=value`` pairs separated by commas."""
    if not text:
        return None
    found = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"Tag: write key=value, got {part.strip()!r}")
        found[key.strip()] = value.strip()
    return found


def moment(text: str, label: str) -> datetime | None:
    """A ``datetime-local`` value (or an ISO time), read as UTC unless it names an offset."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"{label}: {text!r} is not a date and time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
