"""Bad input: one InvalidRequest naming the field, raised before any Temporal call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from starter.client import InvalidRequest, KartuClient
from tests.kartu_stack import Stack

TOKEN = "A" * 40
GOOD: dict[str, Any] = {
    "customer_id": "CUST000123",
    "amount": "150000.00",
    "redirect_url": "https://merchant.example/done",
    "card_token": TOKEN,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_id": "C1"}, "customer_id"),
        ({"customer_id": "CUST-0001"}, "customer_id"),
        ({"amount": 150000.5}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "10.001"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"amount": True}, "amount"),
        ({"card_token": None}, "card_token"),
        ({"encrypted_card": "x.y.z"}, "card_token"),
        ({"card_token": "short"}, "card_token"),
        ({"redirect_url": "ftp://nope"}, "redirect_url"),
        ({"description": "d" * 256}, "description"),
        ({"challenge_window": timedelta(0)}, None),
    ],
)
async def test_pay_refuses_bad_input_and_starts_nothing(
    stack: Stack, kartu: KartuClient, key: str, change: dict[str, Any], field: str | None
):
    with pytest.raises(InvalidRequest) as refused:
        await kartu.pay(key, **{**GOOD, **change})
    assert refused.value.field == field
    if field:
        assert field in str(refused.value)
    assert "AAAA" not in str(refused.value)  # never the card token
    assert not await stack.workflow_exists(f"payment-{key}")


@pytest.mark.parametrize("payment_id", ["", "has-hyphen", "x" * 27, "sp ace", "ünï"])
async def test_bad_payment_id(kartu: KartuClient, payment_id: str):
    with pytest.raises(InvalidRequest) as refused:
        await kartu.pay(payment_id, **GOOD)
    assert refused.value.field == "payment_id"
    for call in (kartu.payment_status, kartu.capture, kartu.void, kartu.refund):
        with pytest.raises(InvalidRequest):
            await call(payment_id)


async def test_authorize_refuses_a_bad_policy(stack: Stack, kartu: KartuClient, key: str):
    with pytest.raises(InvalidRequest) as refused:
        await kartu.authorize(key, capture_policy="sometimes", **GOOD)
    assert refused.value.field == "capture_policy"
    assert not await stack.workflow_exists(f"payment-{key}")


async def test_actions_refuse_bad_input(kartu: KartuClient, key: str):
    with pytest.raises(InvalidRequest) as amount:
        await kartu.capture(key, "1.234")
    assert amount.value.field == "amount"
    with pytest.raises(InvalidRequest) as reason:
        await kartu.void(key, "")
    assert reason.value.field == "reason"
    with pytest.raises(InvalidRequest) as idem:
        await kartu.capture(key, idempotency_key="k" * 201)
    assert idem.value.field == "idempotency_key"


async def test_registration_refuses_bad_input(stack: Stack, kartu: KartuClient, key: str):
    good = {
        "name": "Budi",
        "email": "budi@example.com",
        "phone_number": "6281234567890",
        "redirect_url": "https://merchant.example/cards",
    }
    for change, field in (
        ({"phone_number": "0812345"}, "phone_number"),
        ({"email": "not-an-email"}, "email"),
        ({"customer_id": "x"}, "customer_id"),
        ({"redirect_url": "nope"}, "redirect_url"),
    ):
        with pytest.raises(InvalidRequest) as refused:
            await kartu.register_card(key, **{**good, **change})
        assert refused.value.field == field, change
    assert not await stack.workflow_exists(f"registration-{key}")


async def test_find_payments_refuses_bad_filters(kartu: KartuClient):
    with pytest.raises(InvalidRequest) as status:
        await kartu.find_payments(status="PAID' OR 1=1")
    assert status.value.field == "status"
    with pytest.raises(InvalidRequest) as customer:
        await kartu.find_payments(customer_id="x' OR '1'='1")
    assert customer.value.field == "customer_id"
    with pytest.raises(InvalidRequest) as naive:
        await kartu.find_payments(expiring_before=datetime(2030, 1, 1))
    assert naive.value.field == "expiring_before"
    with pytest.raises(InvalidRequest):
        await kartu.find_payments(flow="sideways")


def test_payments_query_is_built_from_validated_values():
    query = KartuClient.payments_query(
        status="authorized",
        customer_id="CUST0001",
        expiring_before=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        flow="auth_capture",
    )
    assert query == (
        "WorkflowType IN ('DirectPayment', 'AuthCapturePayment') "
        "AND KartuPaymentStatus = 'AUTHORIZED' AND KartuCustomerId = 'CUST0001' "
        "AND KartuAuthExpiresAt < '2030-01-02T03:04:05.000000Z' AND KartuFlow = 'AUTH_CAPTURE'"
    )
