"""Reconciliation's shapes: its input and report, what its activities exchange with it, the
payment review it starts and the unmatched callbacks it reads.

Payloads between client, workflows and activities, so ``KartuModel`` (unknown fields dropped,
money Decimal). Nothing here carries card data: a callback's card token lives only in the
``UnmatchedCallbackInput`` payload, which Kartu's codec encrypts.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ayoconnect.models import BindingCallback, PaymentCallback, PaymentDetail

from . import ids
from .models import (
    IgnoredMessage,
    KartuModel,
    PaymentFlow,
    PaymentStatus,
    ResolveCommand,
    Transition,
)

DEFAULT_WINDOW = timedelta(hours=48)
# Long enough for a payment's own workflow to catch up with what the provider already knows
# (a callback in flight, a refund being recorded, a capture answered but not yet stored).
DEFAULT_CONFIRM_AFTER = timedelta(seconds=60)
MAX_WINDOW = timedelta(days=90)
# Each report list stops growing here (a disaster must not make the report outgrow a payload).
MAX_LISTED = 1000

# Activity names: the workflows call them by name, so workflow code never imports the activity
# module (which needs a Temporal client and Kartu's Python API).
LIST_PAYMENTS = "reconcile_list_payments"
LIST_CALLBACKS = "reconcile_list_callbacks"
OBSERVE = "reconcile_observe"
RAISE = "reconcile_raise"

# Workflow ids and search-attribute values of the reconciliation's own workflows.
REVIEW_PREFIX = "review-"
CALLBACK_PREFIX = "callback-"
SCHEDULE_ID = "kartu-reconciliation"
RECONCILIATION_FLOW = "RECONCILIATION"
REVIEW_FLOW = "REVIEW"
CALLBACK_FLOW = "CALLBACK"
PAYMENT_WORKFLOW_TYPES = ("DirectPayment", "AuthCapturePayment")
CALLBACK_WORKFLOW_TYPE = "UnmatchedCallback"
REVIEW_WORKFLOW_TYPE = "PaymentReview"
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def review_workflow_id(payment_id: str) -> str:
    return REVIEW_PREFIX + payment_id


class Verdict(StrEnum):
    """What one comparison of Kartu's state with the provider's says."""

    AGREE = "AGREE"
    DIFFER = "DIFFER"
    # Kartu's workflow is still deciding (charge, 3DS, a look-up on its backoff).
    IN_PROGRESS = "IN_PROGRESS"
    # Already NEEDS_ATTENTION: ops have it; not raised again.
    AWAITING_OPS = "AWAITING_OPS"
    # The provider does not know the payment, or could not be asked; or Kartu's state unread.
    UNKNOWN = "UNKNOWN"


# --- input and report ---------------------------------------------------------------------


class ReconcileInput(KartuModel):
    """``since``: how far back to look (payments started or closed since then, and every open
    one). ``confirm_after``: a difference is looked at again after this long before it is
    raised. The ``carry_*`` fields are the workflow's own, across continue-as-new."""

    since: timedelta = DEFAULT_WINDOW
    reconciliation_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    confirm_after: timedelta = DEFAULT_CONFIRM_AFTER
    batch_size: Annotated[int, Field(ge=1, le=200)] = 50
    page_size: Annotated[int, Field(ge=1, le=1000)] = 500
    # Pages per run before continue-as-new keeps the history bounded.
    pages_per_run: Annotated[int, Field(ge=1, le=1000)] = 20
    carry_report: ReconcileReport | None = None
    carry_page_token: str | None = None
    carry_lookups: int = 0

    @model_validator(mode="after")
    def _bounds(self) -> ReconcileInput:
        if not timedelta(0) < self.since <= MAX_WINDOW:
            raise ValueError(f"since must be positive and at most {MAX_WINDOW.days} days")
        if self.confirm_after < timedelta(0) or self.confirm_after > timedelta(hours=1):
            raise ValueError("confirm_after must be between 0 and 1 hour")
        return self


