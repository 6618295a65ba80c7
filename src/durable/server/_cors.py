"""CORS as the Rochallor engine does it, so browser clients (its Workflow Modeller) work.

A plain ASGI middleware in front of every other: it answers ``OPTIONS`` itself (before
the token check: a browser sends no credentials on a preflight) and adds
``Access-Control-Allow-Origin`` to every other answer. No credentials are allowed.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ConfigurationError
from ._guard import is_dashboard

ANY_ORIGIN = "*"
ALLOW_METHODS = b"GET, POST, OPTIONS"
ALLOW_HEADERS = b"Accept, Authorization, Content-Type"
MAX_AGE_SECONDS = 300
"""How long a browser may reuse a preflight's answer."""


def cors_origins(given: Sequence[str] | None) -> tuple[str, ...] | None:
    """The origins to allow from ``--cors-origin`` values: none given means every origin
    (``*``), ``none`` turns CORS off (None). Trailing slashes are dropped, as browsers
    send origins without them.

    Raises:
        durable.ConfigurationError: ``none`` or ``*`` mixed with other origins.
    """
    if not given:
        return (ANY_ORIGIN,)
    origins = tuple(dict.fromkeys(o.strip().rstrip("/") for o in given if o.strip()))
    special = [o for o in origins if o.lower() == "none" or o == ANY_ORIGIN]
    if special and len(origins) > 1:
        raise ConfigurationError(
            f"--cors-origin {special[0]} cannot be combined with other origins"
        )
    if not origins or origins[0].lower() == "none":
        return None
    return origins


class Cors:
    """Answer preflights; mark every answer with the origin allowed to read it."""

    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        self.app = app
        self.any = ANY_ORIGIN in origins
        self.origins = frozenset(o.encode() for o in origins)

    def _allowed(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """The ``Access-Control-Allow-Origin`` (and ``Vary``) headers for this request."""
        if self.any:
            return [(b"access-control-allow-origin", b"*")]
        origin = next((v for k, v in scope.get("headers", ()) if k.lower() == b"origin"), None)
        headers = [(b"vary", b"Origin")]
        if origin is not None and origin.rstrip(b"/") in self.origins:
            headers.append((b"access-control-allow-origin", origin))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_dashboard(scope.get("path", "")):
            # the dashboard is served to its own pages only: no other origin may read it
            await self.app(scope, receive, send)
            return
        allowed = self._allowed(scope)
        if scope["method"] == "OPTIONS":
            headers = [
                *allowed,
                (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-allow-headers", ALLOW_HEADERS),
                (b"access-control-max-age", str(MAX_AGE_SECONDS).encode()),
                (b"content-length", b"0"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *allowed]}
            await send(message)

        await self.app(scope, receive, marked)
