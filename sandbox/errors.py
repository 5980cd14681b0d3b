"""The contract's error body and the sandbox's refusals.

Every refusal, however early (bad bearer, malformed JSON, unknown route), answers the same
body ``{code, responseCode, message, responseTime, transactionId, errors}`` with a 7-digit code,
so a client is tested against exactly what it will parse in production. Messages name fields,
never their values: a mistyped card token or PAN must not come back in an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ayoconnect.codes import (
    INVALID_REQUEST_CASE,
    RULE_VIOLATION_CASE,
    GatewayCode,
    ServiceCode,
    response_code,
)
from ayoconnect.models import ErrorBody, ErrorDetail

from .clock import wire_time


@dataclass
class Reply:
    """An answer before it becomes a response: stored as is for idempotent replays."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers or None)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        service: ServiceCode,
        case: GatewayCode,
        message: str,
        errors: list[ErrorDetail] | None = None,
        *,
        transaction_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.service = service
        self.case = case
        self.message = message
        self.errors = errors or []
        self.transaction_id = transaction_id
        self.headers = headers or {}

    def reply(self, now: datetime, transaction_id: str | None = None) -> Reply:
        body = ErrorBody(
            code=self.status,
            responseCode=response_code(self.status, self.service, self.case),
            message=self.message,
            responseTime=wire_time(now),
            transactionId=self.transaction_id or transaction_id,
            errors=self.errors,
        )
        return Reply(self.status, body.model_dump(mode="json"), dict(self.headers))


def detail(code: str, message: str, details: str | None = None) -> ErrorDetail:
    return ErrorDetail(code=code, message=message, details=details)


def invalid(service: ServiceCode, *errors: ErrorDetail, status: int = 400) -> ApiError:
    return ApiError(status, service, INVALID_REQUEST_CASE, "Invalid request", list(errors))


def unauthorized(service: ServiceCode, message: str) -> ApiError:
    return ApiError(
        401,
        service,
        INVALID_REQUEST_CASE,
        "Unauthorized",
        [detail("UNAUTHORIZED", message)],
        headers={"WWW-Authenticate": "Bearer"},
    )


def not_found(service: ServiceCode, what: str) -> ApiError:
    return ApiError(404, service, INVALID_REQUEST_CASE, "Not found", [detail("NOT_FOUND", what)])


def conflict(service: ServiceCode, message: str) -> ApiError:
    return ApiError(409, service, INVALID_REQUEST_CASE, "Conflict", [detail("CONFLICT", message)])


def rule_violation(service: ServiceCode, message: str) -> ApiError:
    return ApiError(
        400,
        service,
        RULE_VIOLATION_CASE,
        "Not allowed",
        [detail(RULE_VIOLATION_CASE.name, message)],
    )


def declined(service: ServiceCode, case: GatewayCode, message: str) -> ApiError:
    return ApiError(400, service, case, "Declined", [detail(case.name, message)])


def field_errors(exc: ValidationError) -> list[ErrorDetail]:
    """One entry per refused field; pydantic's messages describe the rule, not the input."""
    found: list[ErrorDetail] = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "body"
        code = "MISSING_FIELD" if error["type"] == "missing" else "INVALID_FIELD"
        message = str(error["msg"]).removeprefix("Value error, ")
        found.append(detail(code, message, location))
    return found
