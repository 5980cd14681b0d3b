"""Typed bodies of the Ayoconnect Card Acceptance contract (``shared/ayoconnect-card-api.md``).

Field names are the wire's camelCase on purpose: one model serves the client, the sandbox,
activities and workflows, with no parallel dict shapes. Every model hides input values from
validation errors, so a bad PAN or token never lands in a message or a log.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

CENT = Decimal("0.01")
# IDR amounts beyond this are not card payments (the rupiah's largest card limits are far below).
MAX_AMOUNT = Decimal("999999999999.99")


def _two_places(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("amount must be a finite number")
    if value <= 0:
        raise ValueError("amount must be greater than 0")
    if value > MAX_AMOUNT:
        raise ValueError(f"amount must be at most {MAX_AMOUNT}")
    rounded = value.quantize(CENT)
    if rounded != value:
        raise ValueError("amount must have at most two decimal places")
    return rounded


def _refuse_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("amount must be a decimal string such as '150000.00', not a float")
    return value


def money(value: Decimal | str | int) -> Decimal:
    """Parse an amount the way the wire does: Decimal with two places, never a float."""
    try:
        parsed = Decimal(str(_refuse_float(value)))
    except InvalidOperation:
        raise ValueError("amount must be a decimal number") from None
    return _two_places(parsed)


# An amount written as text (a REST body, a ``kartu --amount``, a string given to KartuClient):
# the wire's decimal string, more than 0, at most two decimals, no leading zero. Decimal() alone
# would take "1e3", "1_000", " 5", "+5" and digits of other scripts. One rule for the gateway's
# schema (this pattern, in its OpenAPI), the CLI and the client (``amount_from_text``).
AMOUNT_TEXT_PATTERN = r"^([1-9][0-9]{0,11}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9]))$"
_AMOUNT_TEXT = re.compile(AMOUNT_TEXT_PATTERN)
_DIGITS = re.compile(r"[0-9]+(\.[0-9]+)?")


def amount_from_text(text: str) -> Decimal:
    """``text`` as an amount if it follows ``AMOUNT_TEXT_PATTERN``; else ValueError saying what
    is wrong (the value itself is never quoted)."""
    if _AMOUNT_TEXT.fullmatch(text):
        return money(text)
    if not _DIGITS.fullmatch(text):
        raise ValueError(
            "amount must be digits with at most two decimals, e.g. 150000.00 "
            "(no sign, exponent, blank or thousands separator)"
        )
    decimals = text.partition(".")[2]
    if len(decimals) > 2:
        raise ValueError("amount must have at most two decimal places")
    money(text)  # 0, 0.00, too large: its own words
    raise ValueError("amount must not start with a 0 (write 5 or 0.50, not 05)")


Amount = Annotated[
    Decimal,
    Field(description="IDR amount, two decimal places; a string on the wire"),
    BeforeValidator(_refuse_float),
    AfterValidator(_two_places),
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
]

TransactionId = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
]
CustomerId = Annotated[
    str, StringConstraints(min_length=6, max_length=16, pattern=r"^[A-Za-z0-9]+$")
]
CardToken = Annotated[
    str, StringConstraints(min_length=40, max_length=40, pattern=r"^[A-Za-z0-9]+$")
]
InvoiceNumber = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ResponseCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")]
CorrelationId = Annotated[
    str, StringConstraints(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")
]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"^https?://\S+$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class WireModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        hide_input_in_errors=True,
        str_strip_whitespace=True,
        populate_by_name=True,
    )


class ResponseModel(BaseModel):
    """Responses tolerate fields they do not know: a provider may add some at any time."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


class Operation(StrEnum):
    PAY = "PAY"
    AUTHORIZE = "AUTHORIZE"
    CAPTURE = "CAPTURE"


class PaymentStatus(StrEnum):
    INITIATED = "INITIATED"
    AUTHENTICATION_IN_PROGRESS = "AUTHENTICATION_IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


class CardStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"