class PaymentDifference(KartuModel):
    payment_id: str
    workflow_id: str
    kartu_status: str | None = None
    provider_status: str | None = None
    differences: list[str]
    running: bool | None = None
    # How it was raised: the payment signalled, a review started, or why it was not.
    raised: str | None = None


class CallbackFinding(KartuModel):
    """An unmatched callback in the window, and what its check found (None: still checking)."""

    callback_workflow_id: str
    type: str
    transaction_id: str
    status: str
    received_at: datetime
    payment_id: str | None = None
    routed_to: str | None = None  # the workflow the gateway tried to signal
    reason: str = ""  # why it was not delivered
    finding: str | None = None


class ReconcileReport(KartuModel):
    reconciliation_id: str
    started_at: datetime
    finished_at: datetime | None = None
    since: timedelta
    window_start: datetime
    checked: int = 0
    agreeing: int = 0
    in_progress: list[str] = Field(default_factory=list)
    needs_attention: list[str] = Field(default_factory=list)
    differing: list[PaymentDifference] = Field(default_factory=list)
    unknown_at_provider: list[str] = Field(default_factory=list)
    # No Kartu payment by that id (a callback's), or its state could not be read.
    kartu_unknown: list[str] = Field(default_factory=list)
    unmatched_callbacks: list[CallbackFinding] = Field(default_factory=list)
    # Entries left out of the lists above past MAX_LISTED (they were still counted in checked).
    omitted: int = 0


# --- activities ---------------------------------------------------------------------------


class PaymentRef(KartuModel):
    payment_id: str
    workflow_id: str
    # From visibility; None when unknown (a callback's payment): the activity describes it.
    running: bool | None = None


class PaymentPageCall(KartuModel):
    window_start: datetime
    page_size: int = 500
    page_token: str | None = None  # base64 of visibility's next-page token


class PaymentPage(KartuModel):
    payments: list[PaymentRef]
    next_page_token: str | None = None


class CallbackPageCall(KartuModel):
    window_start: datetime
    limit: int = MAX_LISTED


class CallbackPage(KartuModel):
    callbacks: list[CallbackFinding]


class ObserveItem(KartuModel):
    ref: PaymentRef
    # The provider look-up's transactionId, chosen by the workflow (deterministic).
    lookup_transaction_id: str


class ObserveCall(KartuModel):
    items: list[ObserveItem]


class KartuView(KartuModel):
    """The part of a payment's state reconciliation compares (from ``payment_status``)."""

    payment_id: str
    workflow_id: str
    flow: PaymentFlow
    status: PaymentStatus
    amount: Decimal
    customer_id: str
    invoice_number: str | None = None
    authorized_amount: Decimal | None = None
    captured_amount: Decimal | None = None
    refunded_amount: Decimal | None = None
    authorization_expires_at: datetime | None = None
    # The running workflow is still putting money back, or still watching for a late result
    # of a charge it ended undecided: what the provider says may be its next step.
    pending_compensation: str | None = None
    late_result_watch_until: datetime | None = None


ProviderOutcome = Literal["found", "not_found", "unavailable", "not_asked"]


class Observation(KartuModel):
    """One payment as Kartu and the provider see it, at ``observed_at``."""

    ref: PaymentRef
    observed_at: datetime
    kartu: KartuView | None = None
    kartu_error: str | None = None  # why Kartu's state could not be read
    kartu_missing: bool = False  # no such payment workflow at all
    provider_outcome: ProviderOutcome = "not_asked"
    provider: PaymentDetail | None = None
    provider_error: str | None = None


class ObserveResult(KartuModel):
    observations: list[Observation]


class RaiseItem(KartuModel):
    payment_id: str
    workflow_id: str
    running: bool | None = None
    kartu_status: str | None = None
    provider_status: str | None = None
    differences: list[str]
    customer_id: str | None = None
    amount: Decimal | None = None
    invoice_number: str | None = None


