"""Who may call: the access-token endpoint and the headers every card call must carry."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request

from ayoconnect.codes import INVALID_REQUEST_CASE, ServiceCode
from ayoconnect.models import ErrorDetail

from .clock import wire_time
from .context import SandboxContext
from .errors import ApiError, Reply, detail, invalid, unauthorized
from .tokens import EXPIRES_IN

# [0-9], not \d: Python's \d also matches non-ASCII digits, which no wire format allows.
_TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+07:00$")
_CORRELATION_ID = re.compile(r"^[0-9A-Fa-f]{32}$")
_MAX_FORM_BYTES = 4096


@dataclass(frozen=True)
class CallInfo:
    """What the headers told us about a card call."""

    correlation_id: str
    base_url: str  # where this sandbox's pages are reachable for the caller


def page_base_url(ctx: SandboxContext, request: Request) -> str:
    return ctx.settings.public_base_url or str(request.base_url).rstrip("/")


def check_card_headers(ctx: SandboxContext, request: Request, service: ServiceCode) -> CallInfo:
    """Bearer first (401), then the contract's required headers (400), then the merchant."""
    names = ctx.ayoconnect
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(service, "Authorization: Bearer <accessToken> is required")
    if not ctx.tokens.is_valid(token.strip(), ctx.clock.now()):
        raise unauthorized(service, "access token is invalid or expired")

    problems: list[ErrorDetail] = []
    correlation_id = request.headers.get(names.correlation_id_header)
    if correlation_id is None:
        problems.append(_missing(names.correlation_id_header))
    elif not _CORRELATION_ID.match(correlation_id):
        problems.append(_wrong(names.correlation_id_header, "must be 32 hexadecimal characters"))
    merchant_code = request.headers.get(names.merchant_code_header)
    if merchant_code is None:
        problems.append(_missing(names.merchant_code_header))
    elif len(merchant_code) != 6:
        problems.append(_wrong(names.merchant_code_header, "must be exactly 6 characters"))
    timestamp = request.headers.get(names.timestamp_header)
    if timestamp is None:
        problems.append(_missing(names.timestamp_header))
    elif not _valid_timestamp(timestamp):
        problems.append(
            _wrong(names.timestamp_header, "must be yyyy-MM-ddTHH:mm:ss+07:00 (25 characters)")
        )
    if problems:
        raise invalid(service, *problems)
    if not hmac.compare_digest(str(merchant_code).encode(), names.merchant_code.encode()):
        raise unauthorized(service, f"{names.merchant_code_header} is not this merchant's code")
    return CallInfo(correlation_id=str(correlation_id), base_url=page_base_url(ctx, request))


def _valid_timestamp(value: str) -> bool:
    if len(value) != 25 or not _TIMESTAMP.match(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _missing(header: str) -> ErrorDetail:
    return detail("MISSING_HEADER", f"{header} header is required", header)


def _wrong(header: str, rule: str) -> ErrorDetail:
    return detail("INVALID_HEADER", f"{header} {rule}", header)


async def issue_token(ctx: SandboxContext, request: Request) -> Reply:
    """``POST {token_path}?grant_type=client_credentials`` with a form body."""
    service = ServiceCode.ACCESS_TOKEN
    if request.query_params.get("grant_type") != "client_credentials":
        raise invalid(service, detail("INVALID_FIELD", "must be client_credentials", "grant_type"))
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise invalid(
            service,
            detail("INVALID_BODY", "the body must be form-encoded (client_id, client_secret)"),
            status=415,
        )
    if len(await request.body()) > _MAX_FORM_BYTES:
        raise invalid(service, detail("INVALID_BODY", "the body is too large"), status=413)
    form = await request.form()
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    missing = [
        detail("MISSING_FIELD", "field required", name)
        for name, value in (("client_id", client_id), ("client_secret", client_secret))
        if not isinstance(value, str) or not value
    ]
    if missing:
        raise invalid(service, *missing)
    expected_secret = ctx.ayoconnect.client_secret.get_secret_value()
    id_ok = hmac.compare_digest(str(client_id).encode(), ctx.ayoconnect.client_id.encode())
    secret_ok = hmac.compare_digest(str(client_secret).encode(), expected_secret.encode())
    if not (id_ok and secret_ok):
        raise ApiError(
            401,
            service,
            INVALID_REQUEST_CASE,
            "Unauthorized",
            [detail("INVALID_CLIENT", "client_id or client_secret is wrong")],
        )
    now = ctx.clock.now()
    with ctx.db.transaction():
        token = ctx.tokens.issue(str(client_id), now)
    return Reply(
        200,
        {
            "accessToken": token,
            "tokenType": "BearerToken",
            "expiresIn": EXPIRES_IN,
            "clientId": str(client_id),
            "responseTime": wire_time(now),
        },
    )
