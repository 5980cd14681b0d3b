"""What the Temporal UI shows for each workflow KartuClient starts: ``static_summary`` and
``static_details`` say what the payment is (flow, amount, customer, ids), never card data, and
are encrypted in Temporal like every payload."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from temporalio.client import Client

from starter.client import KartuClient, summaries
from tests.kartu_stack import Stack, new_customer_id, new_key
from workflows import policies
from workflows.models import (
    PaymentFlow,
    PaymentInput,
    RefundInput,
    RegistrationInput,
    UnbindInput,
)

TOKEN = "T0k3n" * 8
REDIRECT = "https://merchant.example/pay/done"


def _payment(**extra: object) -> PaymentInput:
    data = {
        "payment_id": "order_1001",
        "customer_id": "CUST0000000001",
        "amount": "1500000.50",
        "card_token": TOKEN,
        "redirect_url": REDIRECT,
        "description": "note with a secret 4111111111111111",
    }
    return PaymentInput.model_validate({**data, **extra})


def _shown(ui: summaries.UiSummary) -> str:
    assert "\n" not in ui.summary  # the workflow list shows one line
    return ui.summary + "\n" + ui.details


def test_payment_summaries_say_flow_amount_customer_and_no_card_data() -> None:
    direct = summaries.payment(_payment(), PaymentFlow.DIRECT)
    assert direct.summary == "Payment IDR 1,500,000.50 · customer CUST0000000001"
    assert "order_1001" in direct.details and "DIRECT" in direct.details
    held = summaries.payment(_payment(capture_policy="auto_capture"), PaymentFlow.AUTH_CAPTURE)
    assert held.summary.startswith("Authorization IDR 1,500,000.50")
    assert "auto_capture" in held.details and "AUTH_CAPTURE" in held.details
    for ui in (direct, held):
        shown = _shown(ui)
        assert TOKEN not in shown and "4111" not in shown and "secret" not in shown
        assert ui.start_options() == {
            "static_summary": ui.summary,
            "static_details": ui.details,
            "task_timeout": policies.WORKFLOW_TASK_TIMEOUT,
        }


def test_registration_refund_unbind_and_lookup_summaries() -> None:
    registration = RegistrationInput.model_validate(
        {
            "registration_id": "reg_1",
            "customer": {"name": "Budi", "email": "b@example.com", "phoneNumber": "6281234567"},
            "redirect_url": REDIRECT,
        }
    )
    assert summaries.registration(registration).summary == "Card registration · new customer"
    refund = RefundInput(
        payment_id="order_1001",
        customer_id="CUST0000000001",
        invoice_number="INV1",
        amount=Decimal("99000"),
        reason="customer 4111111111111111",
        attempt=2,
    )
    ui = summaries.refund(refund)
    assert ui.summary == "Refund IDR 99,000.00 of payment order_1001 (attempt 2)"
    assert "4111" not in _shown(ui)
    unbind = summaries.unbind(UnbindInput(card_token=TOKEN, customer_id="CUST0000000001"))
    assert unbind.summary == "Unbind a card of customer CUST0000000001"
    assert TOKEN not in _shown(unbind)
    assert summaries.lookup("payment order_1001").summary.endswith("payment order_1001")
    run = summaries.reconciliation(timedelta(hours=48), timedelta(seconds=60), scheduled=True)
    assert run.summary == "Reconciliation with Ayoconnect, last 2d (scheduled)"


async def _metadata(client: Client, workflow_id: str) -> tuple[str | None, str | None]:
    described = await client.get_workflow_handle(workflow_id).describe()
    return await described.static_summary(), await described.static_details()


async def test_started_workflows_carry_their_summary_encrypted(
    stack: Stack, kartu: KartuClient, key: str
) -> None:
    card = await stack.registered_card()
    outcome = await kartu.pay(
        key, customer_id=card.customer_id, amount="150000.00", card_token=card.card_token,
        redirect_url=REDIRECT,
    )  # fmt: skip
    summary, details = await _metadata(kartu.temporal, outcome.workflow_id)
    assert summary == f"Payment IDR 150,000.00 · customer {card.customer_id}"
    assert details is not None and key in details
    assert card.card_token not in summary + details

    refund = await kartu.refund(key, "test")
    summary, _ = await _metadata(kartu.temporal, refund.workflow_id)
    assert summary == f"Refund IDR 150,000.00 of payment {key}"

    registration, _ = await _metadata(kartu.temporal, f"registration-{card.registration_id}")
    assert registration == "Card registration · new customer"

    held = new_key("ui")
    await kartu.authorize(
        held, customer_id=new_customer_id(), amount="2500", redirect_url=REDIRECT,
        encrypted_card=await stack.encrypted_card(),
    )  # fmt: skip
    summary, _ = await _metadata(kartu.temporal, f"payment-{held}")
    assert summary is not None and summary.startswith("Authorization IDR 2,500.00")

    # Like every payload, encrypted: a client without Kartu's codec reads no summary.
    raw = await Client.connect(stack.devserver.address)
    described = await raw.get_workflow_handle(outcome.workflow_id).describe()
    metadata = described.raw_description.execution_config.user_metadata
    assert metadata.summary.metadata["encoding"] == b"binary/encrypted"
    assert b"IDR" not in metadata.summary.data
