"""How a refund made by the Refund workflow (``refund-<paymentId>``) shows in a payment's reads
and searches: the payment workflow closed PAID or CAPTURED long before, so Kartu's reads merge
the refund's state in (``with_refund``) and its searches look at refund workflows too
(``REFUNDED_FILTER``: KartuFlow=REFUND, KartuPaymentStatus=REFUNDED). Pure functions: the client
does the round trips.
"""

from __future__ import annotations

from collections.abc import Iterable

from workflows import search_attributes as sa
from workflows.ids import REFUND_PREFIX, InvalidKeyError, validate_key
from workflows.models import (
    PaymentState,
    PaymentStatus,
    RefundState,
    RefundStatus,
    Transition,
)
from workflows.refund import REFUND_FLOW

from .models import PaymentSummary

# A payment reads REFUNDED through its refund only from these: nothing else can be refunded.
REFUNDABLE = frozenset({PaymentStatus.PAID, PaymentStatus.CAPTURED})
REFUNDED_FILTER = (
    f"{sa.FLOW.name} = '{REFUND_FLOW}' AND {sa.PAYMENT_STATUS.name} = '{RefundStatus.REFUNDED}'"
)


def with_refund(state: PaymentState, refund: RefundState) -> PaymentState:
    """``state`` as it reads after ``refund`` ended REFUNDED: status REFUNDED, the refunded
    amount, time and reason, and the refund's transition at the end of the history."""
    if refund.status is not RefundStatus.REFUNDED or state.status not in REFUNDABLE:
        return state
    refunded = next(
        (t for t in reversed(refund.history) if t.to_status == RefundStatus.REFUNDED), None
    )
    history = list(state.history)
    if refunded is not None:
        history.append(
            Transition(
                at=refunded.at,
                from_status=state.status.value,
                to_status=PaymentStatus.REFUNDED.value,
                reason=f"{refund.workflow_id}: {refunded.reason}",
            )
        )
    return state.model_copy(
        update={
            "status": PaymentStatus.REFUNDED,
            "refunded_amount": refund.amount,
            "refunded_at": refunded.at if refunded is not None else None,
            "refund_reason": refund.reason,
            "history": history,
        }
    )


def refunds_query(customer_id: str | None = None) -> str:
    """Refund workflows that ended REFUNDED (``customer_id`` already validated)."""
    query = REFUNDED_FILTER
    if customer_id is not None:
        query += f" AND {sa.CUSTOMER_ID.name} = '{customer_id}'"
    return query


def refunded_among_query(payment_ids: Iterable[str]) -> str:
    """Which of these payments (validated ids) a Refund workflow refunded."""
    return with_ids(REFUNDED_FILTER, (REFUND_PREFIX + p for p in payment_ids))


def with_ids(query: str, workflow_ids: Iterable[str]) -> str:
    return f"{query} AND WorkflowId IN ({_quoted(workflow_ids)})"


def refunded_payment_id(workflow_id: str) -> str | None:
    """The payment a refund workflow id names, None for another id."""
    if not workflow_id.startswith(REFUND_PREFIX):
        return None
    try:
        return validate_key(workflow_id.removeprefix(REFUND_PREFIX))
    except InvalidKeyError:
        return None


def marked(found: Iterable[PaymentSummary], refunded: set[str], drop: bool) -> list[PaymentSummary]:
    """Summaries with the refunded ones said REFUNDED, or left out (``drop``: a search for
    PAID or CAPTURED must not list a payment that was refunded since)."""
    out: list[PaymentSummary] = []
    for summary in found:
        if summary.payment_id in refunded and summary.status in REFUNDABLE:
            if drop:
                continue
            summary = summary.model_copy(update={"status": PaymentStatus.REFUNDED.value})
        out.append(summary)
    return out


def payment_ids_of(found: Iterable[PaymentSummary]) -> list[str]:
    """Ids of the PAID / CAPTURED payments among ``found`` that a refund may have changed.
    Only valid keys: a workflow started by hand under an odd id never reaches a query."""
    out: list[str] = []
    for summary in found:
        if summary.status in REFUNDABLE:
            try:
                out.append(validate_key(summary.payment_id))
            except InvalidKeyError:
                continue
    return out


def _quoted(values: Iterable[str]) -> str:
    # Every value is a validated key or a workflow id derived from one: no quote can occur.
    return ", ".join(f"'{v}'" for v in values)
