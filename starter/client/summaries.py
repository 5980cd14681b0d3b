"""What the Temporal UI (and ``temporal workflow describe``) shows for each workflow Kartu starts:
its ``static_summary`` (one line in the workflow list) and ``static_details`` (the workflow's
page), so a payment says what it is without opening its input.

Only what identifies the request: ids, flow, amount, customer, attempt. Never card data (no
card token, no encrypted card: an unbind is named by its customer alone) and no free text (a
description or a reason could hold anything). Both go through Kartu's data converter, so they
are encrypted in Temporal like every payload; the UI shows them through the codec endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from workflows import policies
from workflows.models import PaymentFlow, PaymentInput, RefundInput, RegistrationInput, UnbindInput

_FLOWS = {
    PaymentFlow.DIRECT: ("Payment", "DIRECT (charged at once)"),
    PaymentFlow.AUTH_CAPTURE: ("Authorization", "AUTH_CAPTURE (held, captured later)"),
}


@dataclass(frozen=True)
class UiSummary:
    summary: str
    details: str

    def start_options(self) -> dict[str, Any]:
        """Keyword arguments of ``start_workflow`` / ``WithStartWorkflowOperation``: what the
        UI shows, and the workflow task timeout every Kartu workflow runs with
        (``policies.WORKFLOW_TASK_TIMEOUT``)."""
        return {
            "static_summary": self.summary,
            "static_details": self.details,
            "task_timeout": policies.WORKFLOW_TASK_TIMEOUT,
        }


def rupiah(amount: Decimal) -> str:
    return f"IDR {amount:,.2f}"


def _details(*rows: tuple[str, object]) -> str:
    # One markdown list item a row: the UI renders Temporal's markdown subset.
    return "\n".join(f"- **{name}**: {value}" for name, value in rows if value is not None)


def payment(payment: PaymentInput, flow: PaymentFlow) -> UiSummary:
    kind, flow_text = _FLOWS[flow]
    card = "saved card (token)" if payment.card_token else "card data, encrypted (PCI-DSS)"
    rows: list[tuple[str, object]] = [
        ("payment", payment.payment_id),
        ("flow", flow_text),
        ("amount", rupiah(payment.amount)),
        ("customer", payment.customer_id),
        ("card", card),
    ]
    if flow is PaymentFlow.AUTH_CAPTURE:
        rows.append(("capture policy", payment.capture_policy.value))
    if payment.deadline is not None:
        rows.append(("deadline", payment.deadline.isoformat()))
    return UiSummary(
        f"{kind} {rupiah(payment.amount)} · customer {payment.customer_id}", _details(*rows)
    )


def registration(registration: RegistrationInput) -> UiSummary:
    customer = registration.customer.customerId
    who = f"customer {customer}" if customer else "new customer"
    rows = [("registration", registration.registration_id), ("customer", customer or "new")]
    return UiSummary(f"Card registration · {who}", _details(*rows))


def refund(refund: RefundInput) -> UiSummary:
    attempt = f" (attempt {refund.attempt})" if refund.attempt > 1 else ""
    rows: list[tuple[str, object]] = [
        ("payment", refund.payment_id),
        ("amount", rupiah(refund.amount)),
        ("customer", refund.customer_id),
        ("invoice", refund.invoice_number),
        ("attempt", refund.attempt),
    ]
    return UiSummary(
        f"Refund {rupiah(refund.amount)} of payment {refund.payment_id}{attempt}", _details(*rows)
    )


def unbind(unbind: UnbindInput) -> UiSummary:
    attempt = f" (attempt {unbind.attempt})" if unbind.attempt > 1 else ""
    rows = [("customer", unbind.customer_id), ("attempt", unbind.attempt)]
    return UiSummary(f"Unbind a card of customer {unbind.customer_id}{attempt}", _details(*rows))


def lookup(what: str) -> UiSummary:
    return UiSummary(
        f"Look-up at Ayoconnect: {what}",
        _details(("asks", f"Ayoconnect's view of {what}"), ("changes", "nothing (read-only)")),
    )


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def reconciliation(since: timedelta, confirm_after: timedelta, *, scheduled: bool) -> UiSummary:
    how = "scheduled" if scheduled else "on demand"
    rows = [
        ("window", f"the last {_span(since)}"),
        ("confirm after", _span(confirm_after)),
        ("run", how),
    ]
    summary = f"Reconciliation with Ayoconnect, last {_span(since)} ({how})"
    return UiSummary(summary, _details(*rows))
