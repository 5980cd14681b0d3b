"""Create Charge through the real client: PAY, AUTHORIZE, CAPTURE and their rules, declines,
3DS, and encrypted card data."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ayoconnect import (
    DeclinedError,
    GatewayCode,
    InvalidRequestError,
    NotFoundError,
    RuleViolationError,
    encrypt_card,
)
from ayoconnect.models import (
    CardData,
    CreateChargeRequest,
    Operation,
    Order,
    PaymentCallback,
    PaymentStatus,
)
from sandbox import TEST_CARDS
from sandbox.customer import authenticate_3ds, default_expiry
from sandbox.test_cards import Outcome

APPROVED = ["4111111111111111", "5555555555554444"]


@pytest.mark.parametrize("pan", APPROVED)
async def test_frictionless_pay_succeeds(
    register: Any, charge: Any, receiver: Any, pan: str
) -> None:
    answer = await charge(await register(pan), "150000.00")
    assert answer.code == 200 and answer.responseCode == "2005401"
    assert answer.status is PaymentStatus.SUCCESS and answer.operation is Operation.PAY
    assert answer.amount == Decimal("150000.00")
    assert answer.authenticationUrl is None and answer.authorizationExpiresAt is None
    callback = await receiver.wait_for(
        lambda c: c.body.get("invoiceNumber") == answer.invoiceNumber
    )
    assert PaymentCallback.model_validate(callback.body).status is PaymentStatus.SUCCESS


async def test_authorize_holds_for_the_window(register: Any, charge: Any) -> None:
    answer = await charge(await register(), "200000.00", "AUTHORIZE")
    assert answer.status is PaymentStatus.AUTHORIZED and answer.responseCode == "2005401"
    assert answer.authorizationExpiresAt is not None and answer.responseTime is not None
    assert str(answer.authorizationExpiresAt.utcoffset()) == "7:00:00"


def _capture(card: Any, invoice: str, amount: str, ids: Any) -> CreateChargeRequest:
    return CreateChargeRequest(
        transactionId=ids("capture"),
        customerId=card.customerId,
        operation="CAPTURE",
        invoiceNumber=invoice,
        amount=Decimal(amount),
    )


@pytest.mark.parametrize("amount", ["100000.00", "40000.00", "120000.00"])
async def test_capture_full_partial_and_up_to_120_percent(
    register: Any, charge: Any, client: Any, cid: str, ids: Any, amount: str
) -> None:
    card = await register()
    authorized = await charge(card, "100000.00", "AUTHORIZE")
    captured = await client.create_charge(
        _capture(card, authorized.invoiceNumber, amount, ids), correlation_id=cid
    )
    assert captured.status is PaymentStatus.CAPTURED
    assert captured.operation is Operation.CAPTURE
    assert captured.invoiceNumber == authorized.invoiceNumber
    assert captured.amount == Decimal(amount)
    status = await client.payment_status(
        transaction_id=ids("status"),
        customer_id=card.customerId,
        correlation_id=cid,
        invoice_number=authorized.invoiceNumber,
    )
    assert status.payment.capturedAmount == Decimal(amount)
    assert status.payment.authorizedAmount == Decimal("100000.00")


async def test_capture_over_120_percent_is_refused(
    register: Any, charge: Any, client: Any, cid: str, ids: Any, control: Any
) -> None:
    card = await register()
    authorized = await charge(card, "100000.00", "AUTHORIZE")
    with pytest.raises(RuleViolationError) as refused:
        await client.create_charge(
            _capture(card, authorized.invoiceNumber, "120010.00", ids), correlation_id=cid
        )
    assert refused.value.response_code == "4005426"
    assert refused.value.gateway_code is GatewayCode.NOT_SUPPORTED
    payment = await control.payment(authorized.transactionId)
    assert payment["state"] == "AUTHORIZED" and len(payment["operations"]) == 1


async def test_one_capture_per_authorization(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    card = await register()
    authorized = await charge(card, "100000.00", "AUTHORIZE")
    await client.create_charge(
        _capture(card, authorized.invoiceNumber, "50000.00", ids), correlation_id=cid
    )
    with pytest.raises(RuleViolationError):
        await client.create_charge(
            _capture(card, authorized.invoiceNumber, "50000.00", ids), correlation_id=cid
        )


async def test_capture_needs_an_authorization(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    card = await register()
    paid = await charge(card, "100000.00", "PAY")
    with pytest.raises(RuleViolationError):
        await client.create_charge(
            _capture(card, paid.invoiceNumber, "100000.00", ids), correlation_id=cid
        )
    with pytest.raises(NotFoundError):
        await client.create_charge(_capture(card, "INV-UNKNOWN", "1.00", ids), correlation_id=cid)
    other = await register()
    with pytest.raises(NotFoundError):
        await client.create_charge(
            _capture(other, paid.invoiceNumber, "1.00", ids), correlation_id=cid
        )


@pytest.mark.parametrize(
    ("pan", "gateway"),
    [
        ("4000000000000002", GatewayCode.DECLINED),
        ("4000000000009995", GatewayCode.INSUFFICIENT_FUNDS),
    ],
)
@pytest.mark.parametrize("operation", ["PAY", "AUTHORIZE"])
async def test_declines_raise_declined_and_record_a_failed_payment(
    register: Any,
    charge: Any,
    client: Any,
    cid: str,
    ids: Any,
    receiver: Any,
    pan: str,
    gateway: GatewayCode,
    operation: str,
) -> None:
    card = await register(pan)
    tid = ids("declined")
    with pytest.raises(DeclinedError) as declined:
        await charge(card, "100000.00", operation, transaction_id=tid)
    assert declined.value.gateway_code is gateway
    assert declined.value.response_code == f"40054{gateway.value}"
    assert declined.value.http_status == 400
    assert declined.value.transaction_id == tid
    status = await client.payment_status(
        transaction_id=ids("status"),
        customer_id=card.customerId,
        correlation_id=cid,
        original_transaction_id=tid,
    )
    assert status.payment.status is PaymentStatus.FAILED
    assert status.payment.originalTransactionId == tid
    callback = await receiver.wait_for(lambda c: c.body.get("transactionId") == tid)
    assert callback.body["status"] == "FAILED"


@pytest.mark.parametrize(
    ("operation", "final"),
    [("PAY", PaymentStatus.SUCCESS), ("AUTHORIZE", PaymentStatus.AUTHORIZED)],
)
async def test_3ds_challenge_through_the_page(
    register: Any,
    charge: Any,
    client: Any,
    cid: str,
    ids: Any,
    receiver: Any,
    operation: str,
    final: PaymentStatus,
) -> None:
    card = await register("4000000000003220")
    answer = await charge(
        card, "300000.00", operation, redirect_url="https://merchant.example/after-3ds"
    )
    assert answer.code == 201 and answer.responseCode == "2015405"
    assert answer.status is PaymentStatus.AUTHENTICATION_IN_PROGRESS
    assert answer.authenticationUrl is not None

    result = await authenticate_3ds(answer.authenticationUrl)
    assert result.location == "https://merchant.example/after-3ds"
    callback = await receiver.wait_for(
        lambda c: c.body.get("invoiceNumber") == answer.invoiceNumber
    )
    assert PaymentCallback.model_validate(callback.body).status is final
    status = await client.payment_status(
        transaction_id=ids("status"),
        customer_id=card.customerId,
        correlation_id=cid,
        invoice_number=answer.invoiceNumber,
    )
    assert status.payment.status is final
    if final is PaymentStatus.AUTHORIZED:
        assert status.payment.authorizationExpiresAt is not None


async def test_3ds_wrong_otp_fails(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    card = await register("4000000000003220")
    answer = await charge(card)
    await authenticate_3ds(str(answer.authenticationUrl), otp="999999")
    status = await client.payment_status(
        transaction_id=ids("status"),
        customer_id=card.customerId,
        correlation_id=cid,
        invoice_number=answer.invoiceNumber,
    )
    assert status.payment.status is PaymentStatus.FAILED


# --- encrypted card data --------------------------------------------------------------------


def _encrypted(pan: str, public_key: str, expiry: str | None = None) -> str:
    month, year = (expiry or default_expiry()).split("/")
    card = CardData(
        pan=pan, expiryMonth=month, expiryYear=year, cvv="123", cardholderName="PCI MERCHANT"
    )
    return encrypt_card(card, public_key)


def _encrypted_charge(encrypted: str, ids: Any, operation: str = "PAY") -> CreateChargeRequest:
    return CreateChargeRequest(
        transactionId=ids("enc"),
        customerId="PCIMERCHANT01",
        operation=operation,
        encryptedCard=encrypted,
        order=Order(id=ids("order"), amount=Decimal("99000.00")),
    )


@pytest.mark.parametrize("card", TEST_CARDS, ids=lambda c: f"{c.outcome.value}-{c.number}")
async def test_encrypted_card_for_every_test_card(
    client: Any, control: Any, cid: str, ids: Any, card: Any
) -> None:
    request = _encrypted_charge(_encrypted(card.number, await control.public_key()), ids)
    if card.decline_code is not None:
        with pytest.raises(DeclinedError) as declined:
            await client.create_charge(request, correlation_id=cid)
        assert declined.value.gateway_code is card.decline_code
        expected = "FAILED"
    else:
        answer = await client.create_charge(request, correlation_id=cid)
        challenged = card.outcome is Outcome.CHALLENGE
        assert answer.status is (
            PaymentStatus.AUTHENTICATION_IN_PROGRESS if challenged else PaymentStatus.SUCCESS
        )
        expected = answer.status.value
    payment = await control.payment(request.transactionId)
    assert payment["state"] == expected
    assert payment["maskedCard"] == card.number[:6] + "******" + card.number[-4:]
    assert payment["cardToken"] is None
    assert card.number not in str(await control.ledger())


async def test_encrypted_card_past_its_expiry_is_declined(
    client: Any, control: Any, cid: str, ids: Any
) -> None:
    encrypted = _encrypted("4111111111111111", await control.public_key(), expiry="01/20")
    with pytest.raises(DeclinedError) as declined:
        await client.create_charge(_encrypted_charge(encrypted, ids), correlation_id=cid)
    assert declined.value.gateway_code is GatewayCode.EXPIRED_CARD


async def test_encrypted_to_another_key_is_invalid(client: Any, cid: str, ids: Any) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(InvalidRequestError) as refused:
        await client.create_charge(
            _encrypted_charge(_encrypted("4111111111111111", pem), ids), correlation_id=cid
        )
    assert refused.value.http_status == 400


async def test_unknown_and_foreign_tokens_are_not_found(
    register: Any, charge: Any, client: Any, cid: str, ids: Any
) -> None:
    mine, theirs = await register(), await register()
    with pytest.raises(NotFoundError):
        await client.create_charge(
            CreateChargeRequest(
                transactionId=ids(),
                customerId=mine.customerId,
                operation="PAY",
                cardToken=theirs.cardToken,
                order=Order(id="o", amount=Decimal("1.00")),
            ),
            correlation_id=cid,
        )
    with pytest.raises(NotFoundError):
        await client.create_charge(
            CreateChargeRequest(
                transactionId=ids(),
                customerId=mine.customerId,
                operation="PAY",
                cardToken="Z" * 40,
                order=Order(id="o", amount=Decimal("1.00")),
            ),
            correlation_id=cid,
        )


async def test_authorization_window_in_the_answer_is_seven_days(register: Any, charge: Any) -> None:
    answer = await charge(await register(), "1000.00", "AUTHORIZE")
    assert answer.authorizationExpiresAt is not None and answer.responseTime is not None
    responded = datetime.fromisoformat(answer.responseTime)
    assert answer.authorizationExpiresAt - responded == timedelta(days=7)
