"""Who may see and act: the login page, the session cookie, CSRF, read-only.

Without a token every page is open. With one, a page needs the session cookie (set by
``POST /ui/login`` when the login page sends the token as the bearer header) or the
bearer header itself; the cookie is ``HttpOnly; SameSite=Strict``. Every state change is
a POST carrying the CSRF value of the page that offered it.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from ._render import render
from ._settings import PREFIX, Settings

COOKIE = "durable_session"


class LoginRequired(Exception):
    """A page was asked for without the token."""


class Refused(Exception):
    """An action the dashboard will not do; rendered as a page with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def authorized(request: Request, settings: Settings) -> bool:
    if settings.token is None:
        return True
    cookie = request.cookies.get(COOKIE, "")
    if cookie and hmac.compare_digest(cookie.encode(), settings.session.encode()):
        return True
    return bearer(request, settings.token)


def bearer(request: Request, token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>`` (in constant time)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def viewer(settings: Settings) -> Any:
    """A dependency: the page is served only to whoever holds the token."""

    async def check(request: Request) -> None:
        if not authorized(request, settings):
            raise LoginRequired

    return Depends(check)


def actor(settings: Settings) -> Any:
    """A dependency for a state change: the token, not read-only, the CSRF value; the form."""

    async def check(request: Request) -> FormData:
        if not authorized(request, settings):
            raise Refused(401, "log in first: this server requires its token")
        if settings.read_only:
            raise Refused(403, "the dashboard is read-only: it changes nothing")
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            raise Refused(403, "a state change must come from the dashboard's own pages")
        form = await request.form()
        given = form.get("csrf")
        if not isinstance(given, str) or not hmac.compare_digest(
            given.encode(), settings.csrf.encode()
        ):
            raise Refused(403, "the form is missing its CSRF value: reload the page and retry")
        return form

    return Depends(check)


def install(api: FastAPI, settings: Settings) -> None:
    """The login routes, the root redirect and the handlers of the gate's refusals."""
    router = APIRouter(include_in_schema=False)
    leaving = actor_for_logout(settings)

    @router.get("/")
    async def root() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=303)

    @router.get(PREFIX)
    async def bare() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=303)

    @router.get(f"{PREFIX}/login")
    async def login_page(request: Request, next: str = f"{PREFIX}/") -> Response:
        target = next if next.startswith(f"{PREFIX}/") else f"{PREFIX}/"
        if settings.token is None:  # nothing to log in to
            return RedirectResponse(target, status_code=303)
        return render(request, settings, "login.html", next=target, title="Log in")

    @router.post(f"{PREFIX}/login")
    async def login(request: Request) -> Response:
        if settings.token is None:
            return Response(status_code=204)
        if not bearer(request, settings.token):
            return Response("wrong token", status_code=401, media_type="text/plain")
        answer = Response(status_code=204)
        answer.set_cookie(
            COOKIE,
            settings.session,
            httponly=True,
            samesite="strict",
            path=PREFIX,
            secure=request.url.scheme == "https",
        )
        return answer

    @router.post(f"{PREFIX}/logout")
    async def logout(form: FormData = leaving) -> Response:
        answer = RedirectResponse(f"{PREFIX}/login", status_code=303)
        answer.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return answer

    api.include_router(router)

    async def to_login(request: Request, _exc: Exception) -> Response:
        if request.method == "GET":
            target = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)
        return render(request, settings, "error.html", status=401, message="log in first")

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return render(request, settings, "error.html", status=exc.status, message=exc.message)

    api.add_exception_handler(LoginRequired, to_login)
    api.add_exception_handler(Refused, refused)


def actor_for_logout(settings: Settings) -> Any:
    """Logging out needs the CSRF value, not write access (read-only servers log out too)."""
    return actor(Settings(token=settings.token, read_only=False, key=settings.key))
