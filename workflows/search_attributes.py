"""Kartu's search attributes, typed once: workflows upsert them, and
``worker.register_search_attributes`` registers ``ALL_KEYS`` on a dev or test server.

Stored in clear outside the payload codec: never a card token, PAN, name, e-mail or phone here.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

PAYMENT_STATUS = SearchAttributeKey.for_keyword("KartuPaymentStatus")
FLOW = SearchAttributeKey.for_keyword("KartuFlow")
CUSTOMER_ID = SearchAttributeKey.for_keyword("KartuCustomerId")
AMOUNT = SearchAttributeKey.for_int("KartuAmount")
AUTH_EXPIRES_AT = SearchAttributeKey.for_datetime("KartuAuthExpiresAt")
INVOICE_NUMBER = SearchAttributeKey.for_keyword("KartuInvoiceNumber")

ALL_KEYS: tuple[SearchAttributeKey, ...] = (
    PAYMENT_STATUS,
    FLOW,
    CUSTOMER_ID,
    AMOUNT,
    AUTH_EXPIRES_AT,
    INVOICE_NUMBER,
)


def whole_rupiah(amount: Decimal) -> int:
    """KartuAmount is an Int: whole rupiah, cents dropped (IDR cards carry none in practice)."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_DOWN))


def updates(
    *,
    status: str | None = None,
    flow: str | None = None,
    customer_id: str | None = None,
    amount: Decimal | None = None,
    auth_expires_at: datetime | None = None,
    invoice_number: str | None = None,
) -> list[SearchAttributeUpdate]:
    """The upserts for the values given; None values are left as they are."""
    out: list[SearchAttributeUpdate] = []
    if status is not None:
        out.append(PAYMENT_STATUS.value_set(status))
    if flow is not None:
        out.append(FLOW.value_set(flow))
    if customer_id is not None:
        out.append(CUSTOMER_ID.value_set(customer_id))
    if amount is not None:
        out.append(AMOUNT.value_set(whole_rupiah(amount)))
    if auth_expires_at is not None:
        out.append(AUTH_EXPIRES_AT.value_set(auth_expires_at))
    if invoice_number is not None:
        out.append(INVOICE_NUMBER.value_set(invoice_number))
    return out
