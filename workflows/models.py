"""Workflow inputs, commands, results and state: pydantic, Decimal money, never floats.

The wire models (callbacks, charge responses) come from ``ayoconnect.models``; these are Kartu's
own shapes. Field names are snake_case (Kartu's API), unlike the wire's camelCase.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from ayoconnect.models import Amount, CardToken, Customer, CustomerId, Url

from .ids import MAX_STEP_ATTEMPTS, validate_key

DEFAULT_AUTHORIZATION_WINDOW = timedelta(days=7)
DEFAULT_CHALLENGE_WINDOW = timedelta(seconds=300)
# An upper bound keeps the 3DS wait's history and its ``s<n>`` look-up counter bounded.
MAX_CHALLENGE_WINDOW = timedelta(minutes=30)
DEFAULT_POLICY_MARGIN = timedelta(hours=1)
DEFAULT_PROVIDER_POLL_MAX = timedelta(hours=1)
DEFAULT_PROVIDER_ATTENTION_AFTER = timedelta(hours=24)
# Ayoconnect retries a callback after 1, 2 and 5 minutes: wait through all of them.
DEFAULT_WEBVIEW_MARGIN = timedelta(minutes=10)
# Ayoconnect refuses a capture above 120 % of the authorized amount [doc].
MAX_CAPTURE_RATIO = Decimal("1.2")


class KartuModel(BaseModel):
    # Payloads between client and worker: during a rolling deploy one side may be newer and send
    # a field the other does not know yet, so unknown fields are dropped, not refused. Input from
    # people and other services is checked strictly at the edges (gateway schemas, KartuClient,
    # CLI), before it becomes a payload.
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


# --- statuses ---------------------------------------------------------------------------------


class PaymentFlow(StrEnum):
    DIRECT = "DIRECT"
    AUTH_CAPTURE = "AUTH_CAPTURE"


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    CHALLENGE = "CHALLENGE"
    PAID = "PAID"
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    EXPIRED = "EXPIRED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    # The provider has not given a definite answer (outage, a challenge it still shows open):
    # money may have moved, so Kartu says neither PAID nor FAILED and keeps asking.
    PENDING_PROVIDER = "PENDING_PROVIDER"


# The charge is not decided yet: Kartu is waiting for the issuer (3DS) or the provider.
UNDECIDED = frozenset({PaymentStatus.PENDING, PaymentStatus.CHALLENGE})
# ... and with PENDING_PROVIDER: the provider has not given its final word (callbacks wake).
AWAITING_PROVIDER = UNDECIDED | {PaymentStatus.PENDING_PROVIDER}
# What ops may close a NEEDS_ATTENTION payment with: statuses a payment can end in.
CLOSE_STATUSES = frozenset(
    {
        PaymentStatus.REFUNDED,
        PaymentStatus.VOIDED,
        PaymentStatus.EXPIRED,
        PaymentStatus.FAILED,
        PaymentStatus.PAID,
        PaymentStatus.CAPTURED,
    }
)


class CapturePolicy(StrEnum):
    NONE = "none"
    AUTO_CAPTURE = "auto_capture"
    AUTO_VOID = "auto_void"


class RegistrationStatus(StrEnum):
    PENDING = "PENDING"
    REGISTERED = "REGISTERED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    # The cards list (the provider's truth) could not be read for long enough to decide: the
    # callbacks' claim is in ``reason`` (and the card fields, if one said ACTIVE), unconfirmed.
    # Not usable for payments; ``kartu cards`` / reconciliation tell what the provider holds.
    UNCONFIRMED = "UNCONFIRMED"


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    REFUNDED = "REFUNDED"
    FAILED = "FAILED"
    # No definite answer after days of retries: open, waiting for ops' ``resolve``.
    NEEDS_ATTENTION = "NEEDS_ATTENTION"


class UnbindStatus(StrEnum):
    PENDING = "PENDING"
    UNBOUND = "UNBOUND"
    FAILED = "FAILED"


# --- shared pieces --------------------------------------------------------------------------


class Transition(KartuModel):
    at: datetime
    from_status: str
    to_status: str
    reason: str


class IgnoredMessage(KartuModel):
    """A signal or callback that changed nothing, and why (duplicate, late, not allowed)."""

    at: datetime
    name: str
    reason: str


# --- payments -------------------------------------------------------------------------------


class PaymentInput(KartuModel):
    payment_id: str
    customer_id: CustomerId
    amount: Amount
    description: Annotated[str, Field(max_length=255)] | None = None
    card_token: CardToken | None = Field(default=None, repr=False)
    # Compact JWE made by the backend: the clear PAN never enters Temporal.
    encrypted_card: Annotated[str, Field(min_length=1, max_length=8192)] | None = Field(
        default=None, repr=False
    )
    redirect_url: Url
    capture_policy: CapturePolicy = CapturePolicy.NONE
    capture_policy_margin: timedelta = DEFAULT_POLICY_MARGIN
    authorization_window: timedelta = DEFAULT_AUTHORIZATION_WINDOW
    challenge_window: timedelta = DEFAULT_CHALLENGE_WINDOW
    confirmation_url: Url | None = None
    # While the provider gives no definite answer (PENDING_PROVIDER), Kartu asks again on a
    # backoff that grows to this interval, for as long as it takes.
    provider_poll_max: timedelta = DEFAULT_PROVIDER_POLL_MAX
    # Still no answer after this long: NEEDS_ATTENTION (ops are told), and Kartu keeps asking.
    provider_attention_after: timedelta = DEFAULT_PROVIDER_ATTENTION_AFTER
    # Aware only: a naive datetime cannot be compared with workflow time.
    deadline: AwareDatetime | None = None
    # Set by KartuClient, which starts the workflow with its search attributes: the first
    # workflow task then upserts only what differs from them (one history event and one
    # visibility write less per payment). A flag in the input, not a patch: a patch upserts its
    # own marker attribute, and histories started before it (False) replay their upsert.
    search_attributes_at_start: bool = False

    @field_validator("payment_id")
    @classmethod
    def _payment_id(cls, value: str) -> str:
        return validate_key(value, "paymentId")

    @model_validator(mode="after")
    def _one_card(self) -> PaymentInput:
        if (self.card_token is None) == (self.encrypted_card is None):
            raise ValueError("give exactly one of card_token or encrypted_card")
        for name in (
            "authorization_window",
            "challenge_window",
            "capture_policy_margin",
            "provider_poll_max",
            "provider_attention_after",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.challenge_window > MAX_CHALLENGE_WINDOW:
            minutes = int(MAX_CHALLENGE_WINDOW.total_seconds() // 60)
            raise ValueError(f"challenge_window must be at most {minutes} minutes")
        return self


class PaymentRequestSummary(KartuModel):
    """What a second ``pay`` / ``authorize`` with the same payment id must agree on: the
    ``first_outcome`` update compares it with the running payment's input."""

    amount: Decimal
    customer_id: str
    flow: PaymentFlow

    @classmethod
    def of(cls, payment: PaymentInput, flow: PaymentFlow) -> PaymentRequestSummary:
        return cls(amount=payment.amount, customer_id=payment.customer_id, flow=flow)


