"""The dashboard's settings and the headers every dashboard response carries."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._guard import DASHBOARD, is_dashboard

PREFIX = DASHBOARD
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""No inline script or style, nothing from another origin."""
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """What the dashboard is told at start: the token (if any) and whether it is read-only."""

    token: str | None
    read_only: bool
    key: bytes
    """The secret the session and CSRF values derive from: the token, else random."""

    @classmethod
    def make(cls, *, token: str | None, read_only: bool) -> Settings:
        key = token.encode() if token else secrets.token_bytes(32)
        return cls(token=token, read_only=read_only, key=key)

    def derive(self, purpose: str) -> str:
        return hmac.new(self.key, purpose.encode(), hashlib.sha256).hexdigest()

    @property
    def session(self) -> str:
        """The session cookie's value: proves the browser was given the token."""
        return self.derive("durable-dashboard-session")

    @property
    def csrf(self) -> str:
        """The value every dashboard form carries (a forged cross-site form cannot know it)."""
        return self.derive("durable-dashboard-csrf")


class SecurityHeaders:
    """Add the Content-Security-Policy and friends to every dashboard response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_dashboard(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_secured)
