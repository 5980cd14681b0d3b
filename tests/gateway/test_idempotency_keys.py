"""``Idempotency-Key`` on every POST that starts or moves money (and on the unbind): the same
request again gets the same answer and does nothing twice; another request under the key is a
409 problem naming the fields that differ, never their values. Durable: a second gateway app,
sharing nothing with the first but Temporal (a restarted gateway, another replica), answers the
same, because the records are the workflows' own histories (``gateway/idempotency.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway import create_app
from gateway.errors import ApiError
from gateway.idempotency import same_refund, same_unbind
from sandbox.customer import register_card
from tests.kartu_stack import API_KEY, FRICTIONLESS_CARD, Stack, new_customer_id
from workflows.models import RefundState, UnbindState

AUTH = {"X-API-Key": API_KEY}
REDIRECT = "https://merchant.example/pay/done"
CONFLICT = "urn:kartu:problem:idempotency-conflict"


@pytest.fixture
async def restarted(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """Another gateway app on the same Temporal: no memory shared with the stack's."""
    app = create_app(stack.kartu, stack.gateway_settings, ayoconnect_settings=stack.ayoconnect)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://restarted.test", headers=AUTH, timeout=30
    ) as client:
        yield client


async def payment_body(stack: Stack, **change: Any) -> dict[str, Any]:
    return {
        "customer_id": new_customer_id(),
        "amount": "150000.00",
        "encrypted_card": await stack.encrypted_card(),
        "redirect_url": REDIRECT,
        **change,
    }


def conflict(answer: httpx.Response, *fields: str) -> None:
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == CONFLICT
    assert [e["field"] for e in problem["errors"]] == list(fields)


async def history_length(stack: Stack, workflow_id: str) -> int:
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    return len(history.events)


async def test_a_payment_is_started_once_per_key(
    stack: Stack, http: httpx.AsyncClient, restarted: httpx.AsyncClient, key: str
):
    body = await payment_body(stack, description="order 1")
    headers = {**AUTH, "Idempotency-Key": key}
    first = await http.post("/payments", json=body, headers=headers)
    assert first.status_code == 201, first.text
    events = await history_length(stack, f"payment-{key}")
    again = await restarted.post("/payments", json=body, headers={"Idempotency-Key": key})
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["location"] == f"/payments/{key}"
    # Fields the workflow's own check does not cover, each told apart, values never shown.
    other = {**body, "description": "order 2", "redirect_url": REDIRECT + "?again"}
    answer = await restarted.post("/payments", json=other, headers={"Idempotency-Key": key})
    conflict(answer, "redirect_url", "description")
    assert "order 2" not in answer.text and "?again" not in answer.text
    card = await stack.encrypted_card()  # the same card, encrypted again: another body
    answer = await http.post("/payments", json={**body, "encrypted_card": card}, headers=headers)
    conflict(answer, "encrypted_card")
    assert card not in answer.text
    # Nothing was done for the refused ones.
    assert await history_length(stack, f"payment-{key}") == events
    state = (await http.get(f"/payments/{key}", headers=AUTH)).json()
    assert state["status"] == "PAID" and state["amount"] == "150000.00"


async def test_a_capture_is_done_once_per_key(
    stack: Stack, http: httpx.AsyncClient, restarted: httpx.AsyncClient, key: str
):
    body = await payment_body(stack, payment_id=key, flow="auth_capture", amount="500000")
    assert (await http.post("/payments", json=body, headers=AUTH)).status_code == 201
    headers = {**AUTH, "Idempotency-Key": "cap-1"}
    capture = {"amount": "400000.00", "requested_by": "ops"}
    first = await http.post(f"/payments/{key}/capture", json=capture, headers=headers)
    assert first.status_code == 200 and first.json()["outcome"] == "captured", first.text
    again = await restarted.post(
        f"/payments/{key}/capture", json=capture, headers={"Idempotency-Key": "cap-1"}
    )
    assert (again.status_code, again.json()) == (200, first.json())
    more = await restarted.post(
        f"/payments/{key}/capture",
        json={**capture, "amount": "450000.00"},
        headers={"Idempotency-Key": "cap-1"},
    )
    conflict(more, "amount")
    assert "450000" not in more.text
    state = (await http.get(f"/payments/{key}", headers=AUTH)).json()
    assert state["captured_amount"] == "400000.00"
    assert [t["to_status"] for t in state["history"]].count("CAPTURED") == 1


