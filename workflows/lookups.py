"""Read-only look-ups at Ayoconnect for people and backends: a payment's status as the provider
sees it, a customer's cards list. ``KartuClient`` talks only to Temporal, so a look-up is a short
workflow (id ``lookup-<uuid>``, made by the client) around one read activity; it moves no money
and changes no other workflow.

A look-up always completes with an answer: ``found``, ``unknown`` (the provider does not know the
payment or customer: 404) or ``unavailable`` (no answer after the read policy's retries). Its
transactionIds are ``lk<24 characters of the workflow id>-s1`` / ``-l1``: one per look-up, so
the provider never answers a look-up with another one's stored reply.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Literal

from temporalio import workflow

from . import ids
from .provider import Provider, ProviderError

with workflow.unsafe.imports_passed_through():
    from pydantic import Field, model_validator

    from ayoconnect.models import Card, PaymentDetail

    from .models import KartuModel

LOOKUP_PREFIX = "lookup-"
LookupOutcome = Literal["found", "unknown", "unavailable"]
_KEY_TAIL = re.compile(r"^[A-Za-z0-9_]{24,}\Z")


def lookup_key(workflow_id: str) -> str:
    """The transactionId key of a look-up: ``lk`` + 24 characters of ``lookup-<uuid hex>``
    (readable back to the workflow), or of a digest for an id of another shape."""
    tail = workflow_id.removeprefix(LOOKUP_PREFIX)
    if not _KEY_TAIL.match(tail):
        tail = hashlib.sha256(workflow_id.encode()).hexdigest()
    return ids.validate_key("lk" + tail[: ids.KEY_MAX_LENGTH - 2], "look-up key")


# --- models -----------------------------------------------------------------------------------


class ProviderPaymentQuery(KartuModel):
    """Which payment to look up: by invoice number once Kartu knows it, else by the charge's
    transactionId (``<paymentId>-pay`` / ``-auth``)."""

    payment_id: str
    customer_id: str
    invoice_number: str | None = None
    original_transaction_id: str | None = None

    @model_validator(mode="after")
    def _one_reference(self) -> ProviderPaymentQuery:
        if (self.invoice_number is None) == (self.original_transaction_id is None):
            raise ValueError("give exactly one of invoice_number or original_transaction_id")
        return self


class ProviderPaymentView(KartuModel):
    """Ayoconnect's own view of a payment (``payment`` when ``outcome`` is ``found``)."""

    payment_id: str
    outcome: LookupOutcome
    payment: PaymentDetail | None = None
    reason: str | None = None
    checked_at: datetime
    lookup_id: str


class ProviderCardsQuery(KartuModel):
    customer_id: str


class ProviderCardsView(KartuModel):
    """Ayoconnect's Get Cards List for a customer (``cards`` when ``outcome`` is ``found``)."""

    customer_id: str
    outcome: LookupOutcome
    cards: list[Card] = Field(default_factory=list)
    reason: str | None = None
    checked_at: datetime
    lookup_id: str


# --- workflows --------------------------------------------------------------------------------


def _not_answered(err: ProviderError) -> tuple[LookupOutcome, str]:
    if err.failure.not_found:
        return "unknown", f"unknown at the provider: {err.failure.message}"
    return "unavailable", f"the provider gave no answer: {err}"


@workflow.defn(name="ProviderPaymentLookup")
class ProviderPaymentLookupWorkflow:
    @workflow.run
    async def run(self, query: ProviderPaymentQuery) -> ProviderPaymentView:
        info = workflow.info()
        # The payment flow's correlation id: a status check is one more call of that flow.
        provider = Provider(
            key=lookup_key(info.workflow_id),
            customer_id=query.customer_id,
            correlation_id=ids.payment_correlation_id(query.payment_id),
        )
        try:
            if query.invoice_number is not None:
                detail = await provider.status(invoice_number=query.invoice_number)
            else:
                detail = await provider.status(
                    original_transaction_id=query.original_transaction_id
                )
        except ProviderError as err:
            outcome, reason = _not_answered(err)
            return ProviderPaymentView(
                payment_id=query.payment_id,
                outcome=outcome,
                reason=reason,
                checked_at=workflow.now(),
                lookup_id=info.workflow_id,
            )
        return ProviderPaymentView(
            payment_id=query.payment_id,
            outcome="found",
            payment=detail,
            checked_at=workflow.now(),
            lookup_id=info.workflow_id,
        )


@workflow.defn(name="ProviderCardsLookup")
class ProviderCardsLookupWorkflow:
    @workflow.run
    async def run(self, query: ProviderCardsQuery) -> ProviderCardsView:
        info = workflow.info()
        provider = Provider(
            key=lookup_key(info.workflow_id),
            customer_id=query.customer_id,
            correlation_id=ids.correlation_id(info.workflow_id),
        )
        try:
            listed = await provider.list_cards()
        except ProviderError as err:
            outcome, reason = _not_answered(err)
            return ProviderCardsView(
                customer_id=query.customer_id,
                outcome=outcome,
                reason=reason,
                checked_at=workflow.now(),
                lookup_id=info.workflow_id,
            )
        return ProviderCardsView(
            customer_id=query.customer_id,
            outcome="found",
            cards=listed.cards,
            checked_at=workflow.now(),
            lookup_id=info.workflow_id,
        )
