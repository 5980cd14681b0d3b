"""Void and refund through the real client, with every rule."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ayoconnect import DeclinedError, NotFoundError, RuleViolationError
from ayoconnect.models import CreateChargeRequest, PaymentStatus, RefundRequest, VoidRequest


def _void(card: Any, invoice: str, ids: Any) -> VoidRequest:
    return VoidRequest(
        transactionId=ids("void"),
        customerId=card.customerId,
        invoiceNumber=invoice,
        reason="customer cancelled",
    )


def _refund(card: Any, invoice: str, amount: str, ids: Any) -> RefundRequest:
    return RefundRequest(
        transactionId=ids("refund"),
        customerId=card.customerId,
        invoiceNumber=invoice,
        amount=Decimal(amount),
        reason="returned goods",
    )


async def _capture(client: Any, card: Any, invoice: str, amount: str, cid: str, ids: Any) -> Any:
    request = CreateChargeRequest(
        transactionId=ids("capture"),
        customerId=card.customerId,
        operation="CAPTURE",
        invoiceNumber=invoice,
        amount=Decimal(amount),
    )
    return await client.create_charge(request, correlation_id=cid)


async def test_void_an_authorization(
    register: Any, charge: Any, client: Any, cid: str, ids: Any, control: Any
) -> None:
    card = await register()
    authorized = await charge(card, "80000.00", "AUTHORIZE")
    voided = await client.void(_void(card, authorized.invoiceNumber, ids), correlation_id=cid)
    assert (voided.status, voided.responseCode) == (PaymentStatus.VOIDED, "2005701")
    assert voided.invoiceNumber == authorized.invoiceNumber
    payment = await control.payment(authorized.transactionId)
    assert [op["operation"] for op in payment["operations"]] == ["AUTHORIZE", "VOID"]
    assert payment["operations"][-1]["note"] == "customer cancelled"
    with pytest.raises(RuleViolationError):
        await client.void(_void(card, authorized.invoiceNumber, ids), correlation_id=cid)
    with pytest.raises(RuleViolationError):
        await _capture(client, card, authorized.invoiceNumber, "80000.00", cid, ids)


async def test_void_after_capture_is_refused(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    card = await register()
    authorized = await charge(card, "80000.00", "AUTHORIZE")
    await _capture(client, card, authorized.invoiceNumber, "80000.00", cid, ids)
    with pytest.raises(RuleViolationError) as refused:
        await client.void(_void(card, authorized.invoiceNumber, ids), correlation_id=cid)
    assert refused.value.response_code == "4005726"


async def test_void_a_payment_is_refused(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    card = await register()
    paid = await charge(card, "80000.00", "PAY")
    with pytest.raises(RuleViolationError):
        await client.void(_void(card, paid.invoiceNumber, ids), correlation_id=cid)
    with pytest.raises(NotFoundError):
        await client.void(_void(card, "INV-NOPE", ids), correlation_id=cid)


async def test_refund_a_payment_once_and_in_full(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    card = await register()
    paid = await charge(card, "80000.00", "PAY")
    with pytest.raises(RuleViolationError) as partial:
        await client.refund(_refund(card, paid.invoiceNumber, "40000.00", ids), correlation_id=cid)
    assert partial.value.response_code == "4005826"
    refunded = await client.refund(
        _refund(card, paid.invoiceNumber, "80000.00", ids), correlation_id=cid
    )
    assert (refunded.status, refunded.responseCode) == (PaymentStatus.REFUNDED, "2005801")
    with pytest.raises(RuleViolationError):
        await client.refund(_refund(card, paid.invoiceNumber, "80000.00", ids), correlation_id=cid)
    status = await client.payment_status(
        transaction_id=ids("status"),
        customer_id=card.customerId,
        correlation_id=cid,
        invoice_number=paid.invoiceNumber,
    )
    assert status.payment.refundedAmount == Decimal("80000.00")


async def test_refund_a_capture_means_the_captured_amount(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    card = await register()
    authorized = await charge(card, "80000.00", "AUTHORIZE")
    with pytest.raises(RuleViolationError):  # not captured yet: nothing to refund
        await client.refund(
            _refund(card, authorized.invoiceNumber, "80000.00", ids), correlation_id=cid
        )
    await _capture(client, card, authorized.invoiceNumber, "60000.00", cid, ids)
    with pytest.raises(RuleViolationError):
        await client.refund(
            _refund(card, authorized.invoiceNumber, "80000.00", ids), correlation_id=cid
        )
    refunded = await client.refund(
        _refund(card, authorized.invoiceNumber, "60000.00", ids), correlation_id=cid
    )
    assert refunded.status is PaymentStatus.REFUNDED


async def test_refund_a_declined_payment_is_refused(
    register: Any, client: Any, cid: str, ids: Any, control: Any
) -> None:
    card = await register("4000000000009995")
    tid = ids("pay")
    request = CreateChargeRequest(
        transactionId=tid,
        customerId=card.customerId,
        operation="PAY",
        cardToken=card.cardToken,
        order={"id": "o", "amount": "10.00"},
    )
    with pytest.raises(DeclinedError):
        await client.create_charge(request, correlation_id=cid)
    invoice = (await control.payment(tid))["invoiceNumber"]
    with pytest.raises(RuleViolationError):
        await client.refund(_refund(card, invoice, "10.00", ids), correlation_id=cid)
