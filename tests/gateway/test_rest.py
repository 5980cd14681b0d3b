"""The REST API on the real stack: happy paths, API key, Idempotency-Key, errors, OpenAPI.
Problem shapes in detail: test_problems.py; pages: test_pagination.py; keys:
test_idempotency_keys.py."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from sandbox.customer import authenticate_3ds, register_card
from tests.history_checks import woken_by_signal
from tests.kartu_stack import API_KEY, CHALLENGE_CARD, FRICTIONLESS_CARD, Stack, new_customer_id

AUTH = {"X-API-Key": API_KEY}
REDIRECT = "https://merchant.example/pay/done"
PROBLEM = "application/problem+json"


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    """The answer's problem body, after checking it is one with this status."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body["errors"]]


async def payment_body(stack: Stack, **change: Any) -> dict[str, Any]:
    return {
        "customer_id": new_customer_id(),
        "amount": "150000.00",
        "encrypted_card": await stack.encrypted_card(),
        "redirect_url": REDIRECT,
        **change,
    }


async def test_openapi_is_served(http: httpx.AsyncClient):
    answer = await http.get("/openapi.json")
    assert answer.status_code == 200
    doc = answer.json()
    paths = doc["paths"]
    for path in (
        "/payments",
        "/payments/{payment_id}",
        "/payments/{payment_id}/capture",
        "/payments/{payment_id}/void",
        "/payments/{payment_id}/refund",
        "/payments/{payment_id}/provider",
        "/cards/registrations",
        "/cards/registrations/{registration_id}",
        "/customers/{customer_id}/cards",
        "/cards/{card_token}",
        "/callbacks/ayoconnect",
        "/callbacks/unmatched",
        "/healthz",
    ):
        assert path in paths, path
    schemas = doc["components"]["schemas"]
    for model in ("PaymentCreate", "PaymentOutcome", "PaymentState", "ActionResult", "Problem"):
        assert model in schemas, model
    post = paths["/payments"]["post"]
    assert post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PaymentOutcome"
    )
    assert "Location" in post["responses"]["201"]["headers"]
    assert post["responses"]["409"]["content"][PROBLEM]["schema"]["$ref"].endswith("/Problem")
    assert "Idempotency-Key" in [p["name"] for p in post["parameters"]]
    assert {"APIKeyHeader", "HTTPBearer"} <= set(doc["components"]["securitySchemes"])
    callback = paths["/callbacks/ayoconnect"]["post"]["requestBody"]["content"]
    refs = {ref["$ref"] for ref in callback["application/json"]["schema"]["oneOf"]}
    assert refs == {"#/components/schemas/BindingCallback", "#/components/schemas/PaymentCallback"}
    assert "BindingCallback" in schemas and "PaymentCallback" in schemas


async def test_healthz(http: httpx.AsyncClient):
    answer = await http.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok", "temporal": True}


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "wrong-key-wrong-key"}, {"Authorization": "Bearer nope-nope-nope-nope"}],
)
async def test_rest_needs_the_api_key(
    stack: Stack, http: httpx.AsyncClient, key: str, headers: dict[str, str]
):
    answer = await http.post("/payments", json=await payment_body(stack, payment_id=key))
    assert problem(answer, 401)["detail"] == "missing or invalid API key"
    answer = await http.post(
        "/payments", json=await payment_body(stack, payment_id=key), headers=headers
    )
    assert answer.status_code == 401
    assert not await stack.workflow_exists(f"payment-{key}")
    assert (await http.get(f"/payments/{key}", headers=headers)).status_code == 401


