"""The ``durable`` command."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from .app import App
from .errors import DurableError, StoreError

log = logging.getLogger("durable.cli")


def _load_app(target: str) -> App:
    """Import ``module:attribute`` (the attribute defaults to ``app``) and return the App."""
    module_name, _, attribute = target.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DurableError(f"cannot import {module_name!r}: {exc}") from None
    app = getattr(module, attribute or "app", None)
    if not isinstance(app, App):
        raise DurableError(f"{target!r} is not a durable.App (found {type(app).__name__})")
    return app


async def _run_worker(args: argparse.Namespace) -> None:
    app = _load_app(args.app)
    if args.dsn:
        app = App(args.dsn, registry=app.registry)
    await _open_with_retry(app)
    try:
        worker = app.worker(
            concurrency=args.concurrency,
            lease_seconds=args.lease_seconds,
            poll_interval=args.poll_interval,
            grace_period=args.grace_period,
        )
        await worker.run()
    finally:
        await app.close()


async def _open_with_retry(app: App) -> None:
    """Wait for the database: a worker may start while it is still coming up."""
    delay = 0.2
    while True:
        try:
            await app.open()
            return
        except StoreError as exc:
            log.warning("cannot reach the store (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="durable", description="Durable workflows for Python.")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run a worker until SIGTERM or SIGINT")
    worker.add_argument(
        "app", help="the App to serve, as module:attribute (default attribute: app)"
    )
    worker.add_argument("--dsn", help="the store (default: the App's, else $DURABLE_DSN)")
    worker.add_argument("--concurrency", type=int, default=100, help="runs held at once")
    worker.add_argument("--lease-seconds", type=float, default=30.0, help="lease length")
    worker.add_argument("--poll-interval", type=float, default=1.0, help="idle poll period")
    worker.add_argument(
        "--grace-period", type=float, default=10.0, help="seconds in-flight activities get at stop"
    )
    worker.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        if args.command == "worker":
            asyncio.run(_run_worker(args))
    except DurableError as exc:
        print(f"durable: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
