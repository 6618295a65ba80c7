"""Operating on many runs: ``--tag`` and time filters, and ``runs cancel`` by filter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from ..info import RunFilter, Status
from ._common import Dsn, Json, open_app, print_json, run, usage

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
) -> RunFilter:
    """The ``RunFilter`` of the filter options every command over many runs takes."""
    return RunFilter(
        status=status,
        workflow=workflow,
        tags=parse_tags(tag),
        business_key=business_key,
        queue=queue,
        created_after=parse_time(since, "--since"),
        created_before=parse_time(until, "--until"),
    )


def bulk_cancel(
    status: StatusFilter = None,
    workflow: WorkflowFilter = None,
    tag: Tags = None,
    business_key: BusinessKeyFilter = None,
    queue: QueueFilter = None,
    since: Since = None,
    until: Until = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print how many runs would be cancelled.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dsn: Dsn = None,
    as_json: Json = False,
) -> None:
    """Cancel every open run that matches the filters (as ``durable cancel`` does to one)."""
    if not (status or workflow or tag or business_key or queue or since or until):
        raise usage("name the runs to cancel: --status, --workflow, --tag, --business-key, ...")
    flt = run_filter(status, workflow, tag, business_key, queue, since, until)

    async def apply(dry: bool) -> int:
        async with open_app(dsn) as app:
            return await app.bulk("cancel", flt, dry_run=dry)

    if dry_run or not yes:
        count = run(apply(True))
        if dry_run or count == 0:
            _report(count, as_json, done=False)
            return
        typer.confirm(f"cancel {count} run{'s' if count != 1 else ''}?", abort=True, err=True)
    _report(run(apply(False)), as_json, done=True)


def _report(count: int, as_json: bool, *, done: bool) -> None:
    body: dict[str, Any] = {"cancelled" if done else "would_cancel": count}
    if as_json:
        print_json(body)
    elif done:
        typer.echo(f"cancelled {count} run{'s' if count != 1 else ''}")
    else:
        typer.echo(f"{count} run{'s' if count != 1 else ''} would be cancelled")