class CaptureCommand(KartuModel):
    # Checked by the workflow, not here: a bad amount must be refused with a reason (update)
    # or recorded as ignored (signal), not dropped as an undecodable payload.
    amount: Decimal | None = None
    requested_by: str | None = None


class VoidCommand(KartuModel):
    reason: str = "void requested"
    requested_by: str | None = None


class ResolveCommand(KartuModel):
    """Ops' answer to NEEDS_ATTENTION: retry the compensation, or close with a status."""

    action: Literal["retry", "close"]
    status: PaymentStatus | None = None  # for close: the status ops established by hand
    note: str = ""
    resolved_by: str | None = None
    # A close is checked against the provider's status first and refused when the provider
    # contradicts it; ``force`` closes anyway, and then ``note`` must say why (it is recorded).
    force: bool = False

    @model_validator(mode="after")
    def _close_needs_status(self) -> ResolveCommand:
        if self.action == "close" and self.status is None:
            raise ValueError("close needs the status ops established")
        if self.force and not self.note.strip():
            raise ValueError("a forced close needs a note saying why")
        if self.status is not None and self.status not in CLOSE_STATUSES:
            allowed = ", ".join(sorted(CLOSE_STATUSES))
            raise ValueError(f"close status must be one a payment ends in: {allowed}")
        return self


class ReconcileDifference(KartuModel):
    """What reconciliation found a payment's Kartu state and the provider's ledger disagree on
    (signal ``reconcile_difference`` on a running payment: it goes to NEEDS_ATTENTION)."""

    differences: list[str]
    provider_status: str | None = None
    reconciliation_id: str | None = None


