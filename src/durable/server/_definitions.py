"""``/v1/definitions``: upload, list, and read versioned JSON flow definitions."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from ..errors import Problem, ValidationError
from ..flow._client import StoredDefinition
from ._errors import MALFORMED_JSON, VALIDATION_ERROR, ApiError, responses
from ._models import (
    MAX_INT,
    DefinitionPage,
    DefinitionSummary,
    StoredDefinitionOut,
    _storable,
)

if TYPE_CHECKING:
    from ..app import App

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A definition in the JSON step format; every problem is reported at once.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Definition"}}},
    }
}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json(request: Request, what: str) -> Any:
    """The request's JSON body, parsed by hand (for bodies validated by durable itself)."""
    body = await request.body()
    if not body.strip():
        raise ApiError(400, VALIDATION_ERROR, f"the request needs a JSON body: {what}")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise ApiError(400, MALFORMED_JSON, "the request body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ApiError(400, MALFORMED_JSON, f"the request body is not valid JSON: {exc}") from None


def check_name(document: Any) -> None:
    """The name is stored in a column of its own, which cannot hold every string."""
    name = document.get("name") if isinstance(document, dict) else None
    if isinstance(name, str):
        try:
            _storable(name)
        except ValueError as exc:
            raise ValidationError([Problem("name", str(exc))], "definition") from None


def _stored(stored: StoredDefinition) -> JSONResponse:
    """The document as uploaded, with its version and upload time added."""
    uploaded = stored.uploaded_at.isoformat().replace("+00:00", "Z")
    return JSONResponse({**stored.document, "version": stored.version, "uploadedAt": uploaded})


def router(app: App) -> APIRouter:
    """The definition routes, bound to ``app``."""
    api = APIRouter(prefix="/v1/definitions", tags=["definitions"])

    @api.post(
        "",
        status_code=201,
        response_model=DefinitionSummary,
        responses=responses(400, 415),
        openapi_extra=UPLOAD_BODY,
        summary="Upload a definition as the next version of its id",
    )
    async def upload_definition(request: Request) -> DefinitionSummary:
        document = await read_json(request, "a definition")
        check_name(document)
        ref = await app.definitions.upload(document)
        return DefinitionSummary(
            id=ref.id, version=ref.version, name=ref.name, uploadedAt=ref.uploaded_at
        )

    @api.get(
        "",
        response_model=DefinitionPage,
        responses=responses(400),
        summary="The latest version of each definition, by id, a page at a time",
    )
    async def list_definitions(
        keyword: Annotated[str | None, Query(max_length=256)] = None,
        page: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
        pageSize: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> DefinitionPage:
        found, total = await app.definitions.list(
            keyword=keyword or None, offset=page * pageSize, limit=pageSize
        )
        items = [
            DefinitionSummary(id=d.id, version=d.version, name=d.name, uploadedAt=d.uploaded_at)
            for d in found
        ]
        return DefinitionPage(items=items, page=page, pageSize=pageSize, total=total)

    @api.get(
        "/{definition_id}",
        response_model=StoredDefinitionOut,
        responses=responses(400, 404),
        summary="The latest version of a definition",
    )
    async def get_definition(definition_id: str) -> JSONResponse:
        stored = await app.definitions.get(definition_id)
        return _stored(stored)

    @api.get(
        "/{definition_id}/versions/{version}",
        response_model=StoredDefinitionOut,
        responses=responses(400, 404),
        summary="One version of a definition",
    )
    async def get_definition_version(
        definition_id: str, version: Annotated[int, Path(ge=1, le=MAX_INT)]
    ) -> JSONResponse:
        stored = await app.definitions.get(definition_id, version)
        return _stored(stored)

    return api
