"""POST /callbacks/ayoconnect on the real stack: signed callbacks become signals, everything
else is refused before anything is touched, and nothing signed is lost."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest

from ayoconnect import callback_signature
from starter.client import KartuClient
from tests.history_checks import activity_answered_after_signal
from tests.kartu_stack import API_KEY, CALLBACK_PATH, Stack, new_customer_id, new_key
from workflows.models import PaymentState, PaymentStatus, RegistrationStatus

REDIRECT = "https://merchant.example/pay/done"


@pytest.fixture
async def authorized(stack: Stack, kartu: KartuClient, key: str) -> PaymentState:
    """A running AUTHORIZED payment whose own sandbox callback has already arrived."""
    await kartu.authorize(
        key,
        customer_id=new_customer_id(),
        amount="250000.00",
        redirect_url=REDIRECT,
        encrypted_card=await stack.encrypted_card(),
    )
    for _ in range(100):
        state = await kartu.payment_status(key)
        if state.callbacks_received >= 1:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError("the sandbox's callback never reached the workflow")


def payment_callback(state: PaymentState, **change: Any) -> dict[str, Any]:
    return {
        "type": "PAYMENT",
        "transactionId": f"{state.payment_id}-auth",
        "invoiceNumber": state.invoice_number,
        "operation": "AUTHORIZE",
        "status": "AUTHORIZED",
        "amount": "250000.00",
        "responseCode": "2005401",
        **change,
    }


async def post(
    http: httpx.AsyncClient, body: Any, signature: str | None, raw: bytes | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Authorization"] = signature
    # Indented: never byte-identical to the sandbox's own callback (which the gateway dedups).
    content = raw if raw is not None else json.dumps(body, indent=1).encode()
    return await http.post(CALLBACK_PATH, content=content, headers=headers)


async def test_signed_callback_signals_the_workflow(
    stack: Stack, http: httpx.AsyncClient, kartu: KartuClient, authorized: PaymentState
):
    answer = await post(http, payment_callback(authorized), stack.signature())
    assert answer.status_code == 200
    assert answer.json() == {"result": "delivered", "workflow_id": authorized.workflow_id}
    state = await kartu.payment_status(authorized.payment_id)
    assert state.callbacks_received == authorized.callbacks_received + 1
    assert state.status is PaymentStatus.AUTHORIZED  # a hint only: the status API decides
    assert state.ignored[-1].name == "payment_callback"


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "not-a-bcrypt-hash",
        "$2b$04$" + "A" * 53,
        callback_signature("another-secret", "KRT001", rounds=4),
        callback_signature("kartu-local-secret", "KRT002", rounds=4),
        "x" * 5000,
    ],
    # Named: a bcrypt hash has a random salt, and every xdist process must collect the same ids.
    ids=["none", "empty", "not-bcrypt", "bad-hash", "other-secret", "other-merchant", "huge"],
)
async def test_forged_callback_is_refused_and_touches_nothing(
    stack: Stack,
    http: httpx.AsyncClient,
    kartu: KartuClient,
    authorized: PaymentState,
    signature: str | None,
):
    unmatched_before = len(stack.app.state.callback_journal.unmatched)
    answer = await post(http, payment_callback(authorized, status="VOIDED"), signature)
    assert answer.status_code == 401
    assert "X-Authorization" in answer.json()["error"]
    state = await kartu.payment_status(authorized.payment_id)
    assert state.callbacks_received == authorized.callbacks_received
    assert state.ignored == authorized.ignored
    assert len(stack.app.state.callback_journal.unmatched) == unmatched_before


PAYMENT_FIELDS = ["transactionId", "invoiceNumber", "operation", "status", "amount", "responseCode"]


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        (b"{not json", ["body"]),
        (b"", ["body"]),
        (b"[1, 2]", ["body"]),
        (b'{"type": "PAYMENT"}', PAYMENT_FIELDS),  # every one, not only the first
        (b'{"type": "REFUND", "transactionId": "x-pay"}', ["type"]),
    ],
)
async def test_malformed_callback_is_refused_and_touches_nothing(
    stack: Stack,
    http: httpx.AsyncClient,
    kartu: KartuClient,
    authorized: PaymentState,
    raw: bytes,
    fields: list[str],
):
    answer = await post(http, None, stack.signature(), raw=raw)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "urn:kartu:problem:invalid-callback"
    assert [e["field"] for e in problem["errors"]] == fields
    assert "REFUND" not in answer.text  # what was sent is never echoed
    state = await kartu.payment_status(authorized.payment_id)
    assert state.callbacks_received == authorized.callbacks_received


async def test_bad_amount_in_callback_is_malformed(
    stack: Stack, http: httpx.AsyncClient, authorized: PaymentState
):
    answer = await post(http, payment_callback(authorized, amount=1.5), stack.signature())
    assert answer.status_code == 400 and answer.json()["field"] == "amount"
    assert answer.json()["errors"][0]["pointer"] == "#/amount"


async def test_duplicate_callback_is_acknowledged_once_delivered(
    stack: Stack, http: httpx.AsyncClient, kartu: KartuClient, authorized: PaymentState
):
    body = payment_callback(authorized, responseCode="2005402")
    first = await post(http, body, stack.signature())
    second = await post(http, body, stack.signature())
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["result"] == "delivered" and second.json()["result"] == "duplicate"
    state = await kartu.payment_status(authorized.payment_id)
    assert state.callbacks_received == authorized.callbacks_received + 1


async def test_callback_for_unknown_or_finished_payment_is_recorded(
    stack: Stack, http: httpx.AsyncClient, kartu: KartuClient, authorized: PaymentState
):
    unknown = payment_callback(authorized, transactionId=f"{new_key()}-pay", operation="PAY")
    answer = await post(http, unknown, stack.signature())
    assert answer.status_code == 202 and answer.json()["result"] == "unmatched"

    await kartu.void(authorized.payment_id)  # the workflow finishes
    late = payment_callback(authorized, status="VOIDED")
    answer = await post(http, late, stack.signature())
    # A late copy of what the closed payment already says: acknowledged, nothing to store.
    assert answer.status_code == 200 and answer.json()["result"] == "late"
    contradicting = payment_callback(authorized, status="CAPTURED")
    answer = await post(http, contradicting, stack.signature())
    assert answer.status_code == 202 and answer.json()["result"] == "unmatched"

    for transaction_id in ("no-route-here", "abc-zzz", "-pay", "x" * 80 + "\n-pay"):
        odd = payment_callback(authorized, transactionId=transaction_id)
        assert (await post(http, odd, stack.signature())).status_code == 202

    assert (await http.get("/callbacks/unmatched")).status_code == 401
    listed = await http.get("/callbacks/unmatched", headers={"X-API-Key": API_KEY})
    assert listed.status_code == 200
    entries = listed.json()["callbacks"]  # newest first
    mine = [e for e in entries if e["transaction_id"] == unknown["transactionId"]]
    assert mine and mine[0]["workflow_id"] == f"payment-{unknown['transactionId'][:-4]}"
    finished = [e for e in entries if e["workflow_id"] == authorized.workflow_id]
    assert finished and "closed as VOIDED" in finished[0]["reason"]
    assert all("\n" not in e["transaction_id"] and len(e["transaction_id"]) <= 64 for e in entries)


async def test_binding_callback_is_delivered_and_checked_with_the_cards_list(
    stack: Stack,
    http: httpx.AsyncClient,
    kartu: KartuClient,
    key: str,
    caplog: pytest.LogCaptureFixture,
):
    await kartu.register_card(
        key,
        name="Andi",
        email="andi@example.com",
        phone_number="6281211112222",
        redirect_url="https://merchant.example/cards",
    )
    token = "T0kenForGatewayTest" + "9" * 21
    body = {
        "type": "CARD_BINDING",
        "transactionId": f"{key}-reg",
        "referenceNumber": "REF123",
        "customerId": "CUSTGW0001",
        "cardToken": token,
        "maskedCard": "411111******1111",
        "brand": "VISA",
        "expiryMonth": "12",
        "expiryYear": "2030",
        "status": "ACTIVE",
        "responseCode": "2000101",
    }
    with caplog.at_level(logging.DEBUG):
        answer = await post(http, body, stack.signature())
        assert answer.status_code == 200 and answer.json()["result"] == "delivered"
        # The workflow checks the claim with the provider's cards list, then decides.
        handle = stack.client.get_workflow_handle(f"registration-{key}")
        deadline = asyncio.get_running_loop().time() + 30
        while not await activity_answered_after_signal(handle, "binding_callback", "list_cards"):
            assert asyncio.get_running_loop().time() < deadline, "the claim was never checked"
            await asyncio.sleep(0.05)
        state = await kartu.registration_status(key)
    # Signed but a hint: the provider lists no such card for that customer, so the card is not
    # registered on the callback's word (the webview session decides at its end).
    assert state.status is RegistrationStatus.PENDING and state.card_token is None
    assert token not in caplog.text


async def test_oversized_callback_is_refused_early(stack: Stack, http: httpx.AsyncClient):
    big = b'{"type": "PAYMENT", "pad": "' + b"x" * (64 * 1024) + b'"}'
    answer = await post(http, None, stack.signature(), raw=big)
    assert answer.status_code == 413
    unsigned = await post(http, None, None, raw=big)
    assert unsigned.status_code == 413


async def test_a_repeated_signature_costs_one_bcrypt_check(
    stack: Stack, http: httpx.AsyncClient, authorized: PaymentState
):
    verifier = stack.app.state.signature_verifier
    signature = stack.signature()
    before = verifier.checks
    answers = await asyncio.gather(
        *(
            post(http, payment_callback(authorized, responseCode=f"20054{n:02d}"), signature)
            for n in range(10, 16)
        )
    )
    assert [a.status_code for a in answers] == [200] * 6
    assert verifier.checks == before + 1