class ActionResult(KartuModel):
    """What a capture, void or resolve update did: ``captured`` / ``voided`` / ``resolved``, or
    ``refused`` and why."""

    outcome: Literal["captured", "voided", "resolved", "refused"]
    reason: str | None = None
    status: PaymentStatus
    amount: Decimal | None = None


URL_UNAVAILABLE = "authentication URL unavailable"


class PaymentOutcome(KartuModel):
    """Answer of ``first_outcome``: what the backend tells the customer right away."""

    workflow_id: str
    payment_id: str
    status: PaymentStatus
    authentication_url: str | None = None
    invoice_number: str | None = None
    decline_code: str | None = None
    gateway_code: str | None = None
    reason: str | None = None


class CaptureProgress(KartuModel):
    """A capture's attempt number (its step ``cap``, ``cap2``...) and the amount the current
    attempt sent, kept while its outcome is unresolved (a retry sends the same id and body)."""

    attempt: int = 1
    sent_amount: Decimal | None = None


class VoidProgress(KartuModel):
    """A void's attempt number (``vod``, ``vod2``...) and the reason the current attempt sent."""

    attempt: int = 1
    sent_reason: str | None = None


class PaymentProgress(KartuModel):
    """Where a payment's lifecycle is, beyond its status: what its steps decide on. Part of
    ``PaymentState``, so the ``state`` query shows all of it."""

    # The charge call returned (an answer or a failure): money may have moved.
    charge_answered: bool = False
    # PAID / AUTHORIZED checked against the payment's deadline: the money stays. Until then
    # ``first_outcome`` does not answer, so it never says a status Kartu is about to undo.
    money_kept: bool = False
    # A callback (or reconciliation) said the provider shows a hold Kartu still holds as
    # AUTHORIZED otherwise: the hold asks the status API before it believes it.
    provider_void_hint: bool = False
    # Look-ups callbacks asked for: bounded, so callbacks cannot exhaust the look-up ids.
    callback_lookups: int = 0
    # A cancel arrived while a money call was in flight: acted on once the call's result is
    # recorded (the call itself is never abandoned halfway).
    cancel_requested: bool = False
    # The money's status while NEEDS_ATTENTION waits on ops for a merchant's answer.
    held_status: PaymentStatus | None = None
    capture: CaptureProgress = Field(default_factory=CaptureProgress)
    void: VoidProgress = Field(default_factory=VoidProgress)


class PaymentState(KartuModel):
    payment_id: str
    workflow_id: str
    flow: PaymentFlow
    status: PaymentStatus = PaymentStatus.PENDING
    amount: Decimal
    customer_id: str
    authorized_amount: Decimal | None = None
    captured_amount: Decimal | None = None
    refunded_amount: Decimal | None = None
    # Set when the payment was refunded (by its own compensation or the Refund workflow).
    refunded_at: datetime | None = None
    refund_reason: str | None = None
    invoice_number: str | None = None
    authorization_expires_at: datetime | None = None
    authentication_url: str | None = None
    decline_code: str | None = None
    gateway_code: str | None = None
    decline_reason: str | None = None
    attention_reason: str | None = None
    # Money still to put back ("refund" / "void") while a compensation is unfinished.
    pending_compensation: Literal["refund", "void"] | None = None
    # Until then, a late success of a charge Kartu ended undecided is still watched for.
    late_result_watch_until: datetime | None = None
    # Since then Kartu has been asking the provider for its final word on the charge
    # (PENDING_PROVIDER, then NEEDS_ATTENTION once it took too long); None once it answered.
    provider_answer_awaited_since: datetime | None = None
    progress: PaymentProgress = Field(default_factory=PaymentProgress)
    callbacks_received: int = 0
    # What reconciliation found this payment and the provider's ledger disagree on (bounded).
    reconcile_differences: list[str] = Field(default_factory=list)
    history: list[Transition] = Field(default_factory=list)
    ignored: list[IgnoredMessage] = Field(default_factory=list)

    # --- registration ---------------------------------------------------------------------------

    def outcome(self) -> PaymentOutcome:
        """The ``first_outcome`` answer this state gives (also rebuilt by clients from it)."""
        reason = self.decline_reason or self.attention_reason
        if (
            reason is None
            and self.status is PaymentStatus.CHALLENGE
            and not self.authentication_url
        ):
            reason = URL_UNAVAILABLE
        return PaymentOutcome(
            workflow_id=self.workflow_id,
            payment_id=self.payment_id,
            status=self.status,
            authentication_url=self.authentication_url,
            invoice_number=self.invoice_number,
            decline_code=self.decline_code,
            gateway_code=self.gateway_code,
            reason=reason,
        )


