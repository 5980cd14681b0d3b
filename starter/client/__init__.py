"""``KartuClient``: the Python API of Kartu for backend services and ops.

    from starter.client import KartuClient

    kartu = await KartuClient.connect()  # the worker's settings: TEMPORAL_PROFILE, ...
    outcome = await kartu.pay("order_1001", customer_id=..., card_token=..., amount="150000.00",
                              redirect_url="https://merchant.example/done")

Every call validates its input first (one ``InvalidRequest`` naming the field, nothing started),
then talks to Temporal only: the payment workflow is the state, Ayoconnect is reached by
activities alone. Reads go through the workflows' ``state`` query (read-your-writes), never
visibility; only ``find_payments`` and ``list_cards`` search it (eventually consistent).

One module per concern, each adding its methods to ``KartuClient``:

- ``payments``: ``pay``, ``authorize``, ``payment_status``, ``wait_payment``, ``capture``,
  ``void``, ``signal_capture``, ``signal_void``;
- ``resolve``: ``resolve`` (ops' answer to NEEDS_ATTENTION);
- ``refunds``: ``refund``, ``refund_status``;
- ``search``: ``find_payments``, ``find_payments_page``, ``payments_query``, ``refunds_query``;
- ``cards``: ``register_card``, ``registration_status``, ``wait_registration``, ``list_cards``,
  ``list_cards_page``, ``customer_cards``, ``unbind_card``;
- ``provider``: ``provider_status``, ``provider_cards`` (Ayoconnect's own view);
- ``callbacks``: ``deliver_callback`` (the gateway's Ayoconnect callbacks);
- ``core``: connecting and the Temporal mechanics they share; ``summaries``: what the Temporal
  UI shows for each workflow started; ``pages``: cursor pages of the lists.

Beside the client, functions over a Temporal ``Client``: ``reconcile`` (reconciliation runs and
its schedule) and ``unmatched`` (callbacks no workflow took). Errors: ``errors``; answers:
``models`` and the workflows' own (``workflows.models``).
"""

from __future__ import annotations

from .callbacks import CallbacksMixin
from .cards import CardsMixin
from .errors import (
    ActionRefused,
    IdempotencyConflict,
    InvalidRequest,
    KartuError,
    KartuTimeout,
    KartuUnavailable,
    NotFound,
    PaymentNotFound,
    RefundNotFound,
    RegistrationNotFound,
    ReviewNotFound,
    UnbindNotFound,
)
from .models import (
    CallbackDelivery,
    CardSummary,
    CustomerCard,
    CustomerCards,
    PaymentSummary,
    ProviderStatus,
    RegistrationStarted,
)
from .payments import PaymentsMixin
from .refunds import RefundsMixin
from .resolve import ResolveMixin
from .search import SearchMixin

__all__ = [
    "ActionRefused",
    "CallbackDelivery",
    "CardSummary",
    "CustomerCard",
    "CustomerCards",
    "IdempotencyConflict",
    "InvalidRequest",
    "KartuClient",
    "KartuError",
    "KartuTimeout",
    "KartuUnavailable",
    "NotFound",
    "PaymentNotFound",
    "PaymentSummary",
    "ProviderStatus",
    "RefundNotFound",
    "RegistrationNotFound",
    "RegistrationStarted",
    "ReviewNotFound",
    "UnbindNotFound",
]


class KartuClient(
    PaymentsMixin, ResolveMixin, RefundsMixin, SearchMixin, CardsMixin, CallbacksMixin
):
    """Kartu's Python API. Build with ``await KartuClient.connect()`` (environment settings) or
    around an existing ``temporalio`` Client that uses the pydantic data converter."""
