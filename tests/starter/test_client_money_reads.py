"""KartuClient reads against the real stack (dev server visibility, sandbox ledger): a refunded
payment in every read and search, the provider's own view of payments and cards, a failed
refund asked again, update-with-start leaving no unread start error behind."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from ayoconnect import AyoconnectClient, new_correlation_id
from ayoconnect.models import Customer, GenerateWebviewRequest
from sandbox.customer import register_card
from starter.client import KartuClient
from tests.kartu_stack import FRICTIONLESS_CARD, Stack, new_customer_id, new_key
from workflows.models import PaymentStatus, RefundStatus, UnbindStatus

REDIRECT = "https://merchant.example/pay/done"


async def eventually(read: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool]) -> Any:
    """Visibility is eventually consistent."""
    for _ in range(100):
        value = await read()
        if ok(value):
            return value
        await asyncio.sleep(0.1)
    return value


async def paid(stack: Stack, kartu: KartuClient, key: str, customer: str, amount: str) -> None:
    outcome = await kartu.pay(
        key,
        customer_id=customer,
        amount=amount,
        redirect_url=REDIRECT,
        encrypted_card=await stack.encrypted_card(),
    )
    assert outcome.status is PaymentStatus.PAID, outcome


async def test_refunded_payment_in_reads_and_searches(stack: Stack, kartu: KartuClient):
    customer = new_customer_id()
    refunded, kept = new_key("rf"), new_key("kp")
    await paid(stack, kartu, refunded, customer, "41000.00")
    await paid(stack, kartu, kept, customer, "42000.00")
    assert (await kartu.refund(refunded, "returned")).status is RefundStatus.REFUNDED

    state = await kartu.payment_status(refunded)
    assert state.status is PaymentStatus.REFUNDED and state.refund_reason == "returned"
    assert state.refunded_amount == Decimal("41000.00") and state.refunded_at is not None

    def ids(found: list[Any]) -> dict[str, str | None]:
        return {s.payment_id: s.status for s in found}

    found = await eventually(
        lambda: kartu.find_payments(customer_id=customer, status="REFUNDED"),
        lambda f: refunded in ids(f),
    )
    assert ids(found) == {refunded: "REFUNDED"}
    assert found[0].flow == "DIRECT" and found[0].amount == 41000
    paid_only = await eventually(
        lambda: kartu.find_payments(customer_id=customer, status="PAID"),
        lambda f: refunded not in ids(f),
    )
    assert ids(paid_only) == {kept: "PAID"}
    everything = await kartu.find_payments(customer_id=customer)
    assert ids(everything) == {refunded: "REFUNDED", kept: "PAID"}
    # A flow or expiry criterion applies to refunded payments too.
    assert (
        await kartu.find_payments(customer_id=customer, status="REFUNDED", flow="auth_capture")
        == []
    )


async def test_provider_status_on_the_sandbox(stack: Stack, kartu: KartuClient):
    key = new_key("pv")
    await paid(stack, kartu, key, new_customer_id(), "55000.00")
    both = await kartu.provider_status(key)
    assert both.kartu.status is PaymentStatus.PAID
    assert both.provider.outcome == "found" and both.provider.payment is not None
    assert both.provider.payment.status.value == "SUCCESS"
    assert both.provider.payment.amount == Decimal("55000.00")
    assert both.provider.payment.invoiceNumber == both.kartu.invoice_number

    await kartu.refund(key)
    both = await kartu.provider_status(key)
    assert both.kartu.status is PaymentStatus.REFUNDED
    assert both.provider.payment is not None
    assert both.provider.payment.status.value == "REFUNDED"
    assert both.provider.payment.refundedAmount == Decimal("55000.00")


async def test_customer_cards_are_the_providers(stack: Stack, kartu: KartuClient):
    mine = await stack.register(FRICTIONLESS_CARD)
    # A second card bound at Ayoconnect without Kartu (the merchant's own app, say).
    assert stack.sandbox is not None
    async with AyoconnectClient(stack.sandbox.client_settings()) as ayo:
        started = await ayo.generate_webview(
            GenerateWebviewRequest(
                transactionId=new_key("ext"),
                customer=Customer(
                    customerId=mine.customer_id,
                    name="Kartu Tester",
                    email="tester@example.com",
                    phoneNumber="6281234567890",
                ),
                redirectUrl="https://merchant.example/cards/done",
            ),
            correlation_id=new_correlation_id(),
        )
    await register_card(started.webview.url, card_number="5555555555554444")

    cards = await eventually(
        lambda: kartu.customer_cards(mine.customer_id),
        lambda c: any(x.registration_id for x in c.cards) and len(c.cards) == 2,
    )
    assert cards.provider == "found"
    by_token = {c.card_token: c for c in cards.cards}
    ours = by_token.pop(mine.card_token)
    assert (ours.status, ours.kartu_status) == ("ACTIVE", "ACTIVE")
    assert ours.registration_id == mine.registration_id and ours.expiry_year
    [(token, elsewhere)] = by_token.items()
    assert (elsewhere.status, elsewhere.registration_id) == ("ACTIVE", None)
    assert elsewhere.masked_card and elsewhere.masked_card.endswith("4444")

    unbound = await kartu.unbind_card(token, customer_id=mine.customer_id)
    assert unbound.status is UnbindStatus.UNBOUND
    after = {c.card_token: c.status for c in (await kartu.customer_cards(mine.customer_id)).cards}
    assert after == {mine.card_token: "ACTIVE", token: "DISABLED"}


async def test_unknown_customer_cards(kartu: KartuClient):
    cards = await kartu.customer_cards(new_customer_id())
    assert cards.provider == "unknown" and cards.cards == []
    assert "unknown at the provider" in (cards.reason or "")


async def test_failed_refund_asked_again_refunds_once(stack: Stack, kartu: KartuClient):
    key = new_key("ra")
    await paid(stack, kartu, key, new_customer_id(), "61000.00")
    assert stack.control is not None
    # A definite "no" from the provider (404), once.
    await stack.control.set_faults({"refund": {"fail_next": 1, "status": 404}})
    try:
        first = await kartu.refund(key)
    finally:
        await stack.control.clear_faults()
    assert first.status is RefundStatus.FAILED
    assert (await kartu.payment_status(key)).status is PaymentStatus.PAID

    second = await kartu.refund(key)
    assert second.status is RefundStatus.REFUNDED and second.attempt == 2
    payment = await stack.control.payment(f"{key}-pay")
    assert payment is not None and payment["status"] == "REFUNDED"
    assert (await kartu.payment_status(key)).status is PaymentStatus.REFUNDED


async def test_pay_again_after_the_end_leaves_no_unread_start_error(
    stack: Stack, kartu: KartuClient
):
    key = new_key("ag")
    card = await stack.registered_card()
    args = {
        "customer_id": card.customer_id,
        "amount": "1500.00",
        "redirect_url": REDIRECT,
        "card_token": card.card_token,
    }
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    # What earlier tests on this session loop left unread is theirs: collected before watching.
    gc.collect()
    await asyncio.sleep(0)
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        first = await kartu.pay(key, **args)
        await stack.client.get_workflow_handle(f"payment-{key}").result()
        # Closed: the start is refused as already started; the state gives the same answer.
        assert await kartu.pay(key, **args) == first
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [c.get("message") for c in seen] == []
