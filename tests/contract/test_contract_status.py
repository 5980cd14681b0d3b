"""Payment status by invoice and by transaction id (original or a later step's)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ayoconnect import NotFoundError
from ayoconnect.models import CreateChargeRequest, Operation, PaymentStatus


async def test_status_by_invoice_and_by_original_transaction(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    card = await register()
    paid = await charge(card, "123456.78", "PAY")
    by_invoice = await client.payment_status(
        transaction_id=ids("s"),
        customer_id=card.customerId,
        correlation_id=cid,
        invoice_number=paid.invoiceNumber,
    )
    by_original = await client.payment_status(
        transaction_id=ids("s"),
        customer_id=card.customerId,
        correlation_id=cid,
        original_transaction_id=paid.transactionId,
    )
    assert by_invoice.payment == by_original.payment
    assert by_invoice.responseCode == "2005501"
    payment = by_invoice.payment
    assert payment.invoiceNumber == paid.invoiceNumber
    assert payment.originalTransactionId == paid.transactionId
    assert payment.operation is Operation.PAY and payment.status is PaymentStatus.SUCCESS
    assert payment.amount == Decimal("123456.78")
    assert payment.updatedAt is not None


async def test_status_by_a_capture_transaction_finds_the_payment(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    card = await register()
    authorized = await charge(card, "5000.00", "AUTHORIZE")
    capture_id = ids("capture")
    await client.create_charge(
        CreateChargeRequest(
            transactionId=capture_id,
            customerId=card.customerId,
            operation="CAPTURE",
            invoiceNumber=authorized.invoiceNumber,
            amount=Decimal("5000.00"),
        ),
        correlation_id=cid,
    )
    found = await client.payment_status(
        transaction_id=ids("s"),
        customer_id=card.customerId,
        correlation_id=cid,
        original_transaction_id=capture_id,
    )
    assert found.payment.invoiceNumber == authorized.invoiceNumber
    assert found.payment.status is PaymentStatus.CAPTURED


async def test_status_of_unknown_or_foreign_payment(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    card, other = await register(), await register()
    paid = await charge(card)
    with pytest.raises(NotFoundError):
        await client.payment_status(
            transaction_id=ids("s"),
            customer_id=other.customerId,
            correlation_id=cid,
            invoice_number=paid.invoiceNumber,
        )
    with pytest.raises(NotFoundError):
        await client.payment_status(
            transaction_id=ids("s"),
            customer_id=card.customerId,
            correlation_id=cid,
            original_transaction_id="never-sent",
        )
