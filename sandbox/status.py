"""Payment status (service 55): by invoiceNumber, or by originalTransactionId, which also
finds the payment a capture, void or refund touched, so a client can resolve an ambiguous
failure of any money-moving call."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

from ayoconnect.codes import GatewayCode, ServiceCode
from ayoconnect.models import (
    CustomerId,
    InvoiceNumber,
    PaymentDetail,
    PaymentStatusResponse,
    TransactionId,
)

from .auth import CallInfo
from .clock import wire_datetime
from .context import SandboxContext
from .envelope import answer, envelope
from .errors import Reply, not_found

SERVICE = ServiceCode.PAYMENT_STATUS


class StatusQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    transactionId: TransactionId
    customerId: CustomerId
    invoiceNumber: InvoiceNumber | None = None
    originalTransactionId: TransactionId | None = None

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if (self.invoiceNumber is None) == (self.originalTransactionId is None):
            raise ValueError("give exactly one of invoiceNumber or originalTransactionId")
        return self


def payment_status(ctx: SandboxContext, query: StatusQuery, call: CallInfo) -> Reply:
    if query.invoiceNumber is not None:
        payment = ctx.ledger.payment(query.invoiceNumber)
    else:
        payment = ctx.ledger.payment_by_transaction(str(query.originalTransactionId))
    if payment is None or payment.customer_id != query.customerId:
        raise not_found(SERVICE, "no payment with this reference for this customer")
    now = ctx.clock.now()
    detail = PaymentDetail(
        invoiceNumber=payment.invoice_number,
        originalTransactionId=payment.original_transaction_id,
        operation=payment.operation,
        status=payment.status,
        amount=payment.amount,
        authorizedAmount=payment.authorized_amount,
        capturedAmount=payment.captured_amount,
        refundedAmount=payment.refunded_amount,
        authorizationExpiresAt=(
            None
            if payment.authorization_expires_at is None
            else wire_datetime(payment.authorization_expires_at)
        ),
        updatedAt=wire_datetime(payment.updated_at),
    )
    body = PaymentStatusResponse(
        **envelope(200, SERVICE, GatewayCode.APPROVED, "Success", now, query.transactionId),
        payment=detail,
    )
    return answer(200, body)