async def test_pay_and_read(stack: Stack, http: httpx.AsyncClient, key: str):
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    answer = await http.post(
        "/payments", json=await payment_body(stack, payment_id=key), headers=bearer
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == f"/payments/{key}"
    outcome = answer.json()
    assert outcome["status"] == "PAID" and outcome["payment_id"] == key
    state = (await http.get(f"/payments/{key}", headers=AUTH)).json()
    assert state["status"] == "PAID" and state["amount"] == "150000.00"


async def test_refunded_payment_and_the_providers_view(
    stack: Stack, http: httpx.AsyncClient, key: str
):
    body = await payment_body(stack, payment_id=key, amount="88000.00")
    assert (await http.post("/payments", json=body, headers=AUTH)).json()["status"] == "PAID"
    both = (await http.get(f"/payments/{key}/provider", headers=AUTH)).json()
    assert both["kartu"]["status"] == "PAID"
    assert both["provider"]["outcome"] == "found"
    assert both["provider"]["payment"]["status"] == "SUCCESS"
    assert both["provider"]["payment"]["amount"] == "88000.00"

    refund = await http.post(f"/payments/{key}/refund", json={"reason": "returned"}, headers=AUTH)
    assert refund.json()["status"] == "REFUNDED"
    state = (await http.get(f"/payments/{key}", headers=AUTH)).json()
    assert state["status"] == "REFUNDED" and state["refund_reason"] == "returned"
    assert state["refunded_amount"] == "88000.00" and state["refunded_at"]
    assert state["history"][-1]["to_status"] == "REFUNDED"
    both = (await http.get(f"/payments/{key}/provider", headers=AUTH)).json()
    assert both["kartu"]["status"] == "REFUNDED"
    assert both["provider"]["payment"]["status"] == "REFUNDED"

    unknown = await http.get(f"/payments/{new_customer_id()}/provider", headers=AUTH)
    assert problem(unknown, 404)["type"] == "urn:kartu:problem:not-found"
    assert (await http.get(f"/payments/{key}/provider")).status_code == 401


async def test_idempotency_key(stack: Stack, http: httpx.AsyncClient, key: str):
    body = await payment_body(stack)
    headers = {**AUTH, "Idempotency-Key": key}
    first = await http.post("/payments", json=body, headers=headers)
    again = await http.post("/payments", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and first.json()["payment_id"] == key
    # Another amount under the same key: a conflict, not a second payment.
    other = await http.post("/payments", json={**body, "amount": "1.00"}, headers=headers)
    conflict = problem(other, 409)
    assert conflict["type"] == "urn:kartu:problem:idempotency-conflict"
    assert conflict["field"] == "payment_id"


async def test_idempotency_key_must_match_the_payment_id(
    stack: Stack, http: httpx.AsyncClient, key: str
):
    body = await payment_body(stack, payment_id=key)
    answer = await http.post("/payments", json=body, headers={**AUTH, "Idempotency-Key": "other"})
    mismatch = problem(answer, 400)
    assert mismatch["field"] == "payment_id"
    assert fields(mismatch) == ["payment_id", "Idempotency-Key"]
    body.pop("payment_id")
    missing = await http.post("/payments", json=body, headers=AUTH)
    assert problem(missing, 422)["field"] == "payment_id"
    unusable = await http.post(
        "/payments", json=body, headers={**AUTH, "Idempotency-Key": "a-uuid-with-hyphens"}
    )
    unusable_key = problem(unusable, 422)
    assert unusable_key["field"] == "Idempotency-Key"
    assert unusable_key["errors"][0]["location"] == "header"
    assert not await stack.workflow_exists(f"payment-{key}")


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"amount": 150000.5}, 422, "amount"),
        ({"amount": "1.234"}, 422, "amount"),
        ({"customer_id": "x"}, 422, "customer_id"),
        ({"flow": "later"}, 422, "flow"),
        ({"card_token": "A" * 40}, 422, "card_token"),  # and encrypted_card: one only
        ({"encrypted_card": None}, 422, "card_token"),
        ({"redirect_url": "javascript:alert(1)"}, 422, "redirect_url"),
        ({"surprise": 1}, 422, "surprise"),
        ({"deadline": "2030-01-01T00:00:00"}, 422, "deadline"),
    ],
)
async def test_bad_payment_body(
    stack: Stack, http: httpx.AsyncClient, key: str, change: dict[str, Any], status: int, field: str
):
    body = await payment_body(stack, payment_id=key, **change)
    answer = await http.post("/payments", json=body, headers=AUTH)
    assert field in fields(problem(answer, status))
    assert "AAAAAAAA" not in answer.text
    assert not await stack.workflow_exists(f"payment-{key}")


async def test_malformed_bodies(http: httpx.AsyncClient, key: str):
    headers = {**AUTH, "Content-Type": "application/json"}
    bad = await http.post("/payments", content=b"{oops", headers=headers)
    assert problem(bad, 400)["detail"] == "the body is not valid JSON"
    empty = await http.post("/payments", headers=AUTH)
    assert problem(empty, 400)["type"] == "urn:kartu:problem:malformed-body"
    array = await http.post("/payments", json=[1], headers=AUTH)
    assert problem(array, 400)["detail"] == "the body must be a JSON object"
    assert fields(problem(await http.get("/payments/has-hyphen", headers=AUTH), 422)) == [
        "payment_id"
    ]
    unknown = problem(await http.get(f"/payments/{key}", headers=AUTH), 404)
    assert unknown["detail"] == f"no payment {key}" and unknown["instance"] == f"/payments/{key}"
    problem(await http.post(f"/payments/{key}/capture", headers=AUTH), 404)
    nowhere = problem(await http.get("/nowhere", headers=AUTH), 404)
    assert nowhere["type"] == "about:blank" and nowhere["detail"] == "not found"


