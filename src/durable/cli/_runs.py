"""Verbs on runs: ``start``, ``signal``, ``cancel``, ``runs ls|show``, ``user-tasks complete``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .._start import start_run
from ..app import load_app
from ..info import Status
from ..queues import DEFAULT_QUEUE, check_name, check_priority
from ..serde import dumps
from . import _operate, _render
from ._common import (
    AppTarget,
    Dsn,
    Json,
    fail,
    json_type,
    open_app,
    parse_json,
    parse_object,
    print_json,
    run,
    usage,
)
from ._workers import check_start

runs = typer.Typer(name="runs", help="List and inspect runs.", no_args_is_help=True)
user_tasks = typer.Typer(
    name="user-tasks", help="Complete the user tasks of JSON flow runs.", no_args_is_help=True
)

RunId = Annotated[str, typer.Argument(metavar="RUN", help="The run id.")]


def start(
    workflow: Annotated[
        str | None,
        typer.Argument(help="A code-first workflow's registered name (or use --flow)."),
    ] = None,
    args: Annotated[
        str | None,
        typer.Option(
            "--args",
            metavar="JSON",
            help='Arguments: an object by parameter name, e.g. \'{"order_id": "o-1"}\', '
            "or an array of positional arguments (needs --app).",
        ),
    ] = None,
    flow: Annotated[
        str | None,
        typer.Option("--flow", metavar="DEFINITION_ID", help="Start a stored JSON flow instead."),
    ] = None,
    variables: Annotated[
        str | None,
        typer.Option("--variables", metavar="JSON", help="A flow run's variables (an object)."),
    ] = None,
    version: Annotated[
        int | None,
        typer.Option("--version", min=1, help="The flow definition version (default: latest)."),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--id", help="The run id; starting twice with one id starts one run."),
    ] = None,
    business_key: Annotated[
        str | None, typer.Option("--business-key", help="A key to find the run by.")
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue", help="The queue the run waits in (default: the workflow's, else default)."
        ),
    ] = None,
    priority: Annotated[
        int, typer.Option("--priority", help="Higher is claimed first within the queue.")
    ] = 0,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", metavar="KEY=VALUE", help="Tag the run (repeatable)."),
    ] = None,
    app_target: AppTarget = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Without --app: start even if no live worker knows the workflow or its "
            "argument names.",
        ),
    ] = False,
    dsn: Dsn = None,
    as_json: Json = False,
) -> None:
    """Start a run of a workflow by name, or of a JSON flow with --flow."""
    tags = _operate.parse_tags(tag)
    if (workflow is None) == (flow is None):
        raise usage("name a WORKFLOW or pass --flow DEFINITION_ID (one of the two)")
    if flow is None and (variables is not None or version is not None):
        raise usage("--variables and --version go with --flow; a workflow takes --args")
    if flow is not None and args is not None:
        raise usage("--args goes with a WORKFLOW; a flow takes --variables")
    if flow is not None:
        values = parse_object(variables, "--variables")
        place = (queue, priority, tags)
        body = run(_start_flow(dsn, flow, values, version, run_id, business_key, place))
    else:
        assert workflow is not None
        value = parse_json(args, "--args")
        if value is not None and not isinstance(value, list | dict):
            raise typer.BadParameter(
                f"must be a JSON object (arguments by name) or array (positional), "
                f"got {json_type(value)}",
                param_hint="--args",
            )
        if isinstance(value, list) and value and app_target is None:
            raise usage(
                "positional --args need --app module:attribute to know the parameter names; "
                'or pass an object by name, e.g. --args \'{"order_id": "o-1"}\''
            )
        place = (queue, priority, tags)
        body = run(
            _start_code(
                dsn, workflow, value, run_id, business_key, app_target, place, check=not force
            )
        )
    if as_json:
        print_json(body)
    elif body["created"]:
        typer.echo(f"started run {body['run_id']} ({body['workflow']})")
    else:
        typer.echo(
            f"run {body['run_id']} already exists ({body['workflow']}, {body['status']}); "
            "nothing was started"
        )


async def _start_code(
    dsn: str | None,
    name: str,
    value: list[Any] | dict[str, Any] | None,
    run_id: str | None,
    business_key: str | None,
    app_target: str | None,
    place: tuple[str | None, int, dict[str, str]],
    *,
    check: bool,
) -> dict[str, Any]:
    registry = load_app(app_target).registry if app_target else None
    warning = None
    queue = check_name(place[0], "--queue") if place[0] is not None else None
    priority = check_priority(place[1])
    async with open_app(dsn, create=True, registry=registry) as app:
        if registry is not None:
            queue = queue or registry.workflow(name).queue
            codec = registry.workflow(name).codec
            if isinstance(value, list):
                text = codec.encode_args(tuple(value), {})
            else:
                text = codec.encode_args((), value or {})
        else:
            # Without the code, the names are checked against what live workers registered
            # (unless --force); the worker checks them again when it runs the workflow.
            if check:
                warning = await check_start(
                    app.store, name, value if isinstance(value, dict) else {}
                )
            text = dumps(value or {})
        record, created = await start_run(
            app.store,
            name,
            text,
            run_id=run_id,
            business_key=business_key,
            queue=queue or DEFAULT_QUEUE,
            priority=priority,
            tags=place[2],
        )
        if warning is not None and created:
            typer.echo(warning, err=True)
        return {
            "run_id": record.id,
            "workflow": name,
            "status": str(record.status),
            "created": created,
        }


async def _start_flow(
    dsn: str | None,
    definition_id: str,
    variables: dict[str, Any] | None,
    version: int | None,
    run_id: str | None,
    business_key: str | None,
    place: tuple[str | None, int, dict[str, str]],
) -> dict[str, Any]:
    async with open_app(dsn, create=True) as app:
        existed = run_id is not None and await app.store.get_run(run_id) is not None
        handle = await app.start_flow(
            definition_id,
            variables=variables,
            business_key=business_key,
            version=version,
            id=run_id,
            queue=place[0],
            priority=place[1],
            tags=place[2],
        )
        desc = await handle.describe()
        return {
            "run_id": desc.run_id,
            "workflow": desc.workflow,
            "status": str(desc.status),
            "created": not existed,
            "flow_version": desc.flow_version,
        }


def signal(
    run_id: RunId,
    name: Annotated[str, typer.Argument(help="The signal name (a flow WAIT step: its id).")],
    payload: Annotated[
        str | None, typer.Argument(metavar="[PAYLOAD_JSON]", help="The payload, as JSON.")
    ] = None,
    dsn: Dsn = None,
    as_json: Json = False,
) -> None:
    """Send a signal to a run; it is buffered until the workflow waits for it."""
    value = parse_json(payload, "PAYLOAD_JSON")

    async def send() -> None:
        async with open_app(dsn) as app:
            await app.handle(run_id).signal(name, value)

    run(send())
    if as_json:
        print_json({"run_id": run_id, "signal": name, "sent": True})
    else:
        typer.echo(f"sent signal {name!r} to run {run_id}")


def cancel(run_id: RunId, dsn: Dsn = None, as_json: Json = False) -> None:
    """Cancel a run: durable.Cancelled is raised in it at its next durable await."""

    async def request() -> Any:
        async with open_app(dsn) as app:
            handle = app.handle(run_id)
            before = await handle.describe()
            if before.status in (Status.COMPLETED, Status.FAILED):
                return before
            await handle.cancel()
            return await handle.describe()

    desc = run(request())
    if desc.status in (Status.COMPLETED, Status.FAILED):
        raise fail(f"run {run_id!r} has already ended {desc.status}; there is nothing to cancel")
    if as_json:
        print_json(_render.run_json(desc))
    elif desc.status is Status.CANCELLED:
        typer.echo(f"run {run_id} is cancelled")
    else:
        typer.echo(
            f"cancellation of run {run_id} requested ({desc.status}); "
            "it stops at its next durable await"
        )


@runs.command("ls")
def list_runs(
    status: _operate.StatusFilter = None,
    workflow: _operate.WorkflowFilter = None,
    business_key: _operate.BusinessKeyFilter = None,
    tag: _operate.Tags = None,
    queue: _operate.QueueFilter = None,
    since: _operate.Since = None,
    until: _operate.Until = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    dsn: Dsn = None,
    as_json: Json = False,
) -> None:
    """List runs, newest first."""
    flt = _operate.run_filter(status, workflow, tag, business_key, queue, since, until)

    async def fetch() -> Any:
        async with open_app(dsn) as app:
            return (await app.list_runs(flt, limit=limit)).runs

    found = run(fetch())
    if as_json:
        print_json({"runs": [_render.run_json(desc) for desc in found]})
    elif not found:
        typer.echo("no runs match")
    else:
        _render.show(_render.runs_table(found))


@runs.command("show")
def show_run(
    run_id: RunId,
    journal: Annotated[
        bool, typer.Option("--journal", help="For a flow run, also print its raw journal.")
    ] = False,
    dsn: Dsn = None,
    as_json: Json = False,
) -> None:
    """Show a run: status, result or error, variables, and its history as a timeline."""

    async def fetch() -> Any:
        async with open_app(dsn) as app:
            handle = app.handle(run_id)
            return await handle.describe(), await handle.history(), await handle.steps()

    desc, history, steps = run(fetch())
    if as_json:
        print_json(
            {
                "run": _render.run_json(desc),
                "steps": [_render.step_json(step) for step in steps],
                "history": [_render.event_json(event) for event in history],
            }
        )
        return
    for line in _render.summary(desc, _render.waits_for(desc, history, steps)):
        typer.echo(line)
    if desc.variables is not None:
        typer.echo("variables:")
        print_json(desc.variables)
    if desc.error is not None and desc.error.get("traceback"):
        typer.echo("traceback:")
        typer.echo(str(desc.error["traceback"]).rstrip())
    if desc.flow_version is not None:
        typer.echo(f"\nsteps ({len(steps)}){':' if steps else ''}")
        if steps:
            _render.show(_render.steps_table(desc, steps))
    if desc.flow_version is None or journal:
        typer.echo(f"\njournal ({len(history)} records){':' if history else ''}")
        if history:
            _render.show(_render.timeline(desc, history))


@runs.command("why")
def why(run_id: RunId, dsn: Dsn = None, as_json: Json = False) -> None:
    """Say what an open run waits for (a signal, a timer, a worker, its queue, ...)."""

    async def fetch() -> Any:
        async with open_app(dsn) as app:
            return await app.handle(run_id).describe()

    desc = run(fetch())
    if as_json:
        print_json({"run_id": run_id, "status": str(desc.status),
                    "blocked_on": _render.blocked_json(desc.blocked_on)})  # fmt: skip
    elif desc.blocked_on is None:
        typer.echo(f"run {run_id} has ended {desc.status}; it waits for nothing")
    else:
        typer.echo(f"run {run_id} ({desc.status}) is blocked on {desc.blocked_on.kind}:")
        typer.echo(f"  {desc.blocked_on.message}")


@user_tasks.command("complete")
def complete_user_task(
    run_id: RunId,
    step: Annotated[str, typer.Argument(metavar="STEP", help="The USER_TASK step id.")],
    variables: Annotated[
        str | None,
        typer.Argument(metavar="[VARIABLES_JSON]", help="Variables to merge (an object)."),
    ] = None,
    dsn: Dsn = None,
    as_json: Json = False,
) -> None:
    """Complete a waiting user task of a flow run (again: a no-op)."""
    values = parse_object(variables, "VARIABLES_JSON")

    async def complete() -> None:
        async with open_app(dsn) as app:
            await app.handle(run_id).complete_user_task(step, values)

    run(complete())
    if as_json:
        print_json({"run_id": run_id, "step_id": step, "completed": True})
    else:
        typer.echo(f"completed user task {step!r} of run {run_id}")