async def test_a_void_is_done_once_per_key(
    stack: Stack, http: httpx.AsyncClient, restarted: httpx.AsyncClient, key: str
):
    body = await payment_body(stack, payment_id=key, flow="auth_capture")
    assert (await http.post("/payments", json=body, headers=AUTH)).status_code == 201
    headers = {"Idempotency-Key": "void-1"}
    first = await http.post(
        f"/payments/{key}/void", json={"reason": "out of stock"}, headers={**AUTH, **headers}
    )
    assert first.status_code == 200 and first.json()["outcome"] == "voided", first.text
    again = await restarted.post(
        f"/payments/{key}/void", json={"reason": "out of stock"}, headers=headers
    )
    assert (again.status_code, again.json()) == (200, first.json())
    other = await restarted.post(f"/payments/{key}/void", json={"reason": "fraud"}, headers=headers)
    conflict(other, "reason")
    # Without a key, a second void is a refusal by the payment's status, as before.
    refused = await restarted.post(f"/payments/{key}/void", json={"reason": "fraud"})
    assert refused.status_code == 409 and refused.json()["payment_status"] == "VOIDED"


async def test_a_refund_is_done_once_per_key(
    stack: Stack, http: httpx.AsyncClient, restarted: httpx.AsyncClient, key: str
):
    body = await payment_body(stack, payment_id=key)
    assert (await http.post("/payments", json=body, headers=AUTH)).status_code == 201
    headers = {"Idempotency-Key": "refund-1"}
    reason = {"reason": "returned"}
    first = await http.post(f"/payments/{key}/refund", json=reason, headers={**AUTH, **headers})
    assert first.status_code == 201 and first.json()["status"] == "REFUNDED", first.text
    again = await restarted.post(f"/payments/{key}/refund", json=reason, headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())
    other = await restarted.post(
        f"/payments/{key}/refund", json={"reason": "damaged"}, headers=headers
    )
    conflict(other, "reason")
    state = await stack.kartu.refund_status(key)
    assert state.attempt == 1 and state.reason == "returned"


async def test_a_registration_is_started_once_per_key(
    http: httpx.AsyncClient, restarted: httpx.AsyncClient, key: str
):
    registration = {
        "name": "Dewi",
        "email": "dewi@example.com",
        "phone_number": "6281377778888",
        "redirect_url": "https://merchant.example/cards",
    }
    headers = {"Idempotency-Key": key}
    first = await http.post("/cards/registrations", json=registration, headers={**AUTH, **headers})
    assert first.status_code == 201, first.text
    again = await restarted.post("/cards/registrations", json=registration, headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())
    other = {**registration, "email": "someone@example.com", "phone_number": "6281300000000"}
    answer = await restarted.post("/cards/registrations", json=other, headers=headers)
    conflict(answer, "email", "phone_number")
    assert "someone@" not in answer.text


async def test_an_unbind_is_done_once_per_key(stack: Stack, restarted: httpx.AsyncClient):
    card = await stack.register(FRICTIONLESS_CARD)
    params = {"customer_id": card.customer_id}
    headers = {"Idempotency-Key": "unbind-1"}
    first = await restarted.delete(f"/cards/{card.card_token}", params=params, headers=headers)
    assert first.status_code == 200 and first.json()["status"] == "UNBOUND", first.text
    again = await restarted.delete(f"/cards/{card.card_token}", params=params, headers=headers)
    assert (again.status_code, again.json()) == (200, first.json())


def test_refund_and_unbind_compare_with_what_they_hold():
    refund = RefundState(
        payment_id="p_1", workflow_id="refund-p_1", invoice_number="INV1", amount=1, reason="a"
    )
    same_refund(refund, "a")
    with pytest.raises(ApiError) as refused:
        same_refund(refund, "b")
    assert refused.value.status_code == 409 and refused.value.field == "reason"
    unbind = UnbindState(workflow_id="unbind-x", customer_id="CUST000001")
    same_unbind(unbind, "CUST000001")
    with pytest.raises(ApiError) as refused:
        same_unbind(unbind, "CUST000002")
    assert [e.location for e in refused.value.errors] == ["query"]


async def test_a_card_registered_with_the_key_binds_once(
    stack: Stack, http: httpx.AsyncClient, key: str
):
    """A retried registration after the customer finished: the same registration, one card."""
    registration = {
        "name": "Budi",
        "email": "budi@example.com",
        "phone_number": "6281234567890",
        "redirect_url": "https://merchant.example/cards",
    }
    headers = {**AUTH, "Idempotency-Key": key}
    started = await http.post("/cards/registrations", json=registration, headers=headers)
    await register_card(started.json()["webview"]["url"], card_number=FRICTIONLESS_CARD)
    await stack.kartu.wait_registration(key, timeout=15)
    again = await http.post("/cards/registrations", json=registration, headers=headers)
    assert again.status_code == 201, again.text
    assert again.json()["registration_id"] == key