def _max_ten_pairs(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is not None and len(value) > 10:
        raise ValueError("additionalInfo holds at most 10 pairs")
    return value


AdditionalInfo = Annotated[
    dict[
        Annotated[str, StringConstraints(max_length=64)],
        Annotated[str, StringConstraints(max_length=255)],
    ]
    | None,
    AfterValidator(_max_ten_pairs),
]


# --- access token ---------------------------------------------------------------------------


class AccessTokenResponse(ResponseModel):
    accessToken: str
    tokenType: str
    expiresIn: str  # a string on the wire ("3599"), as Ayoconnect sends it
    clientId: str
    responseTime: str | None = None

    @field_validator("expiresIn")
    @classmethod
    def _digits(cls, value: str) -> str:
        if not value.isdigit():
            raise ValueError("expiresIn must be a string of digits")
        return value


# --- common envelope and errors -------------------------------------------------------------


class Envelope(ResponseModel):
    code: int
    responseCode: ResponseCode
    message: str
    responseTime: str | None = None
    transactionId: str | None = None


class ErrorDetail(ResponseModel):
    code: str
    message: str
    details: str | None = None


class ErrorBody(Envelope):
    errors: list[ErrorDetail] = Field(default_factory=list)


# --- registration ---------------------------------------------------------------------------


class Customer(WireModel):
    customerId: CustomerId | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    email: Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    phoneNumber: Annotated[str, StringConstraints(pattern=r"^62[0-9]{7,13}$")]


class GenerateWebviewRequest(WireModel):
    transactionId: TransactionId
    customer: Customer
    redirectUrl: Url
    failedRedirectUrl: Url | None = None
    additionalInfo: AdditionalInfo = None


class Webview(ResponseModel):
    url: str
    expiresAt: datetime


class GenerateWebviewResponse(Envelope):
    webview: Webview
    referenceNumber: str


# --- charges --------------------------------------------------------------------------------


class Order(WireModel):
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    amount: Amount
    currency: Literal["IDR"] = "IDR"
    description: Annotated[str, StringConstraints(max_length=255)] | None = None


class CreateChargeRequest(WireModel):
    transactionId: TransactionId
    customerId: CustomerId
    operation: Operation
    cardToken: CardToken | None = None
    encryptedCard: Annotated[str, StringConstraints(min_length=1, max_length=8192)] | None = None
    order: Order | None = None
    invoiceNumber: InvoiceNumber | None = None  # CAPTURE: the authorization's invoice
    amount: Amount | None = None  # CAPTURE: at most 120 % of the authorized amount
    redirectUrl: Url | None = None
    additionalInfo: AdditionalInfo = None

    @model_validator(mode="after")
    def _shape_per_operation(self) -> CreateChargeRequest:
        if self.operation is Operation.CAPTURE:
            if self.invoiceNumber is None:
                raise ValueError("invoiceNumber is required for CAPTURE")
            if self.amount is None:
                raise ValueError("amount is required for CAPTURE")
            return self
        if (self.cardToken is None) == (self.encryptedCard is None):
            raise ValueError("exactly one of cardToken or encryptedCard is required")
        if self.order is None:
            raise ValueError(f"order is required for {self.operation.value}")
        if self.invoiceNumber is not None or self.amount is not None:
            raise ValueError("invoiceNumber and amount are only for CAPTURE; use order.amount")
        return self


class CreateChargeResponse(Envelope):
    invoiceNumber: str
    operation: Operation | None = None
    status: PaymentStatus
    authenticationUrl: str | None = None
    amount: Amount | None = None
    authorizationExpiresAt: datetime | None = None


class PaymentDetail(ResponseModel):
    invoiceNumber: str
    originalTransactionId: str
    operation: Operation
    status: PaymentStatus
    amount: Amount
    authorizedAmount: Decimal | None = None
    capturedAmount: Decimal | None = None
    refundedAmount: Decimal | None = None
    authorizationExpiresAt: datetime | None = None
    updatedAt: datetime | None = None

    @property
    def moved_amount(self) -> Decimal | None:
        """The provider's figure for what ``status`` says moved: the captured amount for
        CAPTURED, the refunded one for REFUNDED (None if it gave none), else ``amount``."""
        if self.status is PaymentStatus.CAPTURED:
            return self.capturedAmount
        if self.status is PaymentStatus.REFUNDED:
            return self.refundedAmount
        return self.amount


class PaymentStatusResponse(Envelope):
    payment: PaymentDetail


# --- void, refund, unbind, cards ------------------------------------------------------------


class VoidRequest(WireModel):
    transactionId: TransactionId
    customerId: CustomerId
    invoiceNumber: InvoiceNumber
    reason: ShortText


class RefundRequest(WireModel):
    transactionId: TransactionId
    customerId: CustomerId
    invoiceNumber: InvoiceNumber
    amount: Amount
    reason: ShortText


class PaymentActionResponse(Envelope):
    """Answer to void and refund: the payment's invoice and its new status."""

    invoiceNumber: str
    status: PaymentStatus


class UnbindRequest(WireModel):
    transactionId: TransactionId
    customerId: CustomerId
    cardToken: CardToken


class UnbindResponse(Envelope):
    cardToken: str
    status: CardStatus


class Card(ResponseModel):
    cardToken: str
    maskedCard: str
    brand: str
    expiryMonth: str
    expiryYear: str
    status: CardStatus


class CardsListResponse(Envelope):
    customerId: str | None = None
    cards: list[Card]


# --- callbacks ------------------------------------------------------------------------------


class BindingCallback(ResponseModel):
    type: Literal["CARD_BINDING"]
    transactionId: str
    referenceNumber: str
    customerId: str | None = None
    cardToken: str | None = None
    maskedCard: str | None = None
    brand: str | None = None
    expiryMonth: str | None = None
    expiryYear: str | None = None
    status: Literal["ACTIVE", "FAILED"]
    responseCode: ResponseCode


class PaymentCallback(ResponseModel):
    type: Literal["PAYMENT"]
    transactionId: str
    invoiceNumber: str
    operation: Operation
    status: PaymentStatus
    amount: Amount
    responseCode: ResponseCode


Callback = Annotated[BindingCallback | PaymentCallback, Field(discriminator="type")]
# hide_input_in_errors is a setting of the top-level validator: a bare TypeAdapter would print a
# bad callback's whole body, card token included.
CALLBACK_ADAPTER: TypeAdapter[BindingCallback | PaymentCallback] = TypeAdapter(
    Callback, config=ConfigDict(hide_input_in_errors=True)
)


# --- card data (PCI-DSS merchants only; never leaves the backend in clear) -------------------


class CardData(WireModel):
    """Clear card data: only ever passed to ``encrypt_card``; its repr shows nothing."""

    pan: Annotated[str, StringConstraints(pattern=r"^[0-9]{12,19}$")] = Field(repr=False)
    expiryMonth: Annotated[str, StringConstraints(pattern=r"^(0[1-9]|1[0-2])$")] = Field(repr=False)
    expiryYear: Annotated[str, StringConstraints(pattern=r"^[0-9]{2}([0-9]{2})?$")] = Field(
        repr=False
    )
    cvv: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,4}$")] = Field(repr=False)
    cardholderName: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        repr=False
    )

    def __str__(self) -> str:
        return "CardData(<redacted>)"
