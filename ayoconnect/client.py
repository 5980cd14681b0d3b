"""Async client of Ayoconnect's Card Acceptance API over one shared ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from .codes import DECLINE_CODES, RULE_VIOLATION_CASE, GatewayCode, parse_response_code
from .errors import (
    AmbiguousError,
    AuthenticationError,
    AyoconnectError,
    ConflictError,
    DeclinedError,
    InvalidRequestError,
    NotFoundError,
    RuleViolationError,
    TransientError,
)
from .models import (
    AccessTokenResponse,
    CardsListResponse,
    CreateChargeRequest,
    CreateChargeResponse,
    CustomerId,
    ErrorBody,
    GenerateWebviewRequest,
    GenerateWebviewResponse,
    PaymentActionResponse,
    PaymentStatusResponse,
    RefundRequest,
    TransactionId,
    UnbindRequest,
    UnbindResponse,
    VoidRequest,
)
from .settings import AyoconnectSettings
from .tls import tls_context

log = logging.getLogger(__name__)

JAKARTA = timezone(timedelta(hours=7))
R = TypeVar("R", bound=BaseModel)


def new_correlation_id() -> str:
    """32 characters, a UUID without hyphens: one per payment flow."""
    return uuid.uuid4().hex


def wire_timestamp(now: datetime | None = None) -> str:
    """``yyyy-MM-ddTHH:mm:ss+07:00``: 25 characters, Jakarta time, no milliseconds."""
    moment = (now or datetime.now(JAKARTA)).astimezone(JAKARTA)
    return moment.strftime("%Y-%m-%dT%H:%M:%S+07:00")


class _Token:
    def __init__(self, value: str, expires_at: float) -> None:
        self.value = value
        self.expires_at = expires_at


class AyoconnectClient:
    """Every operation of the contract. Create once per process and share it.

    Requests are validated by their pydantic models before anything is sent; failures are raised
    as the classes in ``ayoconnect.errors``.
    """

    def __init__(
        self,
        settings: AyoconnectSettings | None = None,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings or AyoconnectSettings()
        timeout = httpx.Timeout(
            self.settings.read_timeout_seconds, connect=self.settings.connect_timeout_seconds
        )
        limits = httpx.Limits(max_connections=self.settings.max_connections)
        self._http = http or httpx.AsyncClient(
            base_url=self.settings.base_url, timeout=timeout, limits=limits, verify=tls_context()
        )
        self._owns_http = http is None
        self._token: _Token | None = None
        self._token_task: asyncio.Task[_Token] | None = None
        self.token_requests = 0  # how many times a token was fetched: tests and metrics read it

    async def __aenter__(self) -> AyoconnectClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- access token -----------------------------------------------------------------------

    async def access_token(self) -> str:
        token = self._token
        if token is not None and time.monotonic() < token.expires_at:
            return token.value
        return (await self._refresh_token(stale=token)).value

    async def _refresh_token(self, stale: _Token | None) -> _Token:
        # Single flight: every caller that finds the token stale awaits the same request.
        if self._token is not stale and self._token is not None:
            return self._token
        if self._token_task is None or self._token_task.done():
            self._token_task = asyncio.ensure_future(self._fetch_token())
        return await asyncio.shield(self._token_task)

    async def _fetch_token(self) -> _Token:
        s = self.settings
        self.token_requests += 1
        try:
            response = await self._http.post(
                s.token_path,
                params={"grant_type": "client_credentials"},
                data={
                    "client_id": s.client_id,
                    "client_secret": s.client_secret.get_secret_value(),
                },
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise TransientError(
                f"access token request failed: {type(exc).__name__}", operation="access_token"
            ) from None
        if response.status_code in (400, 401, 403):
            raise AuthenticationError(
                "Ayoconnect refused the client id or secret",
                http_status=response.status_code,
                operation="access_token",
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(
                "access token request failed",
                http_status=response.status_code,
                operation="access_token",
            )
        try:
            body = AccessTokenResponse.model_validate_json(response.content)
        except ValidationError:
            raise InvalidRequestError(
                "access token response is malformed", operation="access_token"
            ) from None
        lifetime = max(int(body.expiresIn) - s.token_refresh_margin_seconds, 1)
        token = _Token(body.accessToken, time.monotonic() + lifetime)
        self._token = token
        return token

    def invalidate_token(self, value: str | None = None) -> None:
        """Forget the cached token (only if it is still ``value``, when given)."""
        # Many calls may meet a 401 at once: only the first may drop the token, or calls
        # would throw away the fresh one another call just fetched.
        if value is None or (self._token is not None and self._token.value == value):
            self._token = None

    # --- operations -------------------------------------------------------------------------

    async def generate_webview(
        self, request: GenerateWebviewRequest, *, correlation_id: str
    ) -> GenerateWebviewResponse:
        return await self._post(
            "generate_webview_path", request, GenerateWebviewResponse, correlation_id
        )

    async def create_charge(
        self, request: CreateChargeRequest, *, correlation_id: str
    ) -> CreateChargeResponse:
        return await self._post("create_charge_path", request, CreateChargeResponse, correlation_id)

    async def void(self, request: VoidRequest, *, correlation_id: str) -> PaymentActionResponse:
        return await self._post("void_path", request, PaymentActionResponse, correlation_id)

    async def refund(self, request: RefundRequest, *, correlation_id: str) -> PaymentActionResponse:
        return await self._post("refund_path", request, PaymentActionResponse, correlation_id)

    async def unbind(self, request: UnbindRequest, *, correlation_id: str) -> UnbindResponse:
        return await self._post("unbind_path", request, UnbindResponse, correlation_id)

    async def payment_status(
        self,
        *,
        transaction_id: str,
        customer_id: str,
        correlation_id: str,
        invoice_number: str | None = None,
        original_transaction_id: str | None = None,
    ) -> PaymentStatusResponse:
        if (invoice_number is None) == (original_transaction_id is None):
            raise ValueError("give exactly one of invoice_number or original_transaction_id")
        params = {"transactionId": transaction_id, "customerId": customer_id}
        if invoice_number is not None:
            params["invoiceNumber"] = invoice_number
        else:
            params["originalTransactionId"] = str(original_transaction_id)
        _check_query(params)
        return await self._get("payment_status_path", params, PaymentStatusResponse, correlation_id)

    async def list_cards(
        self, *, transaction_id: str, customer_id: str, correlation_id: str
    ) -> CardsListResponse:
        params = {"transactionId": transaction_id, "customerId": customer_id}
        _check_query(params)
        return await self._get("cards_list_path", params, CardsListResponse, correlation_id)

    # --- transport --------------------------------------------------------------------------

    async def _post(
        self, path_name: str, request: BaseModel, model: type[R], correlation_id: str
    ) -> R:
        body = request.model_dump(mode="json", exclude_none=True)
        transaction_id = body.get("transactionId")
        return await self._call(
            "POST", path_name, model, correlation_id, transaction_id, json_body=body
        )

    async def _get(
        self, path_name: str, params: dict[str, str], model: type[R], correlation_id: str
    ) -> R:
        return await self._call(
            "GET", path_name, model, correlation_id, params["transactionId"], params=params
        )

    async def _call(
        self,
        method: str,
        path_name: str,
        model: type[R],
        correlation_id: str,
        transaction_id: str | None,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> R:
        _check_correlation_id(correlation_id)
        operation = path_name.removesuffix("_path")
        context = {
            "correlation_id": correlation_id,
            "transaction_id": transaction_id,
            "operation": operation,
        }
        path = self.settings.card_path(path_name)
        for attempt in (1, 2):
            try:
                token = await self.access_token()
            except AyoconnectError as exc:
                # A fresh error per call: the single-flight token task shares one exception
                # among its waiters, and this call's ids belong on it.
                raise type(exc)(exc.message, http_status=exc.http_status, **context) from None
            headers = self._headers(token, correlation_id)
            started = time.monotonic()
            try:
                response = await self._http.request(
                    method, path, json=json_body, params=params, headers=headers
                )
            except httpx.HTTPError as exc:
                raise _transport_error(exc, method, context) from None
            log.debug(
                "ayoconnect %s %s -> %s in %.0f ms (transactionId=%s)",
                method,
                operation,
                response.status_code,
                (time.monotonic() - started) * 1000,
                transaction_id,
            )
            if response.status_code == 401 and attempt == 1:
                # The token may have been revoked or expired early: refresh once, retry once.
                self.invalidate_token(token)
                continue
            if response.is_success:
                return _parse_success(response, model, context)
            raise _status_error(response, context)
        raise AssertionError("unreachable")  # pragma: no cover

    def _headers(self, token: str, correlation_id: str) -> dict[str, str]:
        s = self.settings
        return {
            "Authorization": f"Bearer {token}",
            s.correlation_id_header: correlation_id,
            s.merchant_code_header: s.merchant_code,
            s.timestamp_header: wire_timestamp(),
            "Accept": "application/json",
            "Content-Type": "application/json",
        }


def _check_correlation_id(value: str) -> None:
    if len(value) != 32 or not all(c in "0123456789abcdef" for c in value):
        raise ValueError("correlation_id must be 32 lowercase hex characters (a UUID without '-')")


# The models' own types: a query string follows the same rule as a body.
_TRANSACTION_ID: TypeAdapter[str] = TypeAdapter(TransactionId)
_CUSTOMER_ID: TypeAdapter[str] = TypeAdapter(CustomerId)


def _valid(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError:
        return False
    return True


def _check_query(params: dict[str, str]) -> None:
    if not _valid(_TRANSACTION_ID, params["transactionId"]):
        raise ValueError("transactionId must be 1 to 32 ASCII letters, digits, '_' or '-'")
    if not _valid(_CUSTOMER_ID, params["customerId"]):
        raise ValueError("customerId must be 6 to 16 ASCII letters or digits")


def _transport_error(exc: httpx.HTTPError, method: str, context: dict[str, Any]) -> AyoconnectError:
    name = type(exc).__name__
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    # A read is always safe to repeat; a POST that may have reached Ayoconnect is not.
    if never_sent or method == "GET":
        return TransientError(f"connection to Ayoconnect failed: {name}", **context)
    return AmbiguousError(f"request may have reached Ayoconnect, answer lost: {name}", **context)


def _parse_success(response: httpx.Response, model: type[R], context: dict[str, Any]) -> R:
    try:
        parsed = model.model_validate_json(response.content)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise InvalidRequestError(
            f"Ayoconnect answer does not match the contract (fields: {fields})",
            http_status=response.status_code,
            **context,
        ) from None
    code = getattr(parsed, "responseCode", None)
    if code and code.endswith(GatewayCode.TIMED_OUT.value):
        raise TransientError(
            "Ayoconnect reported TIMED_OUT",
            http_status=response.status_code,
            response_code=code,
            gateway_code=GatewayCode.TIMED_OUT,
            **context,
        )
    return parsed


def _status_error(response: httpx.Response, context: dict[str, Any]) -> AyoconnectError:
    status = response.status_code
    body: ErrorBody | None
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        body = None
    code = body.responseCode if body else None
    gateway = parse_response_code(code)[2] if code else None
    message = body.message if body else f"HTTP {status}"
    if body and body.errors:
        message += " (" + "; ".join(f"{e.code}: {e.message}" for e in body.errors) + ")"
    kwargs: dict[str, Any] = {
        "http_status": status,
        "response_code": code,
        "gateway_code": gateway,
        **context,
    }
    if body and body.transactionId and not context.get("transaction_id"):
        kwargs["transaction_id"] = body.transactionId
    if status == 429 or status >= 500 or gateway is GatewayCode.TIMED_OUT:
        return TransientError(message, **kwargs)
    if status in (401, 403):
        return AuthenticationError(message, **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status == 409:
        return ConflictError(message, **kwargs)
    if gateway in DECLINE_CODES:
        return DeclinedError(message, **kwargs)
    if gateway is RULE_VIOLATION_CASE:
        return RuleViolationError(message, **kwargs)
    return InvalidRequestError(message, **kwargs)
