"""Models ``KartuClient`` adds to the workflows' own (summaries, answers of its calls)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from ayoconnect.models import CustomerId
from workflows.lookups import ProviderCardsView, ProviderPaymentView
from workflows.models import PaymentState, WebviewInfo


class _ClientModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistrationStarted(_ClientModel):
    """Answer of ``register_card``: where to send the customer, at once."""

    registration_id: str
    workflow_id: str
    webview: WebviewInfo


class PaymentSummary(_ClientModel):
    """A payment as visibility sees it (search attributes; eventually consistent)."""

    payment_id: str
    workflow_id: str
    workflow_type: str
    running: bool
    flow: str | None = None
    status: str | None = None
    customer_id: str | None = None
    amount: int | None = None  # KartuAmount: whole rupiah
    invoice_number: str | None = None
    authorization_expires_at: datetime | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None


class CardSummary(_ClientModel):
    """A card registered through Kartu (see ``list_cards``)."""

    card_token: str
    masked_card: str | None = None
    brand: str | None = None
    status: str  # ACTIVE, or DISABLED once unbound through Kartu
    registration_id: str


class ProviderStatus(_ClientModel):
    """A payment as Kartu sees it (its workflow's state) beside Ayoconnect's own view."""

    kartu: PaymentState
    provider: ProviderPaymentView


class CustomerCard(_ClientModel):
    """One card of a customer: Ayoconnect's cards list, with Kartu's registration where
    Kartu registered it. ``status`` is the provider's (ACTIVE / DISABLED; None when the
    provider does not list the card), ``kartu_status`` what Kartu's workflows say."""

    card_token: str
    masked_card: str | None = None
    brand: str | None = None
    expiry_month: str | None = None
    expiry_year: str | None = None
    status: str | None = None
    kartu_status: str | None = None
    registration_id: str | None = None


class CustomerCards(_ClientModel):
    """Answer of ``customer_cards``: the provider's list (``provider``: found, unknown or
    unavailable, and why) merged with the cards registered through Kartu."""

    customer_id: str
    provider: str
    reason: str | None = None
    cards: list[CustomerCard]

    @classmethod
    def merged(cls, provider: ProviderCardsView, registered: list[CardSummary]) -> CustomerCards:
        mine = {c.card_token: c for c in registered}
        cards = []
        for card in provider.cards:
            known = mine.pop(card.cardToken, None)
            cards.append(
                CustomerCard(
                    card_token=card.cardToken,
                    masked_card=card.maskedCard,
                    brand=card.brand,
                    expiry_month=card.expiryMonth,
                    expiry_year=card.expiryYear,
                    status=card.status.value,
                    kartu_status=known.status if known else None,
                    registration_id=known.registration_id if known else None,
                )
            )
        cards += [
            CustomerCard(
                card_token=c.card_token,
                masked_card=c.masked_card,
                brand=c.brand,
                kartu_status=c.status,
                registration_id=c.registration_id,
            )
            for c in mine.values()
        ]
        return cls(
            customer_id=provider.customer_id,
            provider=provider.outcome,
            reason=provider.reason,
            cards=cards,
        )


class _CustomerIdOnly(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    customer_id: CustomerId


class CallbackDelivery(_ClientModel):
    """What became of an Ayoconnect callback: signalled to its workflow, or why not."""

    delivered: bool
    workflow_id: str | None = None
    signal: str | None = None
    reason: str | None = None
    # Not delivered because its workflow already closed in the state the callback reports (a
    # frictionless payment's own callback, arriving after it ended): nothing to store or check.
    agrees_with_closed: bool = False
