"""The Temporal UI says what a payment is without opening its input: current details (status,
flow, amount, customer, the latest reason) kept at every transition, never card data."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from temporalio.api.sdk.v1 import WorkflowMetadata
from workflow_helpers import CARD_TOKEN, finish, payment_input, start_payment

from workflows.details import describe
from workflows.models import RefundState, RefundStatus, Transition


async def current_details(handle) -> str:
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def test_a_paid_payment_shows_what_it_is_and_why(env, task_queue, key):
    _, handle = await start_payment(env.client, task_queue, payment_input(key))
    await finish(env, handle)
    shown = await current_details(handle)
    assert shown.startswith("**PAID** · DIRECT · IDR 150,000.00 · customer CUST000123")
    assert "paid (charge response)" in shown
    assert CARD_TOKEN not in shown


def test_a_refund_shows_its_amount_and_last_reason():
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    state = RefundState(
        payment_id="order_1",
        workflow_id="refund-order_1",
        status=RefundStatus.REFUNDED,
        invoice_number="INV-1",
        amount=Decimal("1000000"),
        reason="customer returned it",
        history=[Transition(at=at, from_status="PENDING", to_status="REFUNDED", reason="done")],
    )
    assert describe(state) == (
        "**REFUNDED** · IDR 1,000,000.00\n\ninvoice INV-1\n\n2026-12-01 09:30:00 UTC: done"
    )
