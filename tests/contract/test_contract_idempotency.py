"""Idempotency by transactionId: the same body gets the first answer and no second ledger
operation; another body gets 409 (ConflictError). GETs are never replayed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ayoconnect import ConflictError, DeclinedError
from ayoconnect.models import (
    CreateChargeRequest,
    Customer,
    GenerateWebviewRequest,
    Order,
    PaymentStatus,
    RefundRequest,
)


def _pay(card: Any, tid: str, amount: str = "10000.00") -> CreateChargeRequest:
    return CreateChargeRequest(
        transactionId=tid,
        customerId=card.customerId,
        operation="PAY",
        cardToken=card.cardToken,
        order=Order(id="order-idem", amount=Decimal(amount)),
    )


async def test_same_body_replays_the_first_answer(
    register: Any, client: Any, cid: str, ids: Any, control: Any
) -> None:
    card = await register()
    request = _pay(card, ids("pay"))
    first = await client.create_charge(request, correlation_id=cid)
    again = await client.create_charge(request, correlation_id=cid)
    assert again == first  # same invoice, same status, same responseTime
    (payment,) = [
        p for p in (await control.ledger())["payments"] if p["invoiceNumber"] == first.invoiceNumber
    ]
    assert len(payment["operations"]) == 1


async def test_other_body_same_transaction_is_a_conflict(
    register: Any, client: Any, cid: str, ids: Any, control: Any
) -> None:
    card = await register()
    tid = ids("pay")
    await client.create_charge(_pay(card, tid), correlation_id=cid)
    with pytest.raises(ConflictError) as conflict:
        await client.create_charge(_pay(card, tid, "10000.01"), correlation_id=cid)
    assert conflict.value.http_status == 409
    assert conflict.value.response_code == "4095435"
    assert len((await control.payment(tid))["operations"]) == 1


async def test_transaction_id_is_unique_across_endpoints(
    register: Any, client: Any, cid: str, ids: Any
) -> None:
    card = await register()
    tid = ids("shared")
    paid = await client.create_charge(_pay(card, tid), correlation_id=cid)
    refund = RefundRequest(
        transactionId=tid,
        customerId=card.customerId,
        invoiceNumber=paid.invoiceNumber,
        amount=Decimal("10000.00"),
        reason="reuse",
    )
    with pytest.raises(ConflictError):
        await client.refund(refund, correlation_id=cid)


async def test_a_decline_replays_as_the_same_decline(
    register: Any, client: Any, cid: str, ids: Any, control: Any
) -> None:
    card = await register("4000000000000002")
    request = _pay(card, ids("pay"))
    with pytest.raises(DeclinedError) as first:
        await client.create_charge(request, correlation_id=cid)
    with pytest.raises(DeclinedError) as again:
        await client.create_charge(request, correlation_id=cid)
    assert again.value.response_code == first.value.response_code == "4005410"
    assert len((await control.ledger())["payments"]) >= 1
    assert len((await control.payment(request.transactionId))["operations"]) == 1


async def test_webview_replay_returns_the_same_session(client: Any, cid: str, ids: Any) -> None:
    request = GenerateWebviewRequest(
        transactionId=ids("wv"),
        customer=Customer(name="Idem", email="idem@example.com", phoneNumber="628123456789"),
        redirectUrl="https://merchant.example/ok",
    )
    first = await client.generate_webview(request, correlation_id=cid)
    again = await client.generate_webview(request, correlation_id=cid)
    assert again.webview.url == first.webview.url
    assert again.referenceNumber == first.referenceNumber


async def test_gets_are_not_replayed(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    card = await register()
    paid = await charge(card)
    tid = ids("status")

    async def status() -> PaymentStatus:
        answer = await client.payment_status(
            transaction_id=tid,
            customer_id=card.customerId,
            correlation_id=cid,
            invoice_number=paid.invoiceNumber,
        )
        return answer.payment.status

    assert await status() is PaymentStatus.SUCCESS
    await client.refund(
        RefundRequest(
            transactionId=ids("refund"),
            customerId=card.customerId,
            invoiceNumber=paid.invoiceNumber,
            amount=Decimal("100000.00"),
            reason="r",
        ),
        correlation_id=cid,
    )
    assert await status() is PaymentStatus.REFUNDED
