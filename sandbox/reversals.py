"""Void (service 57) and refund (service 58), and the automatic void when an authorization's
window passes on the sandbox clock.

Void: only an AUTHORIZED, uncaptured payment. Refund: only SUCCESS or CAPTURED, only the full
paid or captured amount, only once. Anything else is a rule violation (400, case 26).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ayoconnect.codes import GatewayCode, ServiceCode, response_code
from ayoconnect.models import PaymentActionResponse, PaymentStatus, RefundRequest, VoidRequest

from .auth import CallInfo
from .charges import emit_payment_callback
from .context import SandboxContext
from .envelope import answer, envelope
from .errors import Reply, not_found, rule_violation
from .ledger import Payment

VOID = ServiceCode.VOID
REFUND = ServiceCode.REFUND


def void(ctx: SandboxContext, req: VoidRequest, call: CallInfo) -> Reply:
    payment = _payment_of(ctx, req.invoiceNumber, req.customerId, VOID)
    if payment.status is not PaymentStatus.AUTHORIZED:
        raise rule_violation(VOID, _why_not_voidable(payment))
    now = ctx.clock.now()
    payment = ctx.ledger.save_payment(replace(payment, status=PaymentStatus.VOIDED), now)
    code = response_code(200, VOID, GatewayCode.APPROVED)
    ctx.ledger.record_operation(
        payment,
        "VOID",
        now=now,
        response_code=code,
        amount=payment.authorized_amount,
        transaction_id=req.transactionId,
        correlation_id=call.correlation_id,
        note=req.reason,
    )
    return _action_answer(VOID, payment, req.transactionId, now)


def refund(ctx: SandboxContext, req: RefundRequest, call: CallInfo) -> Reply:
    payment = _payment_of(ctx, req.invoiceNumber, req.customerId, REFUND)
    if payment.status is PaymentStatus.REFUNDED:
        raise rule_violation(REFUND, "the payment was already refunded (one refund per payment)")
    if payment.status not in (PaymentStatus.SUCCESS, PaymentStatus.CAPTURED):
        raise rule_violation(
            REFUND, f"only a SUCCESS or CAPTURED payment can be refunded ({payment.status.value})"
        )
    full = payment.captured_amount if payment.status is PaymentStatus.CAPTURED else payment.amount
    if req.amount != full:
        raise rule_violation(REFUND, f"refunds are full only: amount must equal {full:.2f}")
    now = ctx.clock.now()
    payment = ctx.ledger.save_payment(
        replace(payment, status=PaymentStatus.REFUNDED, refunded_amount=req.amount), now
    )
    code = response_code(200, REFUND, GatewayCode.APPROVED)
    ctx.ledger.record_operation(
        payment,
        "REFUND",
        now=now,
        response_code=code,
        amount=req.amount,
        transaction_id=req.transactionId,
        correlation_id=call.correlation_id,
        note=req.reason,
    )
    return _action_answer(REFUND, payment, req.transactionId, now)


def expire_authorization(ctx: SandboxContext, payment: Payment, now: datetime) -> None:
    """The window passed: the issuer releases the hold; the merchant hears it by callback."""
    payment = ctx.ledger.save_payment(replace(payment, status=PaymentStatus.VOIDED), now)
    code = response_code(200, VOID, GatewayCode.APPROVED)
    ctx.ledger.record_operation(
        payment,
        "EXPIRE",
        now=now,
        response_code=code,
        amount=payment.authorized_amount,
        note="authorization window passed: voided automatically",
    )
    emit_payment_callback(ctx, payment, code)


def _payment_of(
    ctx: SandboxContext, invoice_number: str, customer_id: str, service: ServiceCode
) -> Payment:
    payment = ctx.ledger.payment(invoice_number)
    if payment is None or payment.customer_id != customer_id:
        raise not_found(service, "no payment with this invoiceNumber for this customer")
    return payment


def _why_not_voidable(payment: Payment) -> str:
    if payment.status is PaymentStatus.CAPTURED:
        return "a captured authorization cannot be voided; refund it instead"
    if payment.status is PaymentStatus.VOIDED:
        return "the authorization was already voided or its window passed"
    return f"only an AUTHORIZED payment can be voided (status {payment.status.value})"


def _action_answer(
    service: ServiceCode, payment: Payment, transaction_id: str, now: datetime
) -> Reply:
    body = PaymentActionResponse(
        **envelope(200, service, GatewayCode.APPROVED, "Success", now, transaction_id),
        invoiceNumber=payment.invoice_number,
        status=payment.status,
    )
    return answer(200, body)
