"""Every error answer is ``{"error": ..., "field": ...}``: bad input is 400/422 naming the
field, never a 500; Kartu's own errors map to the status that says what to do."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from starter.client import (
    ActionRefused,
    IdempotencyConflict,
    InvalidRequest,
    KartuError,
    KartuTimeout,
    KartuUnavailable,
    NotFound,
)

log = logging.getLogger("kartu.gateway")


class ErrorBody(BaseModel):
    error: str
    field: str | None = None
    status: str | None = None  # the payment's status, when an action was refused


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        error: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.field = field
        self.headers = headers


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed request"},
    401: {"model": ErrorBody, "description": "Missing or invalid API key"},
    422: {"model": ErrorBody, "description": "Invalid field (named in `field`)"},
    503: {"model": ErrorBody, "description": "Temporal unavailable: retry later"},
}


def error_response(
    status_code: int,
    error: str,
    field: str | None = None,
    status: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=error, field=field, status=status)
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status_code, headers=headers
    )


def _field_of(loc: tuple[Any, ...]) -> str | None:
    # ("body", "amount") → "amount"; ("header", "idempotency-key") → "Idempotency-Key".
    if not loc:
        return None
    where, *rest = loc
    if where == "header" and rest:
        return "-".join(part.capitalize() for part in str(rest[0]).split("-"))
    return ".".join(str(p) for p in rest) or str(where)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return error_response(400, "the body is not valid JSON")
    field = _field_of(tuple(first.get("loc", ())))
    if first.get("type") == "missing" and field == "body":
        return error_response(400, "a JSON body is required", "body")
    if first.get("type") == "model_attributes_type" and field == "body":
        return error_response(400, "the body must be a JSON object", "body")
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    # Never the input itself: it may be a card token or an encrypted card.
    return error_response(422, f"{field}: {message}" if field else message, field)


async def _kartu_error(request: Request, exc: KartuError) -> JSONResponse:
    if isinstance(exc, InvalidRequest):
        return error_response(422, exc.message, exc.field)
    if isinstance(exc, NotFound):
        return error_response(404, exc.message)
    if isinstance(exc, ActionRefused):
        return error_response(409, exc.reason, status=exc.status.value if exc.status else None)
    if isinstance(exc, IdempotencyConflict):
        return error_response(409, exc.message, exc.field)
    if isinstance(exc, KartuTimeout):
        return error_response(504, exc.message)
    if isinstance(exc, KartuUnavailable):
        log.warning("temporal unavailable: %s", exc.message)
        return error_response(503, "Temporal is unavailable: retry later")
    log.error("kartu error on %s %s: %s", request.method, request.url.path, exc.message)
    return error_response(500, "internal error")


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status_code, exc.error, exc.field, headers=exc.headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    messages = {404: "not found", 405: "method not allowed"}
    error = messages.get(exc.status_code) or str(exc.detail)
    return error_response(exc.status_code, error, headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.method)
    return error_response(500, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(KartuError, _kartu_error)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
