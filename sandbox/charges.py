"""Create Charge (service 54): PAY, AUTHORIZE and CAPTURE, and the 3DS challenge's outcome.

A charge is decided at once from the test card: approved (200), challenged (201 with the 3DS
page), or declined (400 with the decline's code, the payment recorded FAILED so a status
look-up by originalTransactionId finds it). Every final PAY/AUTHORIZE result is also sent as a
PAYMENT callback, since Ayoconnect reports customer-initiated payments asynchronously.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from ayoconnect.codes import GatewayCode, ServiceCode, response_code
from ayoconnect.models import (
    CENT,
    CardStatus,
    CreateChargeRequest,
    CreateChargeResponse,
    Operation,
    PaymentCallback,
    PaymentStatus,
)
from ayoconnect.security import CardEncryptionError, decrypt_card

from .auth import CallInfo
from .clock import wire_datetime
from .context import SandboxContext
from .envelope import answer, envelope
from .errors import Reply, declined, detail, invalid, not_found, rule_violation
from .ledger import Payment, new_invoice_number
from .sessions import Session, SessionKind, SessionState, new_session_id
from .test_cards import DECLINE_CODE, Outcome, expiry_passed, luhn_valid, mask, profile_for

SERVICE = ServiceCode.CREATE_CHARGE
CAPTURE_LIMIT = Decimal("1.20")  # capture at most 120 % of the authorized amount [doc]
THREE_DS_PATH = "/3ds/"


@dataclass(frozen=True)
class ChargeCard:
    """The card a charge uses, as far as the sandbox may know it (never the clear number)."""

    masked_card: str
    brand: str
    outcome: Outcome
    card_token: str | None
    expired: bool


def create_charge(ctx: SandboxContext, req: CreateChargeRequest, call: CallInfo) -> Reply:
    if req.operation is Operation.CAPTURE:
        return capture(ctx, req, call)
    assert req.order is not None  # the model requires an order for PAY and AUTHORIZE
    card = _resolve_card(ctx, req)
    now = ctx.clock.now()
    payment = Payment(
        invoice_number=new_invoice_number(now),
        original_transaction_id=req.transactionId,
        customer_id=req.customerId,
        operation=req.operation,
        status=PaymentStatus.INITIATED,
        amount=req.order.amount,
        currency=req.order.currency,
        order_id=req.order.id,
        masked_card=card.masked_card,
        brand=card.brand,
        outcome=card.outcome,
        created_at=now,
        updated_at=now,
        card_token=card.card_token,
        redirect_url=req.redirectUrl,
    )
    decline = GatewayCode.EXPIRED_CARD if card.expired else DECLINE_CODE.get(card.outcome)
    if decline is not None:
        payment = replace(payment, status=PaymentStatus.FAILED)
        code = response_code(400, SERVICE, decline)
        _record(ctx, payment, req, call, now, code)
        emit_payment_callback(ctx, payment, code)
        refusal = declined(SERVICE, decline, f"the issuer declined the payment: {decline.name}")
        return refusal.reply(now, req.transactionId)
    if card.outcome is Outcome.CHALLENGE:
        payment = replace(payment, status=PaymentStatus.AUTHENTICATION_IN_PROGRESS)
        code = response_code(201, SERVICE, GatewayCode.AUTHENTICATION_IN_PROGRESS)
        _record(ctx, payment, req, call, now, code)
        session_id = new_session_id()
        ctx.sessions.add(
            Session(
                session_id=session_id,
                kind=SessionKind.THREE_DS,
                state=SessionState.CHALLENGE,
                reference=payment.invoice_number,
                data={},
                expires_at=now + timedelta(seconds=ctx.settings.session_seconds),
                created_at=now,
            )
        )
        url = f"{call.base_url}{THREE_DS_PATH}{session_id}"
        return _charge_answer(201, payment, req.transactionId, now, authentication_url=url)
    payment = _approve(ctx, payment, now)
    code = response_code(200, SERVICE, GatewayCode.APPROVED)
    _record(ctx, payment, req, call, now, code)
    emit_payment_callback(ctx, payment, code)
    return _charge_answer(200, payment, req.transactionId, now)


def capture(ctx: SandboxContext, req: CreateChargeRequest, call: CallInfo) -> Reply:
    assert req.invoiceNumber is not None and req.amount is not None  # the model requires them
    payment = ctx.ledger.payment(req.invoiceNumber)
    if payment is None or payment.customer_id != req.customerId:
        raise not_found(SERVICE, "no payment with this invoiceNumber for this customer")
    if payment.status is not PaymentStatus.AUTHORIZED:
        raise rule_violation(SERVICE, _why_not_capturable(payment))
    authorized = payment.authorized_amount or payment.amount
    limit = (authorized * CAPTURE_LIMIT).quantize(CENT, rounding=ROUND_DOWN)
    if req.amount > limit:
        raise rule_violation(
            SERVICE, f"capture amount exceeds 120% of the authorized amount ({limit:.2f})"
        )
    now = ctx.clock.now()
    payment = ctx.ledger.save_payment(
        replace(payment, status=PaymentStatus.CAPTURED, captured_amount=req.amount), now
    )
    code = response_code(200, SERVICE, GatewayCode.APPROVED)
    ctx.ledger.record_operation(
        payment,
        Operation.CAPTURE.value,
        now=now,
        response_code=code,
        amount=req.amount,
        transaction_id=req.transactionId,
        correlation_id=call.correlation_id,
    )
    body = CreateChargeResponse(
        **envelope(200, SERVICE, GatewayCode.APPROVED, "Success", now, req.transactionId),
        invoiceNumber=payment.invoice_number,
        operation=Operation.CAPTURE,
        status=payment.status,
        amount=req.amount,
        authorizationExpiresAt=_wire(payment.authorization_expires_at),
    )
    return answer(200, body)


def finish_authentication(
    ctx: SandboxContext, session: Session, *, passed: bool, expired: bool = False
) -> Payment | None:
    """The 3DS page's verdict (or its expiry): approve or fail the payment, tell the merchant."""
    now = ctx.clock.now()
    payment = ctx.ledger.payment(session.reference)
    ctx.sessions.save(session, now, state=SessionState.EXPIRED if expired else SessionState.DONE)
    if payment is None or payment.status is not PaymentStatus.AUTHENTICATION_IN_PROGRESS:
        return payment
    if passed:
        payment = ctx.ledger.save_payment(_approve(ctx, payment, now), now)
        code = response_code(200, SERVICE, GatewayCode.APPROVED)
        note = "3DS passed"
    else:
        payment = ctx.ledger.save_payment(replace(payment, status=PaymentStatus.FAILED), now)
        code = response_code(400, SERVICE, GatewayCode.AUTHENTICATION_FAILED)
        note = "3DS session expired" if expired else "3DS failed: wrong OTP"
    ctx.ledger.record_operation(
        payment, "AUTHENTICATE", now=now, response_code=code, amount=payment.amount, note=note
    )
    emit_payment_callback(ctx, payment, code)
    return payment


