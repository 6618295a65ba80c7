"""``durable runs prune``: delete finished runs by age, with a count, a question and a bar."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..info import Status
from ._common import Dsn, Json, open_app, print_json, run
from ._progress import bar, confirm, parse_age, plural

FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Delete runs that finished longer ago than this: 30d, 12h, 15m, 90s, 2w.",
        ),
    ],
    status: Annotated[
        list[Status] | None,
        typer.Option(
            "--status",
            case_sensitive=False,
            help="Only runs that ended so: COMPLETED, FAILED or CANCELLED (repeatable).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print how many runs would be deleted.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dsn: Dsn = None,
    as_json: Json = False,
) -> None:
    """Delete finished runs and everything they own (journal, signals, events, jobs, tags).

    Open runs are never deleted, nor a finished child whose parent is still open.
    """
    age = parse_age(older_than, "--older-than")
    assert age is not None
    for wanted in status or ():
        if wanted not in FINISHED:
            raise typer.BadParameter(
                f"{wanted} is not a finished status; prune deletes COMPLETED, FAILED or"
                " CANCELLED runs only",
                param_hint="--status",
            )
    statuses = list(status or ())

    async def count() -> int:
        async with open_app(dsn) as app:
            return await app.prune(age, statuses, dry_run=True)

    async def delete(total: int) -> int:
        async with open_app(dsn) as app:
            with bar(total, "pruning") as progress:
                return await app.prune(age, statuses, progress=progress)

    total = run(count())
    if dry_run or total == 0:
        _report(total, as_json, done=False)
        return
    confirm(f"delete {plural(total)} that finished over {older_than} ago?", yes)
    _report(run(delete(total)), as_json, done=True)


def _report(count: int, as_json: bool, *, done: bool) -> None:
    body: dict[str, Any] = {"deleted" if done else "would_delete": count}
    if as_json:
        print_json(body)
    elif done:
        typer.echo(f"deleted {plural(count)}")
    else:
        typer.echo(f"{plural(count)} would be deleted")
