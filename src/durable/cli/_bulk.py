"""``durable runs cancel|pause|resume|retry``: one run by id, or every run the filters match.

With ``RUN`` the verb acts on that run (as ``Handle.cancel/pause/resume/retry``). Without
it, the filters (``_operate``) name the runs, at least one is required; the verb counts
them (``app.bulk(..., dry_run=True)``), asks unless ``--yes``, then runs ``app.bulk`` in
the store's batches while a progress bar on a terminal follows the count that is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import typer

from .._describe import run_query
from ..app import App
from ..info import RunFilter
from . import _operate as op
from ._common import Dsn, Json, open_app, print_json, run, usage
from ._progress import MIN_BAR, bar, confirm, plural

RunArg = Annotated[
    str | None,
    typer.Argument(metavar="[RUN]", help="One run; without it, the filters name the runs."),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print how many runs would change.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

_PAST = {"cancel": "cancelled", "pause": "paused", "resume": "resumed", "retry": "retried"}
_POLL = 0.5


def command(action: str, summary: str, one: Callable[[Any, str], Any]) -> Callable[..., None]:
    """The verb ``runs ACTION``: ``one(handle, reason)`` for a run, ``app.bulk`` for many."""

    def verb(
        run_id: RunArg = None,
        status: op.StatusFilter = None,
        workflow: op.WorkflowFilter = None,
        tag: op.Tags = None,
        business_key: op.BusinessKeyFilter = None,
        queue: op.QueueFilter = None,
        since: op.Since = None,
        until: op.Until = None,
        older_than: op.OlderThan = None,
        reason: Annotated[
            str | None, typer.Option("--reason", help="Why (pause only: shown in blocked_on).")
        ] = None,
        dry_run: DryRun = False,
        yes: Yes = False,
        dsn: Dsn = None,
        as_json: Json = False,
    ) -> None:
        filters = (status, workflow, tag, business_key, queue, since, until, older_than)
        if reason is not None and action != "pause":
            raise usage("--reason goes with runs pause only")
        if run_id is not None:
            if any(f for f in filters) or dry_run:
                raise usage(f"give either RUN or filters to runs {action}, not both")
            _one(action, run_id, lambda h: one(h, reason or ""), dsn, as_json)
            return
        if not any(f for f in filters):
            raise usage(
                f"name the runs to {action}: RUN, or filters such as --status, --workflow,"
                " --tag, --older-than"
            )
        flt = op.run_filter(*filters)
        _many(action, flt, reason, dry_run=dry_run, yes=yes, dsn=dsn, as_json=as_json)

    verb.__doc__ = summary
    return verb


def _one(
    action: str, run_id: str, call: Callable[[Any], Any], dsn: str | None, as_json: bool
) -> None:
    async def apply() -> Any:
        async with open_app(dsn) as app:
            handle = app.handle(run_id)
            await call(handle)
            return await handle.describe()

    desc = run(apply())
    if as_json:
        print_json({"run_id": run_id, "action": action, "status": str(desc.status)})
    else:
        typer.echo(f"run {run_id}: {action} done, now {desc.status}")


def _many(
    action: str,
    flt: RunFilter,
    reason: str | None,
    *,
    dry_run: bool,
    yes: bool,
    dsn: str | None,
    as_json: bool,
) -> None:
    async def count() -> int:
        async with open_app(dsn) as app:
            return await app.bulk(action, flt, dry_run=True)

    total = run(count())
    if dry_run or total == 0:
        if as_json:
            print_json({f"would_{action}": total})
        else:
            typer.echo(f"{plural(total)} would be {_PAST[action]}")
        return
    confirm(f"{action} {plural(total)}?", yes)
    done = run(_apply(action, flt, reason, total, dsn))
    if as_json:
        print_json({_PAST[action]: done})
    else:
        typer.echo(f"{_PAST[action]} {plural(done)}")


async def _apply(
    action: str, flt: RunFilter, reason: str | None, total: int, dsn: str | None
) -> int:
    async with open_app(dsn) as app:
        with bar(total, f"{action}") as progress:
            if reason is not None:  # app.bulk pauses with the default reason
                job = app.store.bulk_pause(run_query(flt), reason=reason)
            else:
                job = app.bulk(action, flt)
            work = asyncio.ensure_future(job)
            if total >= MIN_BAR:
                await _follow(app, action, flt, total, work, progress)
            return await work


async def _follow(
    app: App,
    action: str,
    flt: RunFilter,
    total: int,
    work: asyncio.Task[int],
    progress: Callable[[int], None],
) -> None:
    """Move the bar by the runs still to change, until the work is done."""
    while not work.done():
        await asyncio.wait({work}, timeout=_POLL)
        if not work.done():
            left = await app.bulk(action, flt, dry_run=True)
            progress(max(0, total - left))
