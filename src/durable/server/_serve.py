"""``serve()``: run the REST server and the dashboard with uvicorn until SIGINT or SIGTERM."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from ..app import App, load_app
from ..errors import ConfigurationError
from ._app import build, resolve_token
from ._cors import cors_origins

log = logging.getLogger("durable.server")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    *,
    dsn: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    app_target: str | None = None,
    worker: bool = True,
    cors_origin: Sequence[str] = (),
    grpc_port: int | None = None,
    read_only: bool = False,
) -> None:
    """Run the REST server (``docs/rest.md``) over a store until interrupted; blocks.

    Args:
        dsn: The store; default: the App's (with ``app_target``), else ``$DURABLE_DSN``,
            else ``durable.db`` here.
        host: The address to bind; loopback unless told otherwise.
        port: The TCP port.
        token: Require ``Authorization: Bearer <token>`` on every endpoint but
            ``/healthz``; default ``$DURABLE_API_TOKEN``; none means no auth.
        app_target: ``module:attribute`` naming a ``durable.App``: the embedded worker
            then also runs that App's workflows and handlers.
        worker: Run an embedded worker (the default): an ordinary member of the fleet
            that drives JSON flows (SERVICE_TASKs without a handler become external
            jobs), so the server alone is a complete engine. False serves the API only.
        read_only: Make the dashboard at ``/ui/`` view-only: it shows no action and
            refuses every one. The ``/v1`` API is unchanged.

    Example::

        durable.server.serve(dsn="postgresql://db/durable", token="s3cret")
    """
    import uvicorn

    origins = cors_origins(cors_origin)
    if grpc_port is not None:
        try:  # fail before serving: the grpc extra is optional
            import durable.server._grpc  # noqa: F401
        except ImportError as exc:
            raise ConfigurationError(
                f"the gRPC API is not installed ({exc}); install it with: "
                "pip install 'durable[server,grpc]'"
            ) from None
    app = App(dsn) if app_target is None else load_app(app_target, dsn=dsn)
    token = resolve_token(token)
    if token is None and not _is_loopback(host):
        log.warning(
            "serving on %s without a token: anyone who reaches it can start and cancel runs "
            "(pass a token or set DURABLE_API_TOKEN)",
            host,
        )
    asgi = build(
        app,
        token=token,
        worker=worker,
        cors=origins,
        grpc_port=grpc_port,
        grpc_host=host,
        read_only=read_only,
    )
    # log_config=None, log_level=None: uvicorn logs through the handlers and at the level
    # `durable serve --log-level` configured (WARNING leaves out the access log).
    config = uvicorn.Config(
        asgi, host=host, port=port, lifespan="on", log_level=None, log_config=None
    )
    uvicorn.Server(config).run()
