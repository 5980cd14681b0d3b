"""How answers and transport failures become the client's error classes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from ayoconnect import (
    AmbiguousError,
    AuthenticationError,
    AyoconnectClient,
    AyoconnectError,
    ConflictError,
    DeclinedError,
    FinalError,
    InvalidRequestError,
    NotFoundError,
    RuleViolationError,
    TransientError,
)
from ayoconnect.codes import GatewayCode
from ayoconnect.models import CreateChargeRequest

if TYPE_CHECKING:
    from conftest import FakeAyoconnect

CID = "fedcba9876543210fedcba9876543210"
TID = "wf-7-pay"
STATUS_TID = "wf-7-status"


def pay() -> CreateChargeRequest:
    return CreateChargeRequest(
        transactionId=TID,
        customerId="CUST000007",
        operation="PAY",
        cardToken="T" * 40,
        order={"id": "ORD-7", "amount": "25000.00"},
    )


def error_body(code: str, message: str = "Refused", **extra: Any) -> dict[str, Any]:
    return {
        "code": int(code[:3]),
        "responseCode": code,
        "message": message,
        "responseTime": "20250101120000",
        "transactionId": TID,
        "errors": [{"code": "0" + code[-2:], "message": "detail", "details": "more"}],
        **extra,
    }


def assert_context(exc: AyoconnectError, transaction_id: str = TID) -> None:
    assert exc.correlation_id == CID
    assert exc.transaction_id == transaction_id
    assert f"correlationId={CID}" in str(exc)
    assert f"transactionId={transaction_id}" in str(exc)


async def status_lookup(client: AyoconnectClient) -> Any:
    return await client.payment_status(
        transaction_id=STATUS_TID,
        customer_id="CUST000007",
        correlation_id=CID,
        original_transaction_id=TID,
    )


# --- status codes and response codes --------------------------------------------------------


CASES: list[tuple[int, dict[str, Any] | None, type[AyoconnectError], GatewayCode | None]] = [
    (429, None, TransientError, None),
    (500, error_body("5005432", "System error"), TransientError, GatewayCode.SYSTEM_ERROR),
    (502, None, TransientError, None),
    (503, error_body("5035432", "Supplier down"), TransientError, GatewayCode.SYSTEM_ERROR),
    (504, None, TransientError, None),
    (400, error_body("4005433", "Timed out"), TransientError, GatewayCode.TIMED_OUT),
    (400, error_body("4005422"), DeclinedError, GatewayCode.INSUFFICIENT_FUNDS),
    (400, error_body("4005421"), DeclinedError, GatewayCode.EXPIRED_CARD),
    (400, error_body("4005410"), DeclinedError, GatewayCode.DECLINED),
    (400, error_body("4005423"), DeclinedError, GatewayCode.INVALID_CSC),
    (400, error_body("4005404"), DeclinedError, GatewayCode.AUTHENTICATION_FAILED),
    (400, error_body("4005426"), RuleViolationError, GatewayCode.NOT_SUPPORTED),
    (404, error_body("4045435"), NotFoundError, GatewayCode.UNSPECIFIED_FAILURE),
    (404, None, NotFoundError, None),
    (409, error_body("4095435"), ConflictError, GatewayCode.UNSPECIFIED_FAILURE),
    (400, error_body("4005435"), InvalidRequestError, GatewayCode.UNSPECIFIED_FAILURE),
    (400, None, InvalidRequestError, None),
    (412, error_body("4125435"), InvalidRequestError, GatewayCode.UNSPECIFIED_FAILURE),
    (415, None, InvalidRequestError, None),
    (403, error_body("4035435"), AuthenticationError, GatewayCode.UNSPECIFIED_FAILURE),
]


@pytest.mark.parametrize(
    ("status", "body", "expected", "gateway"),
    CASES,
    ids=[f"{c[0]}-{c[1]['responseCode'] if c[1] else 'nobody'}" for c in CASES],
)
async def test_status_classification(
    ayo_client: AyoconnectClient,
    ayo_fake: FakeAyoconnect,
    status: int,
    body: dict[str, Any] | None,
    expected: type[AyoconnectError],
    gateway: GatewayCode | None,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status, text="<html>upstream says no</html>")
        return ayo_fake.json(status, body)

    ayo_fake.api = answer
    with pytest.raises(AyoconnectError) as info:
        await ayo_client.create_charge(pay(), correlation_id=CID)
    exc = info.value
    assert type(exc) is expected
    assert exc.http_status == status
    assert exc.gateway_code is gateway
    assert exc.response_code == (body["responseCode"] if body else None)
    assert exc.operation == "create_charge"
    assert_context(exc)
    final = expected in (
        DeclinedError,
        RuleViolationError,
        NotFoundError,
        ConflictError,
        InvalidRequestError,
    )
    assert isinstance(exc, FinalError) is final
    assert len(ayo_fake.api_calls) == 1  # nothing is retried inside the client
    if body is not None:
        assert body["message"] in str(exc)
        assert f"responseCode={body['responseCode']}" in str(exc)
        assert gateway is not None
        assert f"gatewayCode={gateway.name}" in str(exc)
    else:
        assert f"HTTP {status}" in str(exc)


async def test_decline_carries_codes_and_provider_details(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    ayo_fake.api = lambda request: ayo_fake.json(400, error_body("4005422", "Insufficient funds"))
    with pytest.raises(DeclinedError) as info:
        await ayo_client.create_charge(pay(), correlation_id=CID)
    exc = info.value
    assert exc.gateway_code is GatewayCode.INSUFFICIENT_FUNDS
    assert exc.response_code == "4005422"
    assert exc.message == "Insufficient funds (022: detail)"
    assert exc.args == ("Insufficient funds (022: detail)",)


async def test_timed_out_in_a_success_body_is_transient(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    ayo_fake.api = lambda request: ayo_fake.json(
        200, ayo_fake.envelope(200, "54", "33", invoiceNumber="INV-1", status="FAILED")
    )
    with pytest.raises(TransientError) as info:
        await ayo_client.create_charge(pay(), correlation_id=CID)
    assert info.value.gateway_code is GatewayCode.TIMED_OUT
    assert info.value.response_code == "2005433"
    assert_context(info.value)


async def test_status_lookup_errors_carry_the_lookup_transaction_id(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    ayo_fake.api = lambda request: ayo_fake.json(404, error_body("4045535", "Unknown payment"))
    with pytest.raises(NotFoundError) as info:
        await status_lookup(ayo_client)
    assert_context(info.value, STATUS_TID)
    assert info.value.operation == "payment_status"


# --- transport failures ---------------------------------------------------------------------


def raising(exc: type[httpx.TransportError]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    return handler


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError, TransientError),
        (httpx.ConnectTimeout, TransientError),
        (httpx.PoolTimeout, TransientError),
        (httpx.ReadTimeout, AmbiguousError),
        (httpx.RemoteProtocolError, AmbiguousError),
        (httpx.ReadError, AmbiguousError),
        (httpx.WriteTimeout, AmbiguousError),
    ],
)
async def test_post_transport_failures(
    ayo_client: AyoconnectClient,
    ayo_fake: FakeAyoconnect,
    exc: type[httpx.TransportError],
    expected: type[AyoconnectError],
) -> None:
    ayo_fake.api = raising(exc)
    with pytest.raises(AyoconnectError) as info:
        await ayo_client.create_charge(pay(), correlation_id=CID)
    assert type(info.value) is expected
    assert not isinstance(info.value, FinalError)
    assert exc.__name__ in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.http_status is None
    assert_context(info.value)
    assert len(ayo_fake.api_calls) == 1


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError]
)
async def test_get_transport_failures_are_transient(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect, exc: type[httpx.TransportError]
) -> None:
    ayo_fake.api = raising(exc)
    with pytest.raises(TransientError) as info:
        await status_lookup(ayo_client)
    assert exc.__name__ in str(info.value)
    assert_context(info.value, STATUS_TID)


# --- answers that break the contract -------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fields"),
    [
        (b'{"code": 201, "responseCode": "2015401", "message": "ok"}', "invoiceNumber, status"),
        (
            b'{"code": 201, "responseCode": "2015401", "message": "ok", '
            b'"invoiceNumber": "INV-1", "status": "MAYBE"}',
            "status",
        ),
        (b"<html>gateway</html>", ""),
        (b"", ""),
    ],
)
async def test_malformed_success_body_is_invalid_request(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect, content: bytes, fields: str
) -> None:
    ayo_fake.api = lambda request: httpx.Response(201, content=content)
    with pytest.raises(InvalidRequestError) as info:
        await ayo_client.create_charge(pay(), correlation_id=CID)
    assert f"(fields: {fields})" in str(info.value)
    assert info.value.http_status == 201
    assert_context(info.value)


def test_error_tree() -> None:
    for final in (DeclinedError, RuleViolationError, NotFoundError, ConflictError):
        assert issubclass(final, FinalError)
    assert issubclass(InvalidRequestError, FinalError)
    for other in (TransientError, AmbiguousError, AuthenticationError):
        assert not issubclass(other, FinalError)
        assert issubclass(other, AyoconnectError)


def test_error_str_lists_its_context() -> None:
    exc = DeclinedError(
        "Insufficient funds",
        correlation_id=CID,
        transaction_id=TID,
        http_status=400,
        response_code="4005422",
        gateway_code=GatewayCode.INSUFFICIENT_FUNDS,
        operation="create_charge",
    )
    assert str(exc) == (
        "Insufficient funds operation=create_charge responseCode=4005422 "
        f"gatewayCode=INSUFFICIENT_FUNDS transactionId={TID} correlationId={CID}"
    )
    assert str(AyoconnectError("bare")) == "bare"
