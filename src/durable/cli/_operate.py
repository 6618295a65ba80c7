"""Operating on runs: ``--tag`` and time filters, and ``runs cancel|pause|resume|retry``,
for one run (``RUN``) or for every run the filters match (count, confirm, progress bar)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from ..info import RunFilter, Status
from ._progress import parse_age

StatusFilter = Annotated[
    Status | None, typer.Option("--status", case_sensitive=False, help="Only this status.")
]
WorkflowFilter = Annotated[
    str | None, typer.Option("--workflow", help="Only this workflow (or flow definition id).")
]
BusinessKeyFilter = Annotated[
    str | None, typer.Option("--business-key", help="Only runs with this business key.")
]
QueueFilter = Annotated[str | None, typer.Option("--queue", help="Only runs of this queue.")]
Tags = Annotated[
    list[str] | None,
    typer.Option("--tag", metavar="KEY=VALUE", help="Only runs with this tag (repeatable)."),
]
Since = Annotated[
    str | None,
    typer.Option("--since", metavar="ISO_TIME", help="Only runs created at or after (UTC)."),
]
Until = Annotated[
    str | None,
    typer.Option("--until", metavar="ISO_TIME", help="Only runs created before (UTC)."),
]
OlderThan = Annotated[
    str | None,
    typer.Option(
        "--older-than", metavar="AGE", help="Only runs created longer ago: 30d, 12h, 15m, 2w."
    ),
]


def parse_tags(values: list[str] | None, option: str = "--tag") -> dict[str, str]:
    """``KEY=VALUE`` options as a dict (the store checks the limits)."""
    tags: dict[str, str] = {}
    for value in values or ():
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        tags[key] = text
    return tags


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO-8601 time (UTC when it names no offset)."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO-8601 time such as 2026-01-31T12:00, got {value!r}",
            param_hint=option,
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def run_filter(
    status: Status | None,
    workflow: str | None,
    tag: list[str] | None,
    business_key: str | None,
    queue: str | None,
    since: str | None,
    until: str | None,
    older_than: str | None = None,
) -> RunFilter:
    """The ``RunFilter`` of the filter options every command over many runs takes
    (``--older-than`` and ``--until`` together: the earlier of the two)."""
    before = parse_time(until, "--until")
    age = parse_age(older_than, "--older-than")
    if age is not None:
        cutoff = datetime.now(UTC) - age
        before = cutoff if before is None else min(before, cutoff)
    return RunFilter(
        status=status,
        workflow=workflow,
        tags=parse_tags(tag),
        business_key=business_key,
        queue=queue,
        created_after=parse_time(since, "--since"),
        created_before=before,
    )
