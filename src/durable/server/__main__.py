"""``python -m durable.server``: run the REST server (``durable serve`` does the same)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..errors import DurableError
from ._serve import serve


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m durable.server", description=__doc__)
    parser.add_argument("--dsn", help="the store (default: $DURABLE_DSN, else ./durable.db)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (8000)")
    parser.add_argument("--token", help="bearer token to require (default $DURABLE_API_TOKEN)")
    parser.add_argument(
        "--app", dest="app_target", help="module:attribute of an App: its workflows and handlers"
    )
    parser.add_argument(
        "--no-worker",
        dest="worker",
        action="store_false",
        help="serve the API only, without the embedded worker that drives JSON flows",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        help="an origin browsers may call the API from (repeatable; default any; 'none': off)",
    )
    parser.add_argument(
        "--grpc-port", type=int, help="also serve the gRPC API (docs/grpc.md) on this port"
    )
    parser.add_argument(
        "--read-only", action="store_true", help="make the dashboard at /ui/ view-only"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        serve(
            dsn=args.dsn,
            host=args.host,
            port=args.port,
            token=args.token,
            app_target=args.app_target,
            worker=args.worker,
            cors_origin=args.cors_origin,
            grpc_port=args.grpc_port,
            read_only=args.read_only,
        )
    except DurableError as exc:
        print(f"durable: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
