"""KartuClient against the real stack: dev server, worker, sandbox, gateway for callbacks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sandbox.customer import authenticate_3ds
from starter.client import (
    ActionRefused,
    IdempotencyConflict,
    KartuClient,
    PaymentNotFound,
    RefundNotFound,
)
from tests.history_checks import woken_by_signal
from tests.kartu_stack import CHALLENGE_CARD, DECLINED_CARD, Stack, new_customer_id
from workflows.models import PaymentFlow, PaymentStatus, RefundStatus

REDIRECT = "https://merchant.example/pay/done"


async def _authorized(stack: Stack, kartu: KartuClient, key: str, amount: str = "250000.00"):
    outcome = await kartu.authorize(
        key,
        customer_id=new_customer_id(),
        amount=amount,
        redirect_url=REDIRECT,
        encrypted_card=await stack.encrypted_card(),
    )
    assert outcome.status is PaymentStatus.AUTHORIZED, outcome
    return outcome


async def test_pay_frictionless_is_paid_in_one_call(stack: Stack, kartu: KartuClient, key: str):
    card = await stack.registered_card()
    outcome = await kartu.pay(
        key,
        customer_id=card.customer_id,
        amount="150000.00",
        redirect_url=REDIRECT,
        card_token=card.card_token,
        description="order 1",
    )
    assert outcome.status is PaymentStatus.PAID
    assert outcome.payment_id == key and outcome.workflow_id == f"payment-{key}"
    assert outcome.invoice_number
    state = await kartu.payment_status(key)
    assert state.status is PaymentStatus.PAID and state.flow is PaymentFlow.DIRECT
    assert state.amount == Decimal("150000.00")


async def test_same_payment_id_is_the_same_payment(stack: Stack, kartu: KartuClient, key: str):
    card = await stack.registered_card()
    args = {
        "customer_id": card.customer_id,
        "amount": "99000",
        "redirect_url": REDIRECT,
        "card_token": card.card_token,
    }
    # Concurrent first calls, then one after the workflow has finished: one payment, one charge.
    first, second = await asyncio.gather(kartu.pay(key, **args), kartu.pay(key, **args))
    third = await kartu.pay(key, **args)
    assert first == second == third
    assert first.status is PaymentStatus.PAID
    assert stack.control is not None
    ledger = await stack.control.ledger()
    charges = [p for p in ledger["payments"] if p["originalTransactionId"] == f"{key}-pay"]
    assert len(charges) == 1


async def test_same_id_with_another_amount_is_a_conflict(
    stack: Stack, kartu: KartuClient, key: str
):
    card = await stack.registered_card()
    args = {
        "customer_id": card.customer_id,
        "redirect_url": REDIRECT,
        "card_token": card.card_token,
    }
    await kartu.pay(key, amount="1000.00", **args)
    with pytest.raises(IdempotencyConflict, match="another amount"):
        await kartu.pay(key, amount="2000.00", **args)
    with pytest.raises(IdempotencyConflict, match="another flow"):
        await kartu.authorize(key, amount="1000.00", **args)
    assert (await kartu.payment_status(key)).amount == Decimal("1000.00")


async def test_pay_declined(stack: Stack, kartu: KartuClient, key: str):
    outcome = await kartu.pay(
        key,
        customer_id=new_customer_id(),
        amount="5000",
        redirect_url=REDIRECT,
        encrypted_card=await stack.encrypted_card(DECLINED_CARD),
    )
    assert outcome.status is PaymentStatus.DECLINED
    assert outcome.gateway_code == "DECLINED" and outcome.decline_code


async def test_3ds_challenge_then_paid_through_the_callback(
    stack: Stack, kartu: KartuClient, key: str
):
    outcome = await kartu.pay(
        key,
        customer_id=new_customer_id(),
        amount="75000",
        redirect_url=REDIRECT,
        encrypted_card=await stack.encrypted_card(CHALLENGE_CARD),
    )
    assert outcome.status is PaymentStatus.CHALLENGE and outcome.authentication_url
    # The customer passes 3DS; the sandbox calls the gateway back, which wakes the workflow:
    # the workflow task that saw the callback's signal started the look-up.
    await authenticate_3ds(outcome.authentication_url)
    state = await kartu.wait_payment(key, timeout=30)
    assert state.status is PaymentStatus.PAID
    assert state.callbacks_received >= 1
    handle = stack.client.get_workflow_handle(f"payment-{key}")
    assert await woken_by_signal(handle, "payment_callback", "payment_status")


async def test_first_outcome_not_in_time_answers_pending(
    stack: Stack, kartu: KartuClient, key: str
):
    assert stack.control is not None
    # The wait is at least MIN_OUTCOME_WAIT (1 s): the charge answers after 2.5 s.
    await stack.control.set_faults({"create_charge": {"latency_ms": 2500}})
    try:
        outcome = await kartu.pay(
            key,
            customer_id=new_customer_id(),
            amount="12000",
            redirect_url=REDIRECT,
            encrypted_card=await stack.encrypted_card(),
            timeout=0.2,
        )
    finally:
        await stack.control.clear_faults()
    assert outcome.status is PaymentStatus.PENDING
    state = await kartu.wait_payment(key, [PaymentStatus.PAID], timeout=10)
    assert state.status is PaymentStatus.PAID


async def test_authorize_capture(stack: Stack, kartu: KartuClient, key: str):
    await _authorized(stack, kartu, key)
    result = await kartu.capture(key, "200000.00", requested_by="ops", idempotency_key="cap-1")
    assert result.outcome == "captured" and result.status is PaymentStatus.CAPTURED
    assert result.amount == Decimal("200000.00")
    state = await kartu.payment_status(key)
    assert state.status is PaymentStatus.CAPTURED
    assert state.captured_amount == Decimal("200000.00")
    # A retry with the same key gets the first answer, even though the workflow has finished.
    assert await kartu.capture(key, "200000.00", idempotency_key="cap-1") == result
    with pytest.raises(ActionRefused) as refused:
        await kartu.capture(key, idempotency_key="cap-2")
    assert refused.value.status is PaymentStatus.CAPTURED
    with pytest.raises(ActionRefused, match="CAPTURED"):
        await kartu.void(key)


async def test_capture_above_120_percent_is_refused(stack: Stack, kartu: KartuClient, key: str):
    await _authorized(stack, kartu, key, amount="1000.00")
    with pytest.raises(ActionRefused, match="120") as refused:
        await kartu.capture(key, "1200.01")
    assert refused.value.status is PaymentStatus.AUTHORIZED
    assert (await kartu.capture(key)).amount == Decimal("1000.00")


async def test_void(stack: Stack, kartu: KartuClient, key: str):
    await _authorized(stack, kartu, key)
    result = await kartu.void(key, "customer cancelled", requested_by="ops")
    assert result.outcome == "voided" and result.status is PaymentStatus.VOIDED
    assert (await kartu.payment_status(key)).status is PaymentStatus.VOIDED
    with pytest.raises(ActionRefused) as again:
        await kartu.void(key)
    assert again.value.status is PaymentStatus.VOIDED
    with pytest.raises(ActionRefused):
        await kartu.capture(key)


async def test_signal_capture_is_fire_and_forget(stack: Stack, kartu: KartuClient, key: str):
    await _authorized(stack, kartu, key)
    assert await kartu.signal_capture(key, requested_by="ops") is None
    state = await kartu.wait_payment(key, ["CAPTURED"], timeout=10)
    assert state.captured_amount == Decimal("250000.00")


async def test_direct_payment_cannot_be_captured_or_voided(
    stack: Stack, kartu: KartuClient, key: str
):
    card = await stack.registered_card()
    await kartu.pay(
        key,
        customer_id=card.customer_id,
        amount="10",
        redirect_url=REDIRECT,
        card_token=card.card_token,
    )
    with pytest.raises(ActionRefused, match="finished"):
        await kartu.capture(key)
    with pytest.raises(ActionRefused):
        await kartu.signal_void(key)


async def test_refund_once_and_twice(stack: Stack, kartu: KartuClient, key: str):
    card = await stack.registered_card()
    await kartu.pay(
        key,
        customer_id=card.customer_id,
        amount="150000.00",
        redirect_url=REDIRECT,
        card_token=card.card_token,
    )
    first = await kartu.refund(key, "customer returned the goods")
    assert first.status is RefundStatus.REFUNDED
    assert first.workflow_id == f"refund-{key}" and first.amount == Decimal("150000.00")
    second = await kartu.refund(key)
    assert second == first
    assert await kartu.refund_status(key) == first
    assert stack.control is not None
    payment = await stack.control.payment(f"{key}-pay")
    assert payment is not None and payment["status"] == "REFUNDED"


async def test_refund_of_a_captured_payment(stack: Stack, kartu: KartuClient, key: str):
    await _authorized(stack, kartu, key, amount="1000.00")
    await kartu.capture(key, "900.00")
    refund = await kartu.refund(key)
    assert refund.status is RefundStatus.REFUNDED and refund.amount == Decimal("900.00")


async def test_refund_refused_unless_paid_or_captured(stack: Stack, kartu: KartuClient, key: str):
    await _authorized(stack, kartu, key)
    with pytest.raises(ActionRefused, match="PAID or CAPTURED") as refused:
        await kartu.refund(key)
    assert refused.value.status is PaymentStatus.AUTHORIZED
    assert not await stack.workflow_exists(f"refund-{key}")
    with pytest.raises(RefundNotFound):
        await kartu.refund_status(key)


async def test_unknown_payment(kartu: KartuClient, key: str):
    with pytest.raises(PaymentNotFound):
        await kartu.payment_status(key)
    with pytest.raises(PaymentNotFound):
        await kartu.capture(key)
    with pytest.raises(PaymentNotFound):
        await kartu.void(key)
    with pytest.raises(PaymentNotFound):
        await kartu.signal_capture(key)
    with pytest.raises(PaymentNotFound):
        await kartu.refund(key)


async def test_find_payments(stack: Stack, kartu: KartuClient, key: str):
    customer = new_customer_id()
    await kartu.authorize(
        key,
        customer_id=customer,
        amount="31000",
        redirect_url=REDIRECT,
        encrypted_card=await stack.encrypted_card(),
    )
    soon = datetime.now(UTC) + timedelta(days=30)
    for _ in range(50):  # visibility is eventually consistent
        found = await kartu.find_payments(
            status="AUTHORIZED", customer_id=customer, expiring_before=soon, flow="auth_capture"
        )
        if found:
            break
        await asyncio.sleep(0.1)
    assert [p.payment_id for p in found] == [key]
    summary = found[0]
    assert summary.running and summary.amount == 31000 and summary.flow == "AUTH_CAPTURE"
    assert summary.authorization_expires_at is not None
    assert await kartu.find_payments(customer_id=customer, status="PAID") == []
    past = datetime.now(UTC) - timedelta(days=1)
    assert await kartu.find_payments(customer_id=customer, expiring_before=past) == []
