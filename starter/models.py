"""Models ``KartuClient`` adds to the workflows' own (summaries, answers of its calls)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from ayoconnect.models import CustomerId
from workflows.models import WebviewInfo


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


class _CustomerIdOnly(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)
    customer_id: CustomerId


class CallbackDelivery(_ClientModel):
    """What became of an Ayoconnect callback: signalled to its workflow, or why not."""

    delivered: bool
    workflow_id: str | None = None
    signal: str | None = None
    reason: str | None = None