class RegistrationCustomer(Customer):
    """The customer inside a registration payload: the wire model's rules, but a field a newer
    client adds is dropped, not refused (rolling deploys). Input is checked strictly at the
    edges first (gateway schemas, KartuClient), and the webview request sends a plain
    ``Customer``."""

    model_config = ConfigDict(extra="ignore")

    def wire(self) -> Customer:
        return Customer.model_validate(self.model_dump())


class RegistrationInput(KartuModel):
    registration_id: str
    customer: RegistrationCustomer
    redirect_url: Url
    failed_redirect_url: Url | None = None
    # How long past the webview's expiresAt to wait for a late binding callback.
    callback_margin: timedelta = DEFAULT_WEBVIEW_MARGIN

    @field_validator("registration_id")
    @classmethod
    def _registration_id(cls, value: str) -> str:
        return validate_key(value, "registrationId")

    @field_validator("customer", mode="before")
    @classmethod
    def _customer(cls, value: object) -> object:
        # A wire ``Customer`` (what callers build) is taken as its fields.
        if isinstance(value, Customer) and not isinstance(value, RegistrationCustomer):
            return value.model_dump()
        return value


class WebviewInfo(KartuModel):
    url: str
    expires_at: datetime
    reference_number: str | None = None


class RegistrationState(KartuModel):
    registration_id: str
    workflow_id: str
    status: RegistrationStatus = RegistrationStatus.PENDING
    customer_id: str | None = None
    card_token: str | None = Field(default=None, repr=False)
    masked_card: str | None = None
    brand: str | None = None
    webview: WebviewInfo | None = None
    reason: str | None = None
    response_code: str | None = None
    history: list[Transition] = Field(default_factory=list)
    ignored: list[IgnoredMessage] = Field(default_factory=list)


# --- refund and unbind ----------------------------------------------------------------------


class RefundInput(KartuModel):
    payment_id: str
    customer_id: CustomerId
    invoice_number: Annotated[str, Field(min_length=1, max_length=64)]
    amount: Amount
    reason: Annotated[str, Field(min_length=1, max_length=255)] = "refund requested"
    # Which try of "the refund of this payment" (a new run after one ended FAILED): the n-th
    # try sends transactionId step ``rfd<n>`` (``ids.attempt_step``); a look-up comes first,
    # so a payment already refunded is never refunded again.
    attempt: Annotated[int, Field(ge=1, le=MAX_STEP_ATTEMPTS)] = 1

    @field_validator("payment_id")
    @classmethod
    def _payment_id(cls, value: str) -> str:
        return validate_key(value, "paymentId")


class RefundState(KartuModel):
    payment_id: str
    workflow_id: str
    status: RefundStatus = RefundStatus.PENDING
    invoice_number: str
    amount: Decimal
    reason: str
    failure: str | None = None
    error_type: str | None = None
    response_code: str | None = None
    attempt: int = 1
    # This attempt's refund request got a definite "no" (stored by Ayoconnect for its
    # transactionId): asking again needs the next attempt. Otherwise the same one is reused.
    step_spent: bool = False
    rounds: int = 0  # look-up + refund rounds so far
    last_error: str | None = None  # why the last round got no definite answer
    history: list[Transition] = Field(default_factory=list)
    ignored: list[IgnoredMessage] = Field(default_factory=list)


class UnbindInput(KartuModel):
    card_token: CardToken = Field(repr=False)
    customer_id: CustomerId
    # The n-th unbind of this token (after a FAILED one, or a card registered again): step
    # ``unb<n>``, so the provider does not replay an earlier answer.
    attempt: Annotated[int, Field(ge=1, le=MAX_STEP_ATTEMPTS)] = 1


class UnbindState(KartuModel):
    workflow_id: str
    customer_id: str
    attempt: int = 1
    status: UnbindStatus = UnbindStatus.PENDING
    failure: str | None = None
    error_type: str | None = None
    history: list[Transition] = Field(default_factory=list)
