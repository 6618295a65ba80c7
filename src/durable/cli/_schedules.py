"""``durable schedules ls|show|pause|resume|delete``: cron schedules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import _render
from ._common import Dsn, Json, open_app, plain, print_json, run, when

if TYPE_CHECKING:
    from ..app import App
    from ..schedules import ScheduleInfo

schedules = typer.Typer(
    name="schedules", help="Cron schedules: list, pause, resume, delete.", no_args_is_help=True
)

ScheduleId = Annotated[str, typer.Argument(metavar="ID", help="The schedule id.")]


def schedule_json(info: ScheduleInfo) -> dict[str, Any]:
    """A schedule: the fields of ``durable.ScheduleInfo``."""
    return {
        "id": info.id,
        "workflow": info.workflow,
        "cron": info.cron,
        "timezone": info.timezone,
        "args": info.args,
        "paused": info.paused,
        "missed": info.missed,
        "next_fire_at": plain(info.next_fire_at),
        "last_fire_at": plain(info.last_fire_at),
        "created_at": plain(info.created_at),
    }


def _print(found: list[ScheduleInfo]) -> None:
    out = _render.table("ID", "WORKFLOW", "CRON", "TIMEZONE", "STATE", "NEXT", "LAST")
    for info in found:
        state = "paused" if info.paused else "active"
        next_fire = "-" if info.paused else when(info.next_fire_at)
        _render.row(
            out,
            info.id,
            info.workflow,
            info.cron,
            info.timezone,
            state,
            next_fire,
            when(info.last_fire_at),
        )
    _render.show(out)


def _with_app(dsn: str | None, action: Callable[[App], Awaitable[Any]]) -> Any:
    async def body() -> Any:
        async with open_app(dsn) as app:
            return await action(app)

    return run(body())


@schedules.command("ls")
def list_schedules(dsn: Dsn = None, as_json: Json = False) -> None:
    """List every schedule, by id."""
    found: list[ScheduleInfo] = _with_app(dsn, lambda app: app.schedules.list())
    if as_json:
        print_json({"schedules": [schedule_json(info) for info in found]})
    elif not found:
        typer.echo("no schedules")
    else:
        _print(found)


@schedules.command("show")
def show(schedule_id: ScheduleId, dsn: Dsn = None, as_json: Json = False) -> None:
    """Show one schedule."""
    info: ScheduleInfo = _with_app(dsn, lambda app: app.schedules.get(schedule_id))
    if as_json:
        print_json(schedule_json(info))
    else:
        _print([info])


@schedules.command("pause")
def pause(schedule_id: ScheduleId, dsn: Dsn = None, as_json: Json = False) -> None:
    """Stop starting runs until resumed (runs already started go on; again: no change)."""
    info: ScheduleInfo = _with_app(dsn, lambda app: app.schedules.pause(schedule_id))
    if as_json:
        print_json(schedule_json(info))
    else:
        typer.echo(f"schedule {info.id} is paused")


@schedules.command("resume")
def resume(schedule_id: ScheduleId, dsn: Dsn = None, as_json: Json = False) -> None:
    """Start runs again from the next tick after now (ticks missed while paused are skipped)."""
    info: ScheduleInfo = _with_app(dsn, lambda app: app.schedules.resume(schedule_id))
    if as_json:
        print_json(schedule_json(info))
    else:
        typer.echo(f"schedule {info.id} is active; next run at {when(info.next_fire_at)}")


@schedules.command("delete")
def delete(schedule_id: ScheduleId, dsn: Dsn = None, as_json: Json = False) -> None:
    """Delete a schedule; runs it already started are left alone."""
    _with_app(dsn, lambda app: app.schedules.delete(schedule_id))
    if as_json:
        print_json({"id": schedule_id, "deleted": True})
    else:
        typer.echo(f"schedule {schedule_id} is deleted")
