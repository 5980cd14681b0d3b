"""What the Temporal UI shows of a running flow (``workflow.set_current_details``): its status,
what it is (flow, amount, customer, invoice) and the latest reason, kept current at every
transition. No card data: states carry none (tokens and encrypted cards live in inputs only).

Metadata, not a command: changing it never affects replay."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from temporalio import workflow


def describe(state: Any) -> str:
    """Temporal markdown for a flow's state (payments, refunds, registrations, unbinds,
    reviews): the fields a state has are shown, the others skipped."""
    status = getattr(state.status, "value", state.status)
    head = [f"**{status}**"]
    flow = getattr(state, "flow", None)
    if flow is not None:
        head.append(str(getattr(flow, "value", flow)))
    amount = _amount(state)
    if amount is not None:
        head.append(f"IDR {amount:,.2f}")
    customer = getattr(state, "customer_id", None)
    if customer:
        head.append(f"customer {customer}")
    lines = [" · ".join(head)]
    invoice = getattr(state, "invoice_number", None)
    if invoice:
        lines.append(f"invoice {invoice}")
    attention = getattr(state, "attention_reason", None)
    if attention:
        lines.append(f"needs: {attention}")
    if state.history:
        last = state.history[-1]
        lines.append(f"{last.at:%Y-%m-%d %H:%M:%S} UTC: {last.reason}")
    return "\n\n".join(lines)


def show(state: Any) -> None:
    workflow.set_current_details(describe(state))


def _amount(state: Any) -> Decimal | None:
    for name in ("captured_amount", "amount"):
        value = getattr(state, name, None)
        if isinstance(value, Decimal):
            return value
    return None
