"""What the client puts on the wire: methods, paths, queries, headers, bodies."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import httpx
import pytest

from ayoconnect import AyoconnectClient, new_correlation_id, wire_timestamp
from ayoconnect.models import (
    CreateChargeRequest,
    Customer,
    GenerateWebviewRequest,
    Order,
    PaymentStatus,
    RefundRequest,
    UnbindRequest,
    VoidRequest,
)

if TYPE_CHECKING:
    from conftest import FakeAyoconnect, MakeClient

CID = "0123456789abcdef0123456789abcdef"
CUSTOMER = "CUST000001"
TOKEN = "Tk" + "9" * 38
BASE = "/api/v1/lab/mpgs/cards"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00$")


def pay_request(**overrides: Any) -> CreateChargeRequest:
    data: dict[str, Any] = {
        "transactionId": "wf-1-pay",
        "customerId": CUSTOMER,
        "operation": "PAY",
        "cardToken": TOKEN,
        "order": Order(id="ORD-1", amount=Decimal("150000"), description="Sepatu"),
        "redirectUrl": "https://shop.example/3ds",
    }
    return CreateChargeRequest(**(data | overrides))


def ok_answer(fake: FakeAyoconnect, **extra: Any) -> httpx.Response:
    return fake.json(200, fake.envelope(200, **extra))


def route(fake: FakeAyoconnect) -> Callable[[httpx.Request], httpx.Response]:
    """A valid answer for every card endpoint, chosen by path."""
    payment = {
        "invoiceNumber": "INV-1",
        "originalTransactionId": "wf-1-pay",
        "operation": "AUTHORIZE",
        "status": "AUTHORIZED",
        "amount": "150000.00",
        "authorizedAmount": "150000.00",
        "capturedAmount": "0",
    }
    card = {
        "cardToken": TOKEN,
        "maskedCard": "411111******1111",
        "brand": "VISA",
        "expiryMonth": "12",
        "expiryYear": "2030",
        "status": "ACTIVE",
    }
    answers: dict[str, dict[str, Any]] = {
        "/generate-webview": {
            "webview": {"url": "https://wv.example/1", "expiresAt": "2025-01-01T12:05:00+07:00"},
            "referenceNumber": "REF-1",
        },
        "/create-charge": {"invoiceNumber": "INV-1", "status": "SUCCESS"},
        "/charge": {"payment": payment},
        "/void": {"invoiceNumber": "INV-1", "status": "VOIDED"},
        "/refund": {"invoiceNumber": "INV-1", "status": "REFUNDED"},
        "/unbind": {"cardToken": TOKEN, "status": "DISABLED"},
        "/": {"customerId": CUSTOMER, "cards": [card]},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        suffix = request.url.path.removeprefix(BASE)
        return ok_answer(fake, **answers[suffix])

    return handler


def assert_card_headers(request: httpx.Request, token: str, merchant: str = "KRT001") -> None:
    h = request.headers
    assert h["Authorization"] == f"Bearer {token}"
    assert h["X-Correlation-ID"] == CID
    assert len(h["X-Correlation-ID"]) == 32
    assert h["X-Merchant-Code"] == merchant
    assert TIMESTAMP.match(h["X-Timestamp"])
    assert len(h["X-Timestamp"]) == 25
    assert h["Accept"] == "application/json"
    assert h["Content-Type"] == "application/json"


# --- helpers ---------------------------------------------------------------------------------


def test_new_correlation_id_is_32_lowercase_hex_and_unique() -> None:
    ids = {new_correlation_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_wire_timestamp_is_jakarta_time_without_milliseconds() -> None:
    moment = datetime(2025, 1, 31, 20, 30, 15, 999999, tzinfo=UTC)
    assert wire_timestamp(moment) == "2025-02-01T03:30:15+07:00"
    now = wire_timestamp()
    assert TIMESTAMP.match(now)
    assert len(now) == 25


# --- the token request -----------------------------------------------------------------------


async def test_token_request_is_a_form_post_with_grant_type_in_query(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    assert await ayo_client.access_token() == ayo_fake.token_value(1)
    (request,) = ayo_fake.requests
    assert request.method == "POST"
    assert request.url.path == "/v1/oauth/client_credential/accesstoken"
    assert dict(request.url.params) == {"grant_type": "client_credentials"}
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Accept"] == "application/json"
    assert parse_qs(request.content.decode()) == {
        "client_id": [ayo_fake.CLIENT_ID],
        "client_secret": [ayo_fake.SECRET],
    }
    assert "Authorization" not in request.headers


# --- POST operations -------------------------------------------------------------------------


async def test_create_charge_request_shape(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    ayo_fake.api = route(ayo_fake)
    answer = await ayo_client.create_charge(pay_request(), correlation_id=CID)
    assert answer.invoiceNumber == "INV-1"
    assert answer.status is PaymentStatus.SUCCESS
    (request,) = ayo_fake.api_calls
    assert request.method == "POST"
    assert request.url.path == "/api/v1/lab/mpgs/cards/create-charge"
    assert request.url.query == b""
    assert_card_headers(request, ayo_fake.token_value(1))
    assert json.loads(request.content) == {
        "transactionId": "wf-1-pay",
        "customerId": CUSTOMER,
        "operation": "PAY",
        "cardToken": TOKEN,
        "order": {
            "id": "ORD-1",
            "amount": "150000.00",
            "currency": "IDR",
            "description": "Sepatu",
        },
        "redirectUrl": "https://shop.example/3ds",
    }


async def test_capture_body_has_amount_string_and_no_nulls(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    ayo_fake.api = route(ayo_fake)
    capture = CreateChargeRequest(
        transactionId="wf-1-capture",
        customerId=CUSTOMER,
        operation="CAPTURE",
        invoiceNumber="INV-1",
        amount="180000.5",
    )
    await ayo_client.create_charge(capture, correlation_id=CID)
    raw = ayo_fake.api_calls[0].content.decode()
    assert "null" not in raw
    assert json.loads(raw) == {
        "transactionId": "wf-1-capture",
        "customerId": CUSTOMER,
        "operation": "CAPTURE",
        "invoiceNumber": "INV-1",
        "amount": "180000.50",
    }


def webview_request() -> GenerateWebviewRequest:
    return GenerateWebviewRequest(
        transactionId="wf-1-reg",
        customer=Customer(name="Budi", email="budi@example.co.id", phoneNumber="6281234567890"),
        redirectUrl="https://shop.example/ok",
        additionalInfo={"channel": "app"},
    )


Call = Callable[[AyoconnectClient], Awaitable[Any]]

POSTS: list[tuple[str, Call, dict[str, Any]]] = [
    (
        "/generate-webview",
        lambda c: c.generate_webview(webview_request(), correlation_id=CID),
        {
            "transactionId": "wf-1-reg",
            "customer": {
                "name": "Budi",
                "email": "budi@example.co.id",
                "phoneNumber": "6281234567890",
            },
            "redirectUrl": "https://shop.example/ok",
            "additionalInfo": {"channel": "app"},
        },
    ),
    (
        "/void",
        lambda c: c.void(
            VoidRequest(
                transactionId="wf-1-void",
                customerId=CUSTOMER,
                invoiceNumber="INV-1",
                reason="out of stock",
            ),
            correlation_id=CID,
        ),
        {
            "transactionId": "wf-1-void",
            "customerId": CUSTOMER,
            "invoiceNumber": "INV-1",
            "reason": "out of stock",
        },
    ),
    (
        "/refund",
        lambda c: c.refund(
            RefundRequest(
                transactionId="wf-1-refund",
                customerId=CUSTOMER,
                invoiceNumber="INV-1",
                amount=Decimal("150000.00"),
                reason="returned",
            ),
            correlation_id=CID,
        ),
        {
            "transactionId": "wf-1-refund",
            "customerId": CUSTOMER,
            "invoiceNumber": "INV-1",
            "amount": "150000.00",
            "reason": "returned",
        },
    ),
    (
        "/unbind",
        lambda c: c.unbind(
            UnbindRequest(transactionId="wf-1-unbind", customerId=CUSTOMER, cardToken=TOKEN),
            correlation_id=CID,
        ),
        {"transactionId": "wf-1-unbind", "customerId": CUSTOMER, "cardToken": TOKEN},
    ),
]


@pytest.mark.parametrize(("suffix", "call", "body"), POSTS, ids=[p[0] for p in POSTS])
async def test_post_operations(
    ayo_client: AyoconnectClient,
    ayo_fake: FakeAyoconnect,
    suffix: str,
    call: Call,
    body: dict[str, Any],
) -> None:
    ayo_fake.api = route(ayo_fake)
    answer = await call(ayo_client)
    assert answer.responseCode == "2005401"
    (request,) = ayo_fake.api_calls
    assert request.method == "POST"
    assert request.url.path == BASE + suffix
    assert_card_headers(request, ayo_fake.token_value(1))
    assert json.loads(request.content) == body


# --- GET operations --------------------------------------------------------------------------


async def test_payment_status_by_invoice(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    ayo_fake.api = route(ayo_fake)
    answer = await ayo_client.payment_status(
        transaction_id="wf-1-status-1",
        customer_id=CUSTOMER,
        correlation_id=CID,
        invoice_number="INV-1",
    )
    assert answer.payment.status is PaymentStatus.AUTHORIZED
    assert answer.payment.amount == Decimal("150000.00")
    (request,) = ayo_fake.api_calls
    assert request.method == "GET"
    assert request.url.path == "/api/v1/lab/mpgs/cards/charge"
    assert dict(request.url.params) == {
        "transactionId": "wf-1-status-1",
        "customerId": CUSTOMER,
        "invoiceNumber": "INV-1",
    }
    assert request.content == b""
    assert_card_headers(request, ayo_fake.token_value(1))


async def test_payment_status_by_original_transaction_id(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    ayo_fake.api = route(ayo_fake)
    await ayo_client.payment_status(
        transaction_id="wf-1-status-2",
        customer_id=CUSTOMER,
        correlation_id=CID,
        original_transaction_id="wf-1-pay",
    )
    (request,) = ayo_fake.api_calls
    assert dict(request.url.params) == {
        "transactionId": "wf-1-status-2",
        "customerId": CUSTOMER,
        "originalTransactionId": "wf-1-pay",
    }


async def test_list_cards(ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect) -> None:
    ayo_fake.api = route(ayo_fake)
    answer = await ayo_client.list_cards(
        transaction_id="wf-1-cards", customer_id=CUSTOMER, correlation_id=CID
    )
    assert [c.cardToken for c in answer.cards] == [TOKEN]
    assert answer.cards[0].status == "ACTIVE"
    (request,) = ayo_fake.api_calls
    assert request.method == "GET"
    assert request.url.path == "/api/v1/lab/mpgs/cards/"
    assert dict(request.url.params) == {"transactionId": "wf-1-cards", "customerId": CUSTOMER}
    assert_card_headers(request, ayo_fake.token_value(1))


# --- settings change the wire ---------------------------------------------------------------


async def test_settings_override_paths_and_header_names(
    make_client: MakeClient, ayo_fake: FakeAyoconnect
) -> None:
    client = make_client(
        token_path="/oauth/accesstoken",
        cards_base_path="/v2/cards/",
        create_charge_path="/charges",
        payment_status_path="/charges/status",
        correlation_id_header="X-Request-Id",
        merchant_code_header="X-Partner-Id",
        timestamp_header="X-Request-Time",
        merchant_code="ABC123",
    )
    ayo_fake.api = lambda request: ayo_fake.json(
        201, ayo_fake.envelope(201, invoiceNumber="INV-1", status="SUCCESS")
    )
    await client.create_charge(pay_request(), correlation_id=CID)
    token_call, charge_call = ayo_fake.requests
    assert token_call.url.path == "/oauth/accesstoken"
    assert charge_call.url.path == "/v2/cards/charges"
    h = charge_call.headers
    assert h["X-Request-Id"] == CID
    assert h["X-Partner-Id"] == "ABC123"
    assert TIMESTAMP.match(h["X-Request-Time"])
    for default in ("X-Correlation-ID", "X-Merchant-Code", "X-Timestamp"):
        assert default not in h
    # the status path moved too
    ayo_fake.api = route_status_anywhere(ayo_fake)
    await client.payment_status(
        transaction_id="wf-1-status",
        customer_id=CUSTOMER,
        correlation_id=CID,
        invoice_number="INV-1",
    )
    assert ayo_fake.api_calls[-1].url.path == "/v2/cards/charges/status"


def route_status_anywhere(fake: FakeAyoconnect) -> Callable[[httpx.Request], httpx.Response]:
    payment = {
        "invoiceNumber": "INV-1",
        "originalTransactionId": "wf-1-pay",
        "operation": "PAY",
        "status": "SUCCESS",
        "amount": "1.00",
    }
    return lambda request: ok_answer(fake, payment=payment)


# --- refused before anything is sent --------------------------------------------------------


BAD_CORRELATION_IDS = [
    "",
    "0123456789abcdef",
    "0123456789ABCDEF0123456789ABCDEF",
    "01234567-89ab-cdef-0123-456789abcdef",
    "0123456789abcdef0123456789abcdeg",
    CID + "0",
]


@pytest.mark.parametrize("bad", BAD_CORRELATION_IDS)
async def test_bad_correlation_id_is_refused_before_sending(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect, bad: str
) -> None:
    with pytest.raises(ValueError, match="correlation_id"):
        await ayo_client.create_charge(pay_request(), correlation_id=bad)
    with pytest.raises(ValueError, match="correlation_id"):
        await ayo_client.list_cards(
            transaction_id="wf-1-cards", customer_id=CUSTOMER, correlation_id=bad
        )
    assert ayo_fake.requests == []
    assert ayo_client.token_requests == 0


@pytest.mark.parametrize(
    ("transaction_id", "customer_id", "match"),
    [
        ("wf-1", "CUST1", "customerId"),
        ("wf-1", "C" * 17, "customerId"),
        ("wf-1", "CUST-00001", "customerId"),
        ("wf-1", "", "customerId"),
        ("", CUSTOMER, "transactionId"),
        ("t" * 33, CUSTOMER, "transactionId"),
    ],
)
async def test_bad_query_ids_are_refused_before_sending(
    ayo_client: AyoconnectClient,
    ayo_fake: FakeAyoconnect,
    transaction_id: str,
    customer_id: str,
    match: str,
) -> None:
    with pytest.raises(ValueError, match=match):
        await ayo_client.payment_status(
            transaction_id=transaction_id,
            customer_id=customer_id,
            correlation_id=CID,
            invoice_number="INV-1",
        )
    with pytest.raises(ValueError, match=match):
        await ayo_client.list_cards(
            transaction_id=transaction_id, customer_id=customer_id, correlation_id=CID
        )
    assert ayo_fake.requests == []


@pytest.mark.parametrize(
    "lookup",
    [{}, {"invoice_number": "INV-1", "original_transaction_id": "wf-1-pay"}],
    ids=["neither", "both"],
)
async def test_status_needs_exactly_one_lookup_key(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect, lookup: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await ayo_client.payment_status(
            transaction_id="wf-1-status", customer_id=CUSTOMER, correlation_id=CID, **lookup
        )
    assert ayo_fake.requests == []


@pytest.mark.parametrize(
    ("transaction_id", "customer_id"),
    [("wf 1/status", CUSTOMER), ("wf-1-status", "ÄÖÜäöüß1")],
    ids=["space-in-transaction-id", "non-ascii-customer-id"],
)
async def test_query_ids_follow_the_model_patterns(
    ayo_client: AyoconnectClient,
    ayo_fake: FakeAyoconnect,
    transaction_id: str,
    customer_id: str,
) -> None:
    ayo_fake.api = route(ayo_fake)
    with pytest.raises(ValueError):
        await ayo_client.list_cards(
            transaction_id=transaction_id, customer_id=customer_id, correlation_id=CID
        )
    assert ayo_fake.requests == []