async def test_auth_capture_over_rest(stack: Stack, http: httpx.AsyncClient, key: str):
    body = await payment_body(stack, payment_id=key, flow="auth_capture", amount="500000")
    assert (await http.post("/payments", json=body, headers=AUTH)).json()["status"] == "AUTHORIZED"
    capture = {"amount": "450000.00", "requested_by": "ops-dashboard"}
    headers = {**AUTH, "Idempotency-Key": "capture-1"}
    first = await http.post(f"/payments/{key}/capture", json=capture, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "outcome": "captured",
        "reason": None,
        "status": "CAPTURED",
        "amount": "450000.00",
    }
    retried = await http.post(f"/payments/{key}/capture", json=capture, headers=headers)
    assert retried.status_code == 200 and retried.json() == first.json()
    other = await http.post(f"/payments/{key}/capture", headers={**AUTH, "Idempotency-Key": "c2"})
    refused = problem(other, 409)
    assert refused["type"] == "urn:kartu:problem:action-refused"
    assert refused["payment_status"] == "CAPTURED"
    refund = await http.post(f"/payments/{key}/refund", json={"reason": "returned"}, headers=AUTH)
    assert refund.status_code == 201 and refund.json()["status"] == "REFUNDED"
    assert refund.headers["location"] == f"/payments/{key}/refund"
    assert refund.json()["amount"] == "450000.00"
    again = await http.post(f"/payments/{key}/refund", headers=AUTH)
    assert again.json() == refund.json()
    assert (await http.get(f"/payments/{key}/refund", headers=AUTH)).json() == refund.json()


async def test_void_over_rest(stack: Stack, http: httpx.AsyncClient, key: str):
    body = await payment_body(stack, payment_id=key, flow="auth_capture")
    await http.post("/payments", json=body, headers=AUTH)
    void = await http.post(f"/payments/{key}/void", json={"reason": "out of stock"}, headers=AUTH)
    assert void.status_code == 200 and void.json()["outcome"] == "voided"
    again = await http.post(f"/payments/{key}/void", headers=AUTH)
    assert problem(again, 409)["payment_status"] == "VOIDED"
    refund = await http.post(f"/payments/{key}/refund", headers=AUTH)
    assert problem(refund, 409)["payment_status"] == "VOIDED"


async def test_3ds_over_rest(stack: Stack, http: httpx.AsyncClient, key: str):
    body = await payment_body(
        stack, payment_id=key, encrypted_card=await stack.encrypted_card(CHALLENGE_CARD)
    )
    outcome = (await http.post("/payments", json=body, headers=AUTH)).json()
    assert outcome["status"] == "CHALLENGE" and outcome["authentication_url"]
    await authenticate_3ds(outcome["authentication_url"])
    for _ in range(600):  # up to 30 s on a loaded machine
        state = (await http.get(f"/payments/{key}", headers=AUTH)).json()
        if state["status"] != "CHALLENGE":
            break
        await asyncio.sleep(0.05)
    assert state["status"] == "PAID"
    # The callback woke the workflow: the task that saw its signal started the look-up.
    handle = stack.client.get_workflow_handle(f"payment-{key}")
    assert await woken_by_signal(handle, "payment_callback", "payment_status")


async def test_find_payments_over_rest(stack: Stack, http: httpx.AsyncClient, key: str):
    body = await payment_body(stack, payment_id=key, flow="auth_capture")
    await http.post("/payments", json=body, headers=AUTH)
    params = {
        "customer_id": body["customer_id"],
        "status": "AUTHORIZED",
        "expiring_before": "2999-01-01T00:00:00Z",
        "flow": "auth_capture",
    }
    for _ in range(50):
        page = (await http.get("/payments", params=params, headers=AUTH)).json()
        if page["payments"]:
            break
        await asyncio.sleep(0.1)
    assert [p["payment_id"] for p in page["payments"]] == [key]
    assert page.get("next_page_token") is None
    bad = await http.get("/payments", params={"status": "MAYBE"}, headers=AUTH)
    assert fields(problem(bad, 422)) == ["status"]


async def test_cards_over_rest(stack: Stack, http: httpx.AsyncClient, key: str):
    registration = {
        "name": "Dewi",
        "email": "dewi@example.com",
        "phone_number": "6281377778888",
        "redirect_url": "https://merchant.example/cards",
    }
    headers = {**AUTH, "Idempotency-Key": key}
    started = await http.post("/cards/registrations", json=registration, headers=headers)
    assert started.status_code == 201, started.text
    assert started.headers["location"] == f"/cards/registrations/{key}"
    assert started.json()["registration_id"] == key
    again = await http.post("/cards/registrations", json=registration, headers=headers)
    assert again.json() == started.json()
    await register_card(started.json()["webview"]["url"], card_number=FRICTIONLESS_CARD)
    for _ in range(100):
        state = (await http.get(f"/cards/registrations/{key}", headers=AUTH)).json()
        if state["status"] != "PENDING":
            break
        await asyncio.sleep(0.05)
    assert state["status"] == "REGISTERED"
    token, customer = state["card_token"], state["customer_id"]

    for _ in range(50):
        cards = (await http.get(f"/customers/{customer}/cards", headers=AUTH)).json()["cards"]
        if cards:
            break
        await asyncio.sleep(0.1)
    assert [c["card_token"] for c in cards] == [token]

    unbound = await http.delete(f"/cards/{token}", params={"customer_id": customer}, headers=AUTH)
    assert unbound.status_code == 200 and unbound.json()["status"] == "UNBOUND"
    missing_customer = await http.delete(f"/cards/{token}", headers=AUTH)
    assert fields(problem(missing_customer, 422)) == ["customer_id"]
    assert token not in missing_customer.text  # the problem's instance says /cards/<redacted>