class RaiseCall(KartuModel):
    reconciliation_id: str
    items: list[RaiseItem]


class RaiseResult(KartuModel):
    raised: dict[str, str]  # payment id -> how it was raised, or why not


# --- payment review -----------------------------------------------------------------------


class ReviewStatus(StrEnum):
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    RESOLVED = "RESOLVED"


class ReviewInput(KartuModel):
    """A difference found on a payment whose workflow is closed (or unknown to Kartu)."""

    payment_id: str
    payment_workflow_id: str
    kartu_status: str | None = None
    provider_status: str | None = None
    differences: list[str]
    reconciliation_id: str | None = None
    customer_id: str | None = None
    amount: Decimal | None = None
    invoice_number: str | None = None


class ReviewState(KartuModel):
    payment_id: str
    workflow_id: str
    payment_workflow_id: str
    status: ReviewStatus = ReviewStatus.NEEDS_ATTENTION
    kartu_status: str | None = None
    provider_status: str | None = None
    differences: list[str]
    # Reconciliations (and callback checks) that found it, newest last, bounded.
    raised_by: list[str] = Field(default_factory=list)
    resolution: ResolveCommand | None = None
    history: list[Transition] = Field(default_factory=list)
    ignored: list[IgnoredMessage] = Field(default_factory=list)


# --- unmatched callbacks --------------------------------------------------------------------

Callback = Annotated[BindingCallback | PaymentCallback, Field(discriminator="type")]


class UnmatchedCallbackInput(KartuModel):
    """A signed, well-formed callback no running workflow took, as the gateway received it."""

    callback: Callback = Field(repr=False)
    received_at: datetime
    body_digest: str  # sha256 hex of the raw body
    routed_to: str | None = None  # the workflow the gateway tried
    reason: str = ""


class UnmatchedCallbackMemo(KartuModel):
    """The memo of an ``UnmatchedCallback`` workflow: what lists need, no card data."""

    type: str
    transaction_id: str
    status: str
    received_at: datetime
    routed_to: str | None = None
    reason: str = ""
    payment_id: str | None = None
    finding: str | None = None


def safe_text(value: str, limit: int = 64) -> str:
    """For ids, memos and logs: no control characters, bounded (the gateway's rule)."""
    return _UNSAFE.sub("?", value[:limit])


def callback_workflow_id(transaction_id: str, body_digest: str) -> str:
    """``callback-<transactionId>-<digest>``: the same delivery twice is one workflow."""
    return f"{CALLBACK_PREFIX}{_UNSAFE.sub('_', transaction_id[:64])}-{body_digest[:16]}"


def callback_payment_id(callback: BindingCallback | PaymentCallback) -> str | None:
    """The payment a PAYMENT callback names (``<paymentId>-pay`` / ``-auth``), else None."""
    if not isinstance(callback, PaymentCallback):
        return None
    try:
        route = ids.parse_callback_transaction_id(callback.transactionId)
    except ids.UnroutableCallbackError:
        return None
    return route.key if route.signal == "payment_callback" else None


def callback_memo(request: UnmatchedCallbackInput) -> UnmatchedCallbackMemo:
    callback = request.callback
    return UnmatchedCallbackMemo(
        type=callback.type,
        transaction_id=safe_text(callback.transactionId),
        status=str(callback.status),
        received_at=request.received_at,
        routed_to=request.routed_to,
        reason=request.reason[:300],
        payment_id=callback_payment_id(callback),
    )


class UnmatchedCallbackState(KartuModel):
    workflow_id: str
    memo: UnmatchedCallbackMemo
    observation: Observation | None = None
    verdict: Verdict | None = None
    differences: list[str] = Field(default_factory=list)
    raised: str | None = None


ReconcileInput.model_rebuild()