def emit_payment_callback(ctx: SandboxContext, payment: Payment, code: str) -> None:
    callback = PaymentCallback(
        type="PAYMENT",
        transactionId=payment.original_transaction_id,
        invoiceNumber=payment.invoice_number,
        operation=payment.operation,
        status=payment.status,
        amount=payment.amount,
        responseCode=code,
    )
    ctx.callbacks.emit(callback, payment.invoice_number)


# --- helpers ---------------------------------------------------------------------------------


def _resolve_card(ctx: SandboxContext, req: CreateChargeRequest) -> ChargeCard:
    now = ctx.clock.now()
    if req.cardToken is not None:
        card = ctx.ledger.card(req.cardToken)
        if card is None or card.customer_id != req.customerId:
            raise not_found(SERVICE, "no card with this cardToken for this customer")
        if card.status is CardStatus.DISABLED:
            raise rule_violation(SERVICE, "the card token is unbound; register the card again")
        expired = expiry_passed(card.expiry_month, card.expiry_year, now)
        return ChargeCard(card.masked_card, card.brand, card.outcome, card.card_token, expired)
    assert req.encryptedCard is not None  # the model requires one of the two
    try:
        data = decrypt_card(req.encryptedCard, ctx.private_key_pem)
    except CardEncryptionError as exc:
        raise invalid(SERVICE, detail("INVALID_FIELD", str(exc), "encryptedCard")) from None
    if not luhn_valid(data.pan):
        raise invalid(SERVICE, detail("INVALID_FIELD", "card number is not valid", "encryptedCard"))
    profile = profile_for(data.pan)
    expired = expiry_passed(data.expiryMonth, data.expiryYear, now)
    return ChargeCard(mask(data.pan), profile.brand, profile.outcome, None, expired)


def _approve(ctx: SandboxContext, payment: Payment, now: datetime) -> Payment:
    if payment.operation is Operation.PAY:
        return replace(payment, status=PaymentStatus.SUCCESS)
    window = timedelta(days=ctx.settings.authorization_window_days)
    return replace(
        payment,
        status=PaymentStatus.AUTHORIZED,
        authorized_amount=payment.amount,
        authorization_expires_at=now + window,
    )


def _record(
    ctx: SandboxContext,
    payment: Payment,
    req: CreateChargeRequest,
    call: CallInfo,
    now: datetime,
    code: str,
) -> None:
    ctx.ledger.add_payment(payment)
    ctx.ledger.record_operation(
        payment,
        req.operation.value,
        now=now,
        response_code=code,
        amount=payment.amount,
        transaction_id=req.transactionId,
        correlation_id=call.correlation_id,
    )


def _charge_answer(
    status: int,
    payment: Payment,
    transaction_id: str,
    now: datetime,
    *,
    authentication_url: str | None = None,
) -> Reply:
    case = GatewayCode.AUTHENTICATION_IN_PROGRESS if status == 201 else GatewayCode.APPROVED
    message = "Authentication in progress" if status == 201 else "Success"
    body = CreateChargeResponse(
        **envelope(status, SERVICE, case, message, now, transaction_id),
        invoiceNumber=payment.invoice_number,
        operation=payment.operation,
        status=payment.status,
        authenticationUrl=authentication_url,
        amount=payment.amount,
        authorizationExpiresAt=_wire(payment.authorization_expires_at),
    )
    return answer(status, body)


def _wire(moment: datetime | None) -> datetime | None:
    return None if moment is None else wire_datetime(moment)


def _why_not_capturable(payment: Payment) -> str:
    if payment.status is PaymentStatus.CAPTURED:
        return "the authorization was already captured (one capture per authorization)"
    if payment.status is PaymentStatus.VOIDED:
        return "the authorization was voided or its window passed"
    if payment.operation is Operation.PAY:
        return "only an AUTHORIZE payment can be captured"
    return f"only an AUTHORIZED payment can be captured (status {payment.status.value})"
