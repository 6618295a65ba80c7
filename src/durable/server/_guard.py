"""The checks every request passes before routing: token, content type, size, NUL bytes.

A plain ASGI middleware (no body buffering): it decides from the headers alone.
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ._errors import VALIDATION_ERROR, error_bytes

MAX_BODY_BYTES = 16 * 1024 * 1024
OPEN_PATHS = frozenset({"/healthz"})
"""Paths answered without a token."""
DASHBOARD = "/ui"
"""The dashboard's paths (and ``/``) check their own access (session cookie, CSRF) and take
form bodies: ``ui._auth``."""


def is_dashboard(path: str) -> bool:
    return path == "/" or path == DASHBOARD or path.startswith(DASHBOARD + "/")


def is_json(content_type: str) -> bool:
    """``application/json`` or any ``application/*+json``, with parameters or not."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class Guard:
    """Refuse a request early: 401 without the token, 415 for a non-JSON body, 413, 400."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, code, message = refusal
        headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        body = error_bytes(code, message)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        headers: dict[bytes, bytes] = {}
        for key, value in scope.get("headers", ()):
            headers.setdefault(key.lower(), value)
        path: str = scope.get("path", "")
        dashboard = is_dashboard(path)
        if (
            self.token is not None
            and path not in OPEN_PATHS
            and not dashboard
            and not self._authorized(headers)
        ):
            return 401, "UNAUTHORIZED", "send the server's token as 'Authorization: Bearer <token>'"
        query: bytes = scope.get("query_string", b"")
        if "\x00" in path or b"%00" in query.lower() or b"\x00" in query:
            return 400, VALIDATION_ERROR, "the path or query holds a NUL character"
        return self._body_refusal(headers, forms=dashboard)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        assert self.token is not None
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)

    @staticmethod
    def _body_refusal(headers: dict[bytes, bytes], *, forms: bool) -> tuple[int, str, str] | None:
        length = _int(headers.get(b"content-length"))
        has_body = (length is not None and length > 0) or b"transfer-encoding" in headers
        if not has_body:
            return None
        if length is not None and length > MAX_BODY_BYTES:
            return 413, "PAYLOAD_TOO_LARGE", f"the body is over {MAX_BODY_BYTES} bytes"
        content_type = headers.get(b"content-type")
        if forms:  # the dashboard's forms: urlencoded or multipart, checked by the form parser
            return None
        if content_type is not None and not is_json(content_type.decode("latin-1")):
            return (
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                f"the body must be application/json, not {content_type.decode('latin-1')!r}",
            )
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
