"""Every error answer is an RFC 9457 problem (``application/problem+json``).

``type`` says what kind of problem it is (``PROBLEM_TYPES``: Kartu's own are ``urn:kartu:problem:
...``; ``about:blank`` for one the HTTP status says all of), ``title`` its fixed summary,
``status`` the HTTP status, ``detail`` this occurrence, ``instance`` the request's path (a card
token in it redacted). Bad input lists every invalid field in ``errors``: where (``location``,
and a JSON pointer into the body), which ``field``, why (``detail``), never the value sent: it may
be a card token or an encrypted card. Unparseable bodies are 400, invalid fields 422, and
Kartu's own errors map to the status that says what to do (404, 409, 503 retry, 504).

``error`` (= ``detail``) and ``field`` (the first invalid field) are the members of the earlier
``{"error", "field"}`` answers, kept for the clients that read them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
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

PROBLEM_MEDIA_TYPE = "application/problem+json"
# How long a client should wait before retrying when Temporal is unavailable.
RETRY_AFTER_SECONDS = 5
Location = Literal["body", "query", "path", "header"]


@dataclass(frozen=True)
class ProblemType:
    uri: str
    title: str


MALFORMED_BODY = ProblemType(
    "urn:kartu:problem:malformed-body", "The body is not a JSON object of the expected form"
)
INVALID_REQUEST = ProblemType("urn:kartu:problem:invalid-request", "The request has invalid fields")
KEY_MISMATCH = ProblemType(
    "urn:kartu:problem:idempotency-key-mismatch",
    "The Idempotency-Key and the id in the body differ",
)
NOT_FOUND = ProblemType(
    "urn:kartu:problem:not-found", "No such payment, registration, refund or unbind"
)
ACTION_REFUSED = ProblemType(
    "urn:kartu:problem:action-refused", "The payment's status does not allow this"
)
IDEMPOTENCY_CONFLICT = ProblemType(
    "urn:kartu:problem:idempotency-conflict", "The key was already used for another request"
)
UNAVAILABLE = ProblemType("urn:kartu:problem:temporal-unavailable", "Temporal is unavailable")
TIMEOUT = ProblemType(
    "urn:kartu:problem:timeout", "No answer in time: the operation carries on durably"
)
INVALID_CALLBACK = ProblemType(
    "urn:kartu:problem:invalid-callback", "Not a valid Ayoconnect callback"
)
PROBLEM_TYPES = (
    MALFORMED_BODY,
    INVALID_REQUEST,
    KEY_MISMATCH,
    NOT_FOUND,
    ACTION_REFUSED,
    IDEMPOTENCY_CONFLICT,
    UNAVAILABLE,
    TIMEOUT,
    INVALID_CALLBACK,
)


class FieldError(BaseModel):
    """One invalid input. Never its value."""

    location: Location
    field: str = Field(description="As the API names it: `amount`, `Idempotency-Key`, `status`")
    pointer: str | None = Field(
        default=None, description="In a body: RFC 6901 JSON pointer as a URI fragment, `#/amount`"
    )
    detail: str
    code: str | None = Field(default=None, description="Machine-readable reason, e.g. `missing`")


class Problem(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "description": "RFC 9457 problem details. Kartu's problem types: "
            + "; ".join(f"`{t.uri}` ({t.title})" for t in PROBLEM_TYPES)
            + "; `about:blank` for the others."
        }
    )

    type: str = Field(default="about:blank", description="The problem type (a URI)")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(default=None, description="The request's path")
    errors: list[FieldError] = Field(default_factory=list, description="Every invalid field")
    payment_status: str | None = Field(
        default=None, description="action-refused: the payment's status"
    )
    error: str = Field(description="Deprecated: the same as `detail`")
    field: str | None = Field(default=None, description="Deprecated: the first invalid field")


# codec.py and older imports name the error model so.
ErrorBody = Problem


class ApiError(Exception):
    """Raised by handlers and dependencies: answered as a problem of ``kind`` (default: the
    HTTP status's own, ``about:blank``)."""

    def __init__(
        self,
        status_code: int,
        error: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        kind: ProblemType | None = None,
        errors: Sequence[FieldError] = (),
    ) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.field = field
        self.headers = headers
        self.kind = kind
        self.errors = list(errors)


_DESCRIPTIONS = {
    400: "Malformed body (not JSON, not an object), or Idempotency-Key and id differ",
    401: "Missing or invalid API key",
    404: "Unknown payment, registration or refund",
    409: "Refused by the payment's status, or the Idempotency-Key was used for another request",
    413: "Body too large",
    422: "Invalid fields: every one in `errors`",
    500: "Internal error",
    503: "Temporal unavailable: retry after `Retry-After` seconds",
    504: "No answer in time: the operation carries on; read it, or retry with the same key",
}
_RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
}


