"""``durable runs fork RUN``: a new run from a copy of a run's journal before a point."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..app import load_app
from . import _render
from ._common import AppTarget, Dsn, Json, open_app, parse_json, parse_object, print_json, run


def _at(value: str | None, flow: bool) -> int | str | None:
    """A flow's step id as given; a code-first run's seq as a number (the store names a
    seq that is not one)."""
    if value is None or flow:
        return value
    return int(value) if value.isdigit() else value


def fork(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run to fork.")],
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="SEQ|STEP",
            help="The first operation that runs again: a seq (runs show) or a flow step id;"
            " default: where the run failed, else its end.",
        ),
    ] = None,
    args: Annotated[
        str | None,
        typer.Option("--args", metavar="JSON", help="New positional arguments (an array)."),
    ] = None,
    kwargs: Annotated[
        str | None,
        typer.Option("--kwargs", metavar="JSON", help="New keyword arguments (an object)."),
    ] = None,
    variables: Annotated[
        str | None,
        typer.Option("--variables", metavar="JSON", help="A flow's variables to merge at --at."),
    ] = None,
    fork_id: Annotated[str | None, typer.Option("--id", help="The new run's id.")] = None,
    app_target: AppTarget = None,
    dsn: Dsn = None,
    as_json: Json = False,
) -> None:
    """Start a new run that copies RUN's journal before --at and runs from there with the
    code deployed now; RUN is untouched. New --args/--kwargs need --app (to check them)."""
    positional = parse_json(args, "--args")
    if positional is not None and not isinstance(positional, list):
        raise typer.BadParameter("expected a JSON array", param_hint="--args")
    named = parse_object(kwargs, "--kwargs")
    merged = parse_object(variables, "--variables")
    registry = load_app(app_target).registry if app_target else None

    async def apply() -> Any:
        async with open_app(dsn, registry=registry) as app:
            handle = app.handle(run_id)
            flow = (await handle.describe()).flow_version is not None
            forked = await handle.fork(
                _at(at, flow), args=positional, kwargs=named, variables=merged, id=fork_id
            )
            return await forked.describe()

    desc = run(apply())
    if as_json:
        print_json(_render.run_json(desc))
    else:
        origin, point = desc.forked_from or (run_id, None)
        typer.echo(f"forked {origin} at {point} as run {desc.run_id} ({desc.status})")
