"""Every error answer has one shape (``docs/rest.md``): ``{"error": CODE, "message", "problems"?}``.

Durable's own errors map to their status here, FastAPI's request validation becomes a 400
(never FastAPI's 422 shape), and Starlette's 404/405 get the same body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    ConflictError,
    DurableError,
    InvalidInputError,
    NotFoundError,
    Problem,
    StoreError,
    ValidationError,
)
from ._models import ErrorOut

log = logging.getLogger("durable.server")

VALIDATION_ERROR = "VALIDATION_ERROR"
MALFORMED_JSON = "MALFORMED_JSON"
NOT_FOUND = "NOT_FOUND"
CONFLICT = "CONFLICT"

STATUS_OF_ERRORS: list[tuple[type[DurableError], int, str]] = [
    (InvalidInputError, 400, VALIDATION_ERROR),
    (NotFoundError, 404, NOT_FOUND),
    (ConflictError, 409, CONFLICT),
    (StoreError, 503, "STORE_UNAVAILABLE"),
]
"""The answer to each kind of durable error, by base class (``durable.errors``); any other
durable error is a failure of the server (500)."""


def error_status(error: type[DurableError]) -> tuple[int, str]:
    """The HTTP status and ``error`` code answering an error of this class."""
    for kind, status, code in STATUS_OF_ERRORS:
        if issubclass(error, kind):
            return status, code
    return 500, "INTERNAL_ERROR"


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: NOT_FOUND,
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class ApiError(Exception):
    """An answer other than success, raised by a route."""

    def __init__(
        self, status: int, code: str, message: str, problems: Sequence[Problem] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = list(problems)


def error_body(code: str, message: str, problems: Sequence[Problem] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    if problems:
        body["problems"] = [
            {"path": p.path, "message": p.message}
            | ({"stepId": p.step_id} if p.step_id is not None else {})
            for p in problems
        ]
    return body


def error_bytes(code: str, message: str) -> bytes:
    return json.dumps(error_body(code, message)).encode()


def _json(status: int, code: str, message: str, problems: Sequence[Problem] = ()) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message, problems), status_code=status, headers=headers)


def _path(loc: Sequence[Any]) -> str:
    """``("body", "jobTypes", 0)`` → ``jobTypes[0]``; ``("query", "page")`` → ``query.page``."""
    parts = list(loc[1:]) if loc and loc[0] == "body" else list(loc)
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def _on_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _json(exc.status, exc.code, exc.message, exc.problems)


def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "invalid JSON")
        return _json(400, MALFORMED_JSON, f"the request body is not valid JSON: {reason}")
    problems = [Problem(_path(e.get("loc", ())), str(e.get("msg", "invalid"))) for e in errors]
    lines = "; ".join(str(p) for p in problems)
    return _json(400, VALIDATION_ERROR, f"the request is invalid: {lines}", problems)


def _on_http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
    message = str(exc.detail)
    if exc.status_code == 400 and "parsing the body" in message:
        code, message = MALFORMED_JSON, "the request body is not valid JSON"
    elif exc.status_code == 404:
        message = "no such endpoint"
    return _json(exc.status_code, code, message)


def _on_durable(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DurableError)
    status, code = error_status(type(exc))
    if status == 500:
        log.exception("unexpected error", exc_info=exc)
        return _json(500, code, f"{type(exc).__name__}: {exc}")
    if status == 503:
        log.warning("store unavailable: %s", exc)
    problems = exc.problems if isinstance(exc, ValidationError) else ()
    return _json(status, code, str(exc), problems)


def _on_crash(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error", exc_info=exc)
    return _json(500, "INTERNAL_ERROR", "the server failed; see its log")


def install(api: FastAPI) -> None:
    """Register the handlers that give every error its shape."""
    api.add_exception_handler(ApiError, _on_api_error)
    api.add_exception_handler(RequestValidationError, _on_validation)
    api.add_exception_handler(StarletteHTTPException, _on_http)
    api.add_exception_handler(DurableError, _on_durable)
    api.add_exception_handler(Exception, _on_crash)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of the error statuses an operation can answer."""
    text = {
        400: "Invalid input: malformed JSON, wrong field types or values",
        401: "Missing or wrong bearer token (only when the server has a token)",
        404: "Not found",
        409: "Conflict with the current state",
        415: "The body is not application/json",
        503: "The store does not answer",
    }
    return {s: {"model": ErrorOut, "description": text[s]} for s in sorted({401, 503, *statuses})}
