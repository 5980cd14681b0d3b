"""Each injected fault lands in the client's right error class: refusals are transient and
applied nothing; a lost answer to a POST is ambiguous and the payment exists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from ayoconnect import AmbiguousError, AyoconnectClient, TransientError
from ayoconnect.models import (
    CreateChargeRequest,
    Customer,
    GenerateWebviewRequest,
    Order,
    PaymentStatus,
    RefundRequest,
)


@pytest.fixture(autouse=True)
async def no_faults(control: Any) -> AsyncIterator[None]:
    await control.clear_faults()
    yield
    await control.clear_faults()


def _pay(card: Any, ids: Any) -> CreateChargeRequest:
    return CreateChargeRequest(
        transactionId=ids("pay"),
        customerId=card.customerId,
        operation="PAY",
        cardToken=card.cardToken,
        order=Order(id=ids("order"), amount=Decimal("42000.00")),
    )


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503},
        {"status": 500},
        {"status": 429},
        {"status": 504},
        {"status": 400, "case": "TIMED_OUT"},
    ],
    ids=["503", "500", "429", "504", "TIMED_OUT"],
)
async def test_refusals_are_transient_and_apply_nothing(
    register: Any, client: Any, cid: str, ids: Any, control: Any, fault: dict[str, Any]
) -> None:
    card = await register()
    request = _pay(card, ids)
    await control.set_faults({"create_charge": {"fail_next": 1, **fault}})
    with pytest.raises(TransientError) as transient:
        await client.create_charge(request, correlation_id=cid)
    assert transient.value.http_status == fault["status"]
    assert await control.payment(request.transactionId) is None
    retried = await client.create_charge(request, correlation_id=cid)  # the retry just works
    assert retried.status is PaymentStatus.SUCCESS


async def test_dropped_answer_is_ambiguous_and_the_payment_exists(
    register: Any, client: Any, cid: str, ids: Any, control: Any
) -> None:
    card = await register()
    request = _pay(card, ids)
    await control.set_faults({"create_charge": {"drop_next": 1}})
    with pytest.raises(AmbiguousError):
        await client.create_charge(request, correlation_id=cid)
    # What Kartu must do next: look the payment up before sending again.
    found = await client.payment_status(
        transaction_id=ids("status"),
        customer_id=card.customerId,
        correlation_id=cid,
        original_transaction_id=request.transactionId,
    )
    assert found.payment.status is PaymentStatus.SUCCESS
    resent = await client.create_charge(request, correlation_id=cid)
    assert resent.invoiceNumber == found.payment.invoiceNumber
    assert len((await control.payment(request.transactionId))["operations"]) == 1
    assert (await control.faults())["counts"]["create_charge"]["drops"] == 1


async def test_late_answer_past_the_read_timeout_is_ambiguous(
    register: Any, sandbox: Any, cid: str, ids: Any, control: Any
) -> None:
    card = await register()
    request = _pay(card, ids)
    await control.set_faults({"create_charge": {"delay_next": 1, "delay_ms": 3000}})
    async with AyoconnectClient(sandbox.client_settings(read_timeout_seconds=1.0)) as impatient:
        # The token first: its request is held to the same read timeout, and a loaded machine
        # could make it the call that times out (transient, not ambiguous).
        await impatient.access_token()
        with pytest.raises(AmbiguousError):
            await impatient.create_charge(request, correlation_id=cid)
    payment = await control.payment(request.transactionId)
    assert payment is not None and payment["state"] == "SUCCESS"


async def test_dropped_read_is_transient(
    register: Any, charge: Any, client: Any, cid: str, ids: Any, control: Any
) -> None:
    card = await register()
    paid = await charge(card)
    await control.set_faults({"payment_status": {"drop_next": 1}})
    with pytest.raises(TransientError):
        await client.payment_status(
            transaction_id=ids("status"),
            customer_id=card.customerId,
            correlation_id=cid,
            invoice_number=paid.invoiceNumber,
        )


async def test_cards_list_outage_is_transient(
    client: Any, cid: str, ids: Any, control: Any
) -> None:
    await control.set_faults({"cards_list": {"fail_next": 1, "status": 503}})
    with pytest.raises(TransientError):
        await client.list_cards(
            transaction_id=ids("l"), customer_id="NOBODY1234", correlation_id=cid
        )


async def test_webview_outage_is_transient(client: Any, cid: str, ids: Any, control: Any) -> None:
    await control.set_faults({"generate_webview": {"fail_next": 1, "status": 500}})
    request = GenerateWebviewRequest(
        transactionId=ids("wv"),
        customer=Customer(name="F", email="f@example.com", phoneNumber="6281234567"),
        redirectUrl="https://merchant.example/ok",
    )
    with pytest.raises(TransientError):
        await client.generate_webview(request, correlation_id=cid)
    assert (await client.generate_webview(request, correlation_id=cid)).webview.url


async def test_token_endpoint_outage_is_transient(
    sandbox: Any, cid: str, ids: Any, control: Any
) -> None:
    await control.set_faults({"token": {"fail_next": 1, "status": 503}})
    async with AyoconnectClient(sandbox.client_settings()) as fresh:
        with pytest.raises(TransientError):
            await fresh.list_cards(
                transaction_id=ids("l"), customer_id="NOBODY1234", correlation_id=cid
            )


async def test_latency_below_the_timeout_is_just_slow(
    register: Any, client: Any, cid: str, ids: Any, control: Any
) -> None:
    card = await register()
    await control.set_faults({"create_charge": {"latency_ms": 50}})
    answer = await client.create_charge(_pay(card, ids), correlation_id=cid)
    assert answer.status is PaymentStatus.SUCCESS


async def test_dropped_refund_is_ambiguous_and_applied(
    register: Any, charge: Any, client: Any, cid: str, ids: Any, control: Any
) -> None:
    card = await register()
    paid = await charge(card, "42000.00")
    refund = RefundRequest(
        transactionId=ids("refund"),
        customerId=card.customerId,
        invoiceNumber=paid.invoiceNumber,
        amount=Decimal("42000.00"),
        reason="drop test",
    )
    await control.set_faults({"refund": {"drop_next": 1}})
    with pytest.raises(AmbiguousError):
        await client.refund(refund, correlation_id=cid)
    found = await client.payment_status(
        transaction_id=ids("status"),
        customer_id=card.customerId,
        correlation_id=cid,
        original_transaction_id=refund.transactionId,
    )
    assert found.payment.status is PaymentStatus.REFUNDED
    assert (await client.refund(refund, correlation_id=cid)).status is PaymentStatus.REFUNDED
