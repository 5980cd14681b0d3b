"""Activity inputs and outputs: a wire request from ``ayoconnect.models`` plus the flow's ids.

The workflow chooses every id (transactionId, look-up transactionId, correlation id), so a
retried activity sends exactly what the first attempt sent.

Rolling deploys: an envelope drops a field a newer worker added (its ids and wire request still
decode), but the wire request inside stays strict (``WireModel``): an older worker refuses a
request carrying a field it does not know rather than send Ayoconnect a request other than the
one the workflow decided; the activity's retry then lands on a newer worker.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ayoconnect.models import (
    CorrelationId,
    CreateChargeRequest,
    GenerateWebviewRequest,
    RefundRequest,
    TransactionId,
    UnbindRequest,
    VoidRequest,
)


class CallModel(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


class WebviewCall(CallModel):
    request: GenerateWebviewRequest
    correlation_id: CorrelationId


class ChargeCall(CallModel):
    """PAY, AUTHORIZE or CAPTURE; ``lookup_transaction_id`` is used for the status look-up a
    retry makes before resending."""

    request: CreateChargeRequest = Field(repr=False)
    correlation_id: CorrelationId
    lookup_transaction_id: TransactionId


class VoidCall(CallModel):
    request: VoidRequest
    correlation_id: CorrelationId
    lookup_transaction_id: TransactionId


class RefundCall(CallModel):
    request: RefundRequest
    correlation_id: CorrelationId
    lookup_transaction_id: TransactionId


class StatusCall(CallModel):
    transaction_id: TransactionId
    customer_id: str
    correlation_id: CorrelationId
    invoice_number: str | None = None
    original_transaction_id: str | None = None

    @model_validator(mode="after")
    def _one_reference(self) -> StatusCall:
        if (self.invoice_number is None) == (self.original_transaction_id is None):
            raise ValueError("give exactly one of invoice_number or original_transaction_id")
        return self


class CardsListCall(CallModel):
    transaction_id: TransactionId
    customer_id: str
    correlation_id: CorrelationId


class UnbindCall(CallModel):
    request: UnbindRequest = Field(repr=False)
    correlation_id: CorrelationId


class MerchantConfirmation(CallModel):
    """Posted to the payment's confirmation URL: no card data, only the payment's outcome."""

    url: str
    payment_id: str
    workflow_id: str
    status: str
    amount: Decimal
    invoice_number: str | None = None


class MerchantConfirmationResult(CallModel):
    http_status: int
