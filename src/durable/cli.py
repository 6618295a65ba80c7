"""The ``durable`` command."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .app import App
from .errors import DurableError, StoreError
from .flow import validate_definition

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


def _read_definitions(paths: Sequence[str]) -> tuple[list[tuple[str, Any]], list[str]]:
    """Each file's parsed definition, and one line per problem across all files."""
    loaded: list[tuple[str, Any]] = []
    problems: list[str] = []
    for path in paths:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(f"{path}: cannot read: {exc.strerror or exc}")
            continue
        except json.JSONDecodeError as exc:
            problems.append(f"{path}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
            continue
        except (RecursionError, UnicodeDecodeError, ValueError) as exc:
            problems.append(f"{path}: not JSON: {exc}")
            continue
        found = validate_definition(document)
        problems.extend(f"{path}: {problem}" for problem in found)
        if not found:
            loaded.append((path, document))
    return loaded, problems


def _validate_files(args: argparse.Namespace) -> int:
    loaded, problems = _read_definitions(args.files)
    for line in problems:
        print(line, file=sys.stderr)
    for path, document in loaded:
        print(f"{path}: valid ({document['id']}, {len(document['steps'])} steps)")
    return 1 if problems else 0


async def _push_files(args: argparse.Namespace) -> int:
    loaded, problems = _read_definitions(args.files)
    if problems:  # all or nothing: a half-pushed set of chained definitions helps nobody
        for line in problems:
            print(line, file=sys.stderr)
        print("durable: nothing was pushed", file=sys.stderr)
        return 1
    async with App(args.dsn) as app:
        for path, document in loaded:
            ref = await app.definitions.upload(document)
            print(f"{path}: pushed {ref.id} version {ref.version}")
    return 0


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

    defs = commands.add_parser("defs", help="JSON flow definitions").add_subparsers(
        dest="defs_command", required=True
    )
    validate = defs.add_parser("validate", help="check definition files; list every problem")
    validate.add_argument("files", nargs="+", metavar="FILE")
    push = defs.add_parser("push", help="validate and upload definition files (new versions)")
    push.add_argument("files", nargs="+", metavar="FILE")
    push.add_argument("--dsn", help="the store (default: $DURABLE_DSN, else ./durable.db)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        if args.command == "worker":
            asyncio.run(_run_worker(args))
        elif args.defs_command == "validate":
            return _validate_files(args)
        else:
            return asyncio.run(_push_files(args))
    except DurableError as exc:
        print(f"durable: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
