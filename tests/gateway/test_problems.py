"""Every error the gateway answers is an RFC 9457 problem (``application/problem+json``): type,
title, status, detail, instance, and every invalid field in ``errors``, never a value sent.

The gateway runs in this process (``httpx.ASGITransport``) on a ``KartuClient`` that never
reaches Temporal: bad input is refused before any call, and Kartu's own errors come from a
client whose reads raise them. The same shapes on the real stack: test_rest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from gateway import GatewaySettings, create_app
from starter.client import (
    ActionRefused,
    IdempotencyConflict,
    KartuClient,
    KartuError,
    KartuTimeout,
    KartuUnavailable,
    PaymentNotFound,
)
from workflows.models import PaymentState, PaymentStatus

API_KEY = "problems-test-api-key-0123456789"
AUTH = {"X-API-Key": API_KEY}
PROBLEM = "application/problem+json"
PAN = "4111111111111111"
TOKEN = "T0k3n" * 8  # 40 letters and digits: a card token's shape


class RaisingKartu(KartuClient):
    """Temporal never reached: every payment read raises ``error``."""

    def __init__(self) -> None:
        temporal: Any = SimpleNamespace(data_converter=pydantic_data_converter)
        super().__init__(temporal, task_queue="never-used")
        self.error: Exception = PaymentNotFound("no payment p_1")

    async def payment_status(self, payment_id: str) -> PaymentState:
        raise self.error


@pytest.fixture
def kartu() -> RaisingKartu:
    return RaisingKartu()


@pytest.fixture
async def http(kartu: RaisingKartu) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(kartu, GatewaySettings(api_key=API_KEY, port=0))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client


def problem(answer: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["type"] == kind and body["title"]
    assert body["error"] == body["detail"]  # the earlier shape's member, kept
    return body


def by_field(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["field"]: e for e in body["errors"]}


def payment(**change: Any) -> dict[str, Any]:
    body = {
        "payment_id": "p_1",
        "customer_id": "CUST000001",
        "amount": "150000.00",
        "card_token": TOKEN,
        "redirect_url": "https://merchant.example/done",
    }
    body.update(change)
    return {k: v for k, v in body.items() if v is not None}


async def test_every_invalid_field_is_listed(http: httpx.AsyncClient):
    body = payment(amount=1.5, customer_id="x", redirect_url=None, flow="later", surprise=1)
    answer = await http.post("/payments", json=body, headers=AUTH)
    found = problem(answer, 422, "urn:kartu:problem:invalid-request")
    errors = by_field(found)
    assert set(errors) == {"amount", "customer_id", "redirect_url", "flow", "surprise"}
    assert errors["amount"] == {
        "location": "body",
        "field": "amount",
        "pointer": "#/amount",
        "detail": "Input should be a valid string",
        "code": "string_type",
    }
    assert errors["redirect_url"]["code"] == "missing"
    assert found["instance"] == "/payments"
    assert found["field"] == found["errors"][0]["field"]
    for name in errors:
        assert name in found["detail"]


async def test_no_value_sent_is_echoed(http: httpx.AsyncClient):
    body = payment(card_token=PAN, customer_id=PAN + "x", amount=PAN, **{PAN: "card"})
    answer = await http.post("/payments", json=body, headers=AUTH)
    found = problem(answer, 422, "urn:kartu:problem:invalid-request")
    assert PAN not in answer.text
    # An unknown key that is no plain name (a card number) is not named either.
    assert "<unnamed>" in by_field(found)
    query = await http.get("/payments", params={"customer_id": PAN + "'x"}, headers=AUTH)
    assert PAN not in problem(query, 422, "urn:kartu:problem:invalid-request")["detail"]
    assert PAN not in query.text


async def test_where_each_error_is(http: httpx.AsyncClient):
    query = await http.get("/payments", params={"status": "MAYBE", "page_size": 0}, headers=AUTH)
    errors = by_field(problem(query, 422, "urn:kartu:problem:invalid-request"))
    assert {f: e["location"] for f, e in errors.items()} == {
        "status": "query",
        "page_size": "query",
    }
    assert all("pointer" not in e for e in errors.values())
    path = await http.get("/payments/has-hyphen", headers=AUTH)
    errors = by_field(problem(path, 422, "urn:kartu:problem:invalid-request"))
    assert errors["payment_id"]["location"] == "path"
    headers = {**AUTH, "Idempotency-Key": "k" * 201}
    header = await http.post("/payments", json=payment(), headers=headers)
    errors = by_field(problem(header, 422, "urn:kartu:problem:invalid-request"))
    assert errors["Idempotency-Key"]["location"] == "header"


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"{oops", "the body is not valid JSON"),
        (b"", "a JSON body is required"),
        (b"[1]", "the body must be a JSON object"),
    ],
)
async def test_an_unusable_body_is_400(http: httpx.AsyncClient, content: bytes, detail: str):
    headers = {**AUTH, "Content-Type": "application/json"}
    answer = await http.post("/payments", content=content, headers=headers)
    found = problem(answer, 400, "urn:kartu:problem:malformed-body")
    assert found["detail"] == detail
    assert [(e["field"], e["pointer"]) for e in found["errors"]] == [("body", "#")]


async def test_http_level_problems(http: httpx.AsyncClient):
    unauthorized = await http.get("/payments/p_1")
    assert problem(unauthorized, 401, "about:blank")["title"] == "Unauthorized"
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    assert problem(await http.get("/nowhere", headers=AUTH), 404, "about:blank")["errors"] == []
    wrong_method = await http.put("/payments", headers=AUTH)
    assert problem(wrong_method, 405, "about:blank")["title"] == "Method Not Allowed"
    big = {**payment(), "description": "x" * (65 * 1024)}
    too_large = await http.post("/payments", json=big, headers=AUTH)
    assert problem(too_large, 413, "about:blank")["instance"] == "/payments"


async def test_a_card_token_in_the_path_is_redacted(http: httpx.AsyncClient):
    answer = await http.delete(f"/cards/{TOKEN}", headers=AUTH)
    found = problem(answer, 422, "urn:kartu:problem:invalid-request")
    assert found["instance"] == "/cards/<redacted>"
    assert TOKEN not in answer.text


@pytest.mark.parametrize(
    ("error", "status", "kind", "extra"),
    [
        (PaymentNotFound("no payment p_1"), 404, "urn:kartu:problem:not-found", {}),
        (
            ActionRefused("payment is CAPTURED", PaymentStatus.CAPTURED),
            409,
            "urn:kartu:problem:action-refused",
            {"payment_status": "CAPTURED"},
        ),
        (
            IdempotencyConflict("payment p_1 already exists with another amount"),
            409,
            "urn:kartu:problem:idempotency-conflict",
            {"field": "payment_id"},
        ),
        (KartuTimeout("no answer"), 504, "urn:kartu:problem:timeout", {}),
        (KartuUnavailable("down"), 503, "urn:kartu:problem:temporal-unavailable", {}),
        (KartuError("a secret detail"), 500, "about:blank", {"detail": "internal error"}),
    ],
)
async def test_kartu_errors_are_problems(
    http: httpx.AsyncClient,
    kartu: RaisingKartu,
    error: Exception,
    status: int,
    kind: str,
    extra: dict[str, Any],
):
    kartu.error = error
    answer = await http.get("/payments/p_1", headers=AUTH)
    found = problem(answer, status, kind)
    assert found["instance"] == "/payments/p_1"
    for name, value in extra.items():
        assert found[name] == value
    if status == 503:
        assert int(answer.headers["retry-after"]) > 0
    assert "secret detail" not in answer.text


def test_the_openapi_declares_every_problem():
    app = create_app(RaisingKartu(), GatewaySettings(api_key=API_KEY))
    doc = app.openapi()
    assert "Problem" in doc["components"]["schemas"]
    assert (
        "urn:kartu:problem:idempotency-conflict"
        in doc["components"]["schemas"]["Problem"]["description"]
    )
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            for code, response in operation["responses"].items():
                if int(code) < 400 or (path, code) == ("/healthz", "503"):
                    continue
                assert set(response["content"]) == {PROBLEM}, (method, path, code)
                schema = response["content"][PROBLEM]["schema"]
                assert schema["$ref"] == "#/components/schemas/Problem", (method, path, code)
            if path.startswith(("/payments", "/cards", "/customers")):
                assert {"401", "422", "500", "503"} <= codes, (method, path)
            if method == "post" and path.startswith(("/payments", "/cards")):
                assert {"400", "413"} <= codes, (method, path)
            if "{payment_id}" in path or "{registration_id}" in path:
                assert "404" in codes, (method, path)
    created = ["/payments", "/payments/{payment_id}/refund", "/cards/registrations"]
    for path in created:
        responses = doc["paths"][path]["post"]["responses"]
        assert "200" not in responses and "Location" in responses["201"]["headers"], path
    assert "503" in doc["paths"]["/healthz"]["get"]["responses"]
