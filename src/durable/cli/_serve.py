"""Long-running verbs: ``durable worker`` and ``durable serve``."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
from typing import Annotated, Any

import typer

from .. import _logging
from ..app import App, load_app
from ..errors import ConfigurationError, StoreError
from ..worker import WorkerMetrics
from ._common import fail, open_or_exit, run, usage

log = logging.getLogger("durable.cli")


def _level(value: str) -> str:
    if value.upper() not in _logging.LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(_logging.LEVELS)}")
    return value.upper()


def _format(value: str) -> str:
    if value.lower() not in _logging.FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(_logging.FORMATS)}")
    return value.lower()


LogLevel = Annotated[
    str,
    typer.Option(
        "--log-level",
        envvar="DURABLE_LOG_LEVEL",
        callback=_level,
        show_envvar=True,
        help="DEBUG, INFO, WARNING or ERROR.",
    ),
]
LogFormat = Annotated[
    str,
    typer.Option(
        "--log-format",
        envvar="DURABLE_LOG_FORMAT",
        callback=_format,
        show_envvar=True,
        help="text (key=value) or json (one object per line). Both carry run_id, "
        "workflow and step.",
    ),
]


def worker(
    app_target: Annotated[
        str | None,
        typer.Argument(
            metavar="[APP]",
            help="The App to serve, as module:attribute (default attribute: app). Without "
            "it the worker runs JSON flows only (their SERVICE_TASKs become external jobs).",
        ),
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option(
            "--dsn", help="The store (default: the App's, else $DURABLE_DSN, else ./durable.db)."
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Runs held at once.")] = 100,
    lease_seconds: Annotated[float, typer.Option(min=0.1, help="Lease length.")] = 30.0,
    poll_interval: Annotated[float, typer.Option(min=0.001, help="Idle poll period.")] = 1.0,
    grace_period: Annotated[
        float, typer.Option(min=0, help="Seconds in-flight activities get at stop.")
    ] = 10.0,
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            help="A queue to serve (repeat for several; default: 'default', the App's "
            "declared queues and those its workflows name).",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve this worker's Prometheus metrics on GET /metrics at this port "
            "(needs prometheus-client: durable\\[server]).",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="The address --metrics-port binds.")
    ] = "127.0.0.1",
    log_level: LogLevel = "INFO",
    log_format: LogFormat = "text",
) -> None:
    """Run a worker for the App's workflows and JSON flows until SIGTERM or SIGINT."""
    metrics = None
    if metrics_port is not None:  # fails at once, with the install hint, if it cannot work
        metrics = WorkerMetrics(port=metrics_port, host=metrics_host)
    _logging.configure(log_level, log_format)
    app = App(dsn or None) if app_target is None else load_app(app_target, dsn=dsn or None)
    options = {
        "concurrency": concurrency,
        "lease_seconds": lease_seconds,
        "poll_interval": poll_interval,
        "grace_period": grace_period,
    }
    run(_run_worker(app, options, queue or None, metrics))


async def _run_worker(
    app: App, options: dict[str, float], queues: list[str] | None, metrics: WorkerMetrics | None
) -> None:
    await _open_with_retry(app)
    try:
        worker = app.worker(
            concurrency=int(options["concurrency"]),
            lease_seconds=options["lease_seconds"],
            poll_interval=options["poll_interval"],
            grace_period=options["grace_period"],
            queues=queues,
            metrics=metrics,
        )
        await worker.run()
    finally:
        await app.close()


async def _open_with_retry(app: App) -> None:
    """Wait for the database: a worker may start while it is still coming up. A DSN the
    server refuses (no such database or role, a wrong password) exits 2 at once."""
    delay = 0.2
    while True:
        try:
            await open_or_exit(app)
            return
        except StoreError as exc:
            log.warning("the store is unreachable (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def serve(
    dsn: Annotated[
        str | None,
        typer.Option(
            "--dsn",
            help="The store (default: the --app App's, else $DURABLE_DSN, else ./durable.db).",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="The address to bind (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="The TCP port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="DURABLE_API_TOKEN",
            show_envvar=True,
            help="Require 'Authorization: Bearer TOKEN' on every endpoint but /healthz.",
        ),
    ] = None,
    app_target: Annotated[
        str | None,
        typer.Option(
            "--app",
            envvar="DURABLE_APP",
            show_envvar=True,
            help="Your App as module:attribute: the embedded worker then also runs its "
            "workflows and handlers.",
        ),
    ] = None,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Run the embedded worker: it drives JSON flows (SERVICE_TASKs without a "
            "handler become external jobs) as one member of the fleet. --no-worker serves "
            "the API only (run 'durable worker' elsewhere).",
        ),
    ] = True,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            help="An origin browsers may call the API from (repeat for several; default: "
            "any, 'Access-Control-Allow-Origin: *'); 'none' sends no CORS headers.",
        ),
    ] = None,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            "--grpc-port",
            min=0,
            max=65535,
            help="Also serve Rochallor's workflow.v1.WorkflowEngine gRPC API on this port, "
            "at --host (needs the grpc extra: durable\\[server,grpc]).",
        ),
    ] = None,
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only",
            help="Make the dashboard at /ui/ view-only: no actions (the /v1 API is unchanged).",
        ),
    ] = False,
    log_level: LogLevel = "INFO",
    log_format: LogFormat = "text",
) -> None:
    """Serve the REST API and the dashboard (/ui/) over the store (needs durable\\[server])."""
    try:  # the server extra is optional: import it only here
        serve_api = importlib.import_module("durable.server").serve
    except ImportError as exc:
        raise fail(
            f"the REST server is not installed ({exc}); install it with: "
            "pip install 'durable[server]'"
        ) from None
    try:
        importlib.import_module("durable.server._cors").cors_origins(cors_origin)
    except ConfigurationError as exc:
        raise usage(str(exc)) from None
    if grpc_port is not None:
        try:
            importlib.import_module("durable.server._grpc")
        except ImportError as exc:
            raise fail(
                f"the gRPC API is not installed ({exc}); install it with: "
                "pip install 'durable[server,grpc]'"
            ) from None
    _logging.configure(log_level, log_format)
    served = App(dsn) if app_target is None else load_app(app_target, dsn=dsn)
    run(_check_store(served.dsn))
    outcome: Any = serve_api(
        dsn=dsn,
        host=host,
        port=port,
        token=token,
        app_target=app_target,
        worker=worker,
        cors_origin=cors_origin or (),
        grpc_port=grpc_port,
        read_only=read_only,
    )
    if inspect.isawaitable(outcome):
        with contextlib.suppress(KeyboardInterrupt):
            run(_wait(outcome))


async def _check_store(dsn: str) -> None:
    """Open the store once before serving: a DSN the server refuses exits 2 here, not as a
    failed server start-up (the server opens its own App on its event loop)."""
    probe = App(dsn)
    try:
        await open_or_exit(probe)
    except StoreError:
        return  # unreachable: the server's own start-up reports it, as it always did
    await probe.close()


async def _wait(awaitable: Any) -> None:
    await awaitable