def problem_responses(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries of problems (``descriptions``: ``_409="..."``)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "model": Problem,
            "description": descriptions.get(f"_{code}", _DESCRIPTIONS[code]),
        }
        if code == 503:
            entry["headers"] = _RETRY_AFTER_HEADER
        out[code] = entry
    return out


def error_response(
    status_code: int,
    detail: str,
    field: str | None = None,
    *,
    kind: ProblemType | None = None,
    errors: Sequence[FieldError] = (),
    instance: str | None = None,
    payment_status: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The problem answer. ``field`` defaults to the first error's."""
    if kind is None:
        uri, title = "about:blank", HTTPStatus(status_code).phrase
    else:
        uri, title = kind.uri, kind.title
    problem = Problem(
        type=uri,
        title=title,
        status=status_code,
        detail=detail,
        instance=instance,
        errors=list(errors),
        payment_status=payment_status,
        error=detail,
        field=field if field is not None else (errors[0].field if errors else None),
    )
    headers = dict(headers or {})
    if status_code == 503:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status_code,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


# --- field errors ---------------------------------------------------------------------------

# A name the caller gave that is not a plain identifier (an unknown key may be anything, a card
# number too) is not echoed.
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
_HIDDEN = "<unnamed>"


def _part(part: object) -> str:
    text = str(part)
    return text if isinstance(part, int) or _PLAIN_NAME.fullmatch(text) else _HIDDEN


def _pointer(path: Sequence[object]) -> str:
    escaped = (_part(p).replace("~", "~0").replace("/", "~1") for p in path)
    return "#" + "".join("/" + p for p in escaped)


def _message(error: Mapping[str, Any]) -> str:
    if error.get("type") == "union_tag_invalid":  # pydantic's message quotes the tag sent
        ctx = error.get("ctx") or {}
        return f"must be one of {ctx.get('expected_tags', '')}"
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def field_error(
    location: Location, path: Sequence[object], message: str, code: str | None = None
) -> FieldError:
    """A ``FieldError`` at ``path`` (keys and indexes) in ``location``."""
    if location == "header" and path:
        name = "-".join(p.capitalize() for p in str(path[0]).split("-"))
        return FieldError(location=location, field=name, detail=message, code=code)
    name = ".".join(_part(p) for p in path) or location
    pointer = _pointer(path) if location == "body" else None
    return FieldError(location=location, field=name, pointer=pointer, detail=message, code=code)


def field_errors(
    errors: Iterable[Mapping[str, Any]], location: Location | None = None, tags: Iterable[str] = ()
) -> list[FieldError]:
    """pydantic / FastAPI errors as ``FieldError``s. ``location`` given: every ``loc`` is a path
    in it (else its first part says where); a first part in ``tags`` (a tagged union's) is no
    part of the path."""
    tagged = set(tags)
    out: list[FieldError] = []
    for error in errors:
        loc = list(error.get("loc", ()))
        where: Location
        if location is None:
            where = loc.pop(0) if loc and loc[0] in ("body", "query", "path", "header") else "body"
        else:
            where = location
        if loc and loc[0] in tagged:
            loc.pop(0)
        if error.get("type") == "json_invalid":
            loc = []  # FastAPI puts the character position there: no pointer
        if error.get("type") in ("union_tag_invalid", "union_tag_not_found") and not loc:
            loc = [str((error.get("ctx") or {}).get("discriminator", "type")).strip("'")]
        out.append(field_error(where, loc, _message(error), str(error.get("type") or "") or None))
    return out


def _body_unusable(error: FieldError) -> bool:
    """The body as a whole: missing, not JSON, not an object."""
    return error.location == "body" and (error.pointer == "#" or error.code == "json_invalid")


def describe_errors(errors: Sequence[FieldError]) -> str:
    """The errors in one line (the first few)."""
    shown = "; ".join(f"{e.field}: {e.detail}" for e in errors[:5])
    more = len(errors) - 5
    return (shown or "invalid request") + (f" (and {more} more)" if more > 0 else "")


# --- handlers --------------------------------------------------------------------------------

Redact = Callable[[str], str]


def install_error_handlers(app: FastAPI, redact_path: Redact = lambda path: path) -> None:
    """Every error as a problem; ``redact_path`` cleans the ``instance`` (card tokens)."""

    def instance(request: Request) -> str:
        return redact_path(request.url.path)

    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc.errors())
        unusable = [e for e in errors if _body_unusable(e)]
        if unusable:
            codes = {e.code for e in unusable}
            detail = (
                "the body is not valid JSON"
                if "json_invalid" in codes
                else "a JSON body is required"
                if "missing" in codes
                else "the body must be a JSON object"
            )
            return error_response(
                400, detail, kind=MALFORMED_BODY, errors=unusable, instance=instance(request)
            )
        detail = describe_errors(errors)
        where = instance(request)
        return error_response(422, detail, kind=INVALID_REQUEST, errors=errors, instance=where)

    async def kartu_error(request: Request, exc: KartuError) -> JSONResponse:
        where = instance(request)
        if isinstance(exc, InvalidRequest):
            errors = [_client_field_error(request, exc)] if exc.field else []
            return error_response(
                422, exc.message, exc.field, kind=INVALID_REQUEST, errors=errors, instance=where
            )
        if isinstance(exc, NotFound):
            return error_response(404, exc.message, kind=NOT_FOUND, instance=where)
        if isinstance(exc, ActionRefused):
            status = exc.status.value if exc.status else None
            return error_response(
                409, exc.reason, kind=ACTION_REFUSED, instance=where, payment_status=status
            )
        if isinstance(exc, IdempotencyConflict):
            return error_response(
                409, exc.message, exc.field, kind=IDEMPOTENCY_CONFLICT, instance=where
            )
        if isinstance(exc, KartuTimeout):
            return error_response(504, exc.message, kind=TIMEOUT, instance=where)
        if isinstance(exc, KartuUnavailable):
            log.warning("temporal unavailable: %s", exc.message)
            return error_response(
                503, "Temporal is unavailable: retry later", kind=UNAVAILABLE, instance=where
            )
        log.error("kartu error on %s %s: %s", request.method, where, exc.message)
        return error_response(500, "internal error", instance=where)

    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(
            exc.status_code,
            exc.error,
            exc.field,
            kind=exc.kind,
            errors=exc.errors,
            instance=instance(request),
            headers=exc.headers,
        )

    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "not found", 405: "method not allowed"}
        detail = messages.get(exc.status_code) or str(exc.detail)
        headers = getattr(exc, "headers", None)
        return error_response(exc.status_code, detail, instance=instance(request), headers=headers)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.method)
        return error_response(500, "internal error", instance=instance(request))

    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(KartuError, kartu_error)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, api_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected)


def _client_field_error(request: Request, exc: InvalidRequest) -> FieldError:
    """``KartuClient`` names the field; where it came from is the request's business."""
    field = exc.field or ""
    message = exc.message.removeprefix(f"{field}: ")
    if field.lower() == "idempotency-key":
        return field_error("header", [field], message, "invalid")
    if field in request.path_params:
        return field_error("path", [field], message, "invalid")
    if field in request.query_params:
        return field_error("query", [field], message, "invalid")
    return field_error("body", field.split("."), message, "invalid")


def problem_media_types(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents every response model as ``application/json``: a problem is
    ``application/problem+json``."""
    ref = "#/components/schemas/Problem"
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                plain = content.get("application/json")
                if plain is not None and plain.get("schema", {}).get("$ref") == ref:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return schema
