"""Bad input never gets past the door: a 4xx with the contract's error body, never a 500, never
a changed ledger, never the caller's values echoed back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from ayoconnect.codes import parse_response_code
from ayoconnect.models import ErrorBody

SECRET_LOOKING = "4111111111111111XYZ"  # looks like a PAN: must never come back


async def _charge_body(wire: Any, receiver: Any) -> dict[str, Any]:
    binding = await wire.register(receiver)
    return {
        "transactionId": "tx-bad-input-1",
        "customerId": binding["customerId"],
        "operation": "PAY",
        "cardToken": binding["cardToken"],
        "order": {"id": "order-1", "amount": "150000.00", "currency": "IDR"},
    }


Case = Callable[[Any, dict[str, Any]], Awaitable[httpx.Response]]


async def _with_headers(wire: Any, body: dict[str, Any], **overrides: str | None) -> httpx.Response:
    return await wire.post("create_charge_path", body, headers=await wire.headers(**overrides))


def _mutated(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    copy = {**body, "order": dict(body["order"])}
    for key, value in changes.items():
        if key.startswith("order_"):
            copy["order"][key.removeprefix("order_")] = value
        elif value is None:
            copy.pop(key, None)
        else:
            copy[key] = value
    return copy


CASES: dict[str, tuple[int, Case]] = {
    "no authorization": (401, lambda w, b: _with_headers(w, b, Authorization=None)),
    "not a bearer": (401, lambda w, b: _with_headers(w, b, Authorization="Basic abc")),
    "unknown bearer": (401, lambda w, b: _with_headers(w, b, Authorization="Bearer " + "x" * 28)),
    "no correlation id": (400, lambda w, b: _with_headers(w, b, **{"X-Correlation-ID": None})),
    "short correlation id": (400, lambda w, b: _with_headers(w, b, **{"X-Correlation-ID": "ab"})),
    "no merchant code": (400, lambda w, b: _with_headers(w, b, **{"X-Merchant-Code": None})),
    "long merchant code": (400, lambda w, b: _with_headers(w, b, **{"X-Merchant-Code": "KRT0011"})),
    "other merchant": (401, lambda w, b: _with_headers(w, b, **{"X-Merchant-Code": "ZZZ999"})),
    "no timestamp": (400, lambda w, b: _with_headers(w, b, **{"X-Timestamp": None})),
    "timestamp in UTC": (
        400,
        lambda w, b: _with_headers(w, b, **{"X-Timestamp": "2025-01-01T00:00:00Z"}),
    ),
    "timestamp with millis": (
        400,
        lambda w, b: _with_headers(w, b, **{"X-Timestamp": "2025-01-01T00:00:00.123+07:00"}),
    ),
    "impossible timestamp": (
        400,
        lambda w, b: _with_headers(w, b, **{"X-Timestamp": "2025-13-01T00:00:00+07:00"}),
    ),
    "form body": (415, lambda w, b: _with_headers(w, b, **{"Content-Type": "text/plain"})),
    "malformed json": (400, lambda w, b: w.post("create_charge_path", '{"transactionId": ')),
    "json array": (400, lambda w, b: w.post("create_charge_path", "[1, 2]")),
    "deeply nested json": (400, lambda w, b: w.post("create_charge_path", "[" * 30000)),
    "not utf-8": (400, lambda w, b: w.post("create_charge_path", b'{"a": "\xff"}')),
    "too large": (413, lambda w, b: w.post("create_charge_path", "x" * 70000)),
    "NaN amount": (
        400,
        lambda w, b: w.post("create_charge_path", '{"order": {"amount": NaN}}'),
    ),
    "float amount": (
        400,
        lambda w, b: w.post("create_charge_path", _mutated(b, order_amount=150000.5)),
    ),
    "three decimals": (
        400,
        lambda w, b: w.post("create_charge_path", _mutated(b, order_amount="1.005")),
    ),
    "negative amount": (
        400,
        lambda w, b: w.post("create_charge_path", _mutated(b, order_amount="-5.00")),
    ),
    "other currency": (
        400,
        lambda w, b: w.post("create_charge_path", _mutated(b, order_currency="USD")),
    ),
    "token wrong length": (
        400,
        lambda w, b: w.post("create_charge_path", _mutated(b, cardToken=SECRET_LOOKING)),
    ),
    "token wrong type": (
        400,
        lambda w, b: w.post("create_charge_path", _mutated(b, cardToken=12345)),
    ),
    "unknown operation": (
        400,
        lambda w, b: w.post("create_charge_path", _mutated(b, operation="REVERSE")),
    ),
    "missing transaction id": (
        400,
        lambda w, b: w.post("create_charge_path", _mutated(b, transactionId=None)),
    ),
    "transaction id too long": (
        400,
        lambda w, b: w.post("create_charge_path", _mutated(b, transactionId="t" * 33)),
    ),
    "unknown field": (
        400,
        lambda w, b: w.post("create_charge_path", _mutated(b, pan=SECRET_LOOKING)),
    ),
    "token and encrypted card": (
        400,
        lambda w, b: w.post("create_charge_path", _mutated(b, encryptedCard="abc.def")),
    ),
    "undecryptable card": (
        400,
        lambda w, b: w.post(
            "create_charge_path", _mutated(b, cardToken=None, encryptedCard="a.b.c.d.e")
        ),
    ),
    "unknown token": (
        404,
        lambda w, b: w.post("create_charge_path", _mutated(b, cardToken="A" * 40)),
    ),
    "token of another customer": (
        404,
        lambda w, b: w.post("create_charge_path", _mutated(b, customerId="OTHER12345")),
    ),
    "capture unknown invoice": (
        404,
        lambda w, b: w.post(
            "create_charge_path",
            {
                "transactionId": "cap-1",
                "customerId": b["customerId"],
                "operation": "CAPTURE",
                "invoiceNumber": "INV-NOPE",
                "amount": "1.00",
            },
        ),
    ),
    "status without reference": (
        400,
        lambda w, b: w.get(
            "payment_status_path", {"transactionId": "s1", "customerId": "CUST0001"}
        ),
    ),
    "status with both references": (
        400,
        lambda w, b: w.get(
            "payment_status_path",
            {
                "transactionId": "s1",
                "customerId": "CUST0001",
                "invoiceNumber": "INV1",
                "originalTransactionId": "t1",
            },
        ),
    ),
    "status of unknown payment": (
        404,
        lambda w, b: w.get(
            "payment_status_path",
            {"transactionId": "s1", "customerId": b["customerId"], "invoiceNumber": "INV1"},
        ),
    ),
    "cards of unknown customer": (
        404,
        lambda w, b: w.get("cards_list_path", {"transactionId": "s1", "customerId": "NOBODY123"}),
    ),
    "cards with short customer id": (
        400,
        lambda w, b: w.get("cards_list_path", {"transactionId": "s1", "customerId": "abc"}),
    ),
    "unbind unknown token": (
        404,
        lambda w, b: w.post(
            "unbind_path",
            {"transactionId": "u1", "customerId": b["customerId"], "cardToken": "B" * 40},
        ),
    ),
    "void without reason": (
        400,
        lambda w, b: w.post(
            "void_path",
            {"transactionId": "v1", "customerId": b["customerId"], "invoiceNumber": "INV1"},
        ),
    ),
    "webview for unknown customer": (
        404,
        lambda w, b: w.post(
            "generate_webview_path",
            {
                "transactionId": "w1",
                "customer": {
                    "customerId": "NOBODY123",
                    "name": "X",
                    "email": "x@example.com",
                    "phoneNumber": "6281234567",
                },
                "redirectUrl": "https://merchant.example/done",
            },
        ),
    ),
    "webview with bad phone": (
        400,
        lambda w, b: w.post(
            "generate_webview_path",
            {
                "transactionId": "w1",
                "customer": {"name": "X", "email": "x@example.com", "phoneNumber": "0812"},
                "redirectUrl": "https://merchant.example/done",
            },
        ),
    ),
    "unknown route": (404, lambda w, b: w.http.get("/api/v1/lab/mpgs/cards/nope")),
    "wrong method": (405, lambda w, b: w.http.delete(w.path("void_path"))),
    "path without slash": (404, lambda w, b: w.http.get("/api/v1/lab/mpgs/cards")),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_input_is_refused_with_the_contract_body(
    name: str, wire: Any, receiver: Any, control: Any
) -> None:
    expected_status, send = CASES[name]
    body = await _charge_body(wire, receiver)
    before = await control.ledger()

    response = await send(wire, body)

    assert response.status_code == expected_status, response.text
    error = ErrorBody.model_validate_json(response.content)
    assert error.code == expected_status
    http_status, _, gateway = parse_response_code(error.responseCode)
    assert http_status == expected_status
    assert gateway is not None and gateway.name in ("UNSPECIFIED_FAILURE", "NOT_SUPPORTED")
    assert error.errors, "every refusal says why"
    assert SECRET_LOOKING not in response.text
    after = await control.ledger()
    for part in ("payments", "cards", "customers", "sessions", "callbacks"):
        assert after[part] == before[part], f"{name} changed the ledger's {part}"


async def test_validation_errors_name_the_field(wire: Any, receiver: Any) -> None:
    body = _mutated(await _charge_body(wire, receiver), cardToken=SECRET_LOOKING)
    response = await wire.post("create_charge_path", body)
    error = ErrorBody.model_validate_json(response.content)
    assert error.responseCode == "4005435"
    assert error.transactionId == body["transactionId"]
    assert [e.details for e in error.errors] == ["cardToken"]
    assert error.errors[0].code == "INVALID_FIELD"


async def test_header_errors_name_the_header(wire: Any) -> None:
    headers = await wire.headers(**{"X-Correlation-ID": None, "X-Timestamp": "yesterday"})
    response = await wire.post("void_path", {}, headers=headers)
    error = ErrorBody.model_validate_json(response.content)
    assert {e.details for e in error.errors} == {"X-Correlation-ID", "X-Timestamp"}
    assert {e.code for e in error.errors} == {"MISSING_HEADER", "INVALID_HEADER"}


async def test_fastapi_validation_is_overridden_too(wire: Any) -> None:
    response = await wire.http.post("/_sandbox/clock/advance", json={"seconds": "soon"})
    assert response.status_code == 400
    error = ErrorBody.model_validate_json(response.content)
    assert error.errors[0].details == "body.seconds"
    assert "soon" not in response.text


@pytest.mark.parametrize(
    ("params", "form", "status"),
    [
        ({"grant_type": "client_credentials"}, {"client_id": "kartu-local-client"}, 400),
        ({"grant_type": "password"}, None, 400),
        ({}, None, 400),
        (
            {"grant_type": "client_credentials"},
            {"client_id": "kartu-local-client", "client_secret": "wrong"},
            401,
        ),
        ({"grant_type": "client_credentials"}, {"client_id": "x", "client_secret": "y"}, 401),
    ],
)
async def test_token_endpoint_refusals(
    wire: Any, params: dict[str, str], form: dict[str, str] | None, status: int
) -> None:
    data = (
        form
        if form is not None
        else {
            "client_id": "kartu-local-client",
            "client_secret": "kartu-local-secret",
        }
    )
    response = await wire.http.post(wire.settings.token_path, params=params, data=data)
    assert response.status_code == status
    assert ErrorBody.model_validate_json(response.content).responseCode.startswith(str(status))


async def test_token_endpoint_wants_a_form(wire: Any) -> None:
    response = await wire.http.post(
        wire.settings.token_path,
        params={"grant_type": "client_credentials"},
        json={"client_id": "kartu-local-client", "client_secret": "kartu-local-secret"},
    )
    assert response.status_code == 415


async def test_token_shape(wire: Any) -> None:
    response = await wire.http.post(
        wire.settings.token_path,
        params={"grant_type": "client_credentials"},
        data={"client_id": "kartu-local-client", "client_secret": "kartu-local-secret"},
    )
    body = response.json()
    assert len(body["accessToken"]) == 28 and body["accessToken"].isalnum()
    assert body["expiresIn"] == "3599"
    assert body["tokenType"] == "BearerToken"
    assert body["clientId"] == "kartu-local-client"
    assert len(body["responseTime"]) == 25


async def test_expired_bearer_is_refused(wire: Any, control: Any) -> None:
    headers = await wire.headers()
    await control.advance_clock(3601)
    response = await wire.get(
        "cards_list_path", {"transactionId": "c1", "customerId": "CUST0001"}, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["responseCode"] == "4010335"
