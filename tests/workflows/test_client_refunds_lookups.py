"""``KartuClient`` over the real workflows and the fake provider (time-skipping server): a
refunded payment reads REFUNDED (finding 5), a FAILED refund or a closed unbind can be asked
again and moves money at most once (finding 3), the provider's own view through the look-up
workflows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from workflow_fakes import CARD_TOKEN, card, final_error, transient_error
from workflow_helpers import CUSTOMER, finish, payment_input, start_payment, wait_for

from ayoconnect.codes import GatewayCode, ServiceCode
from ayoconnect.models import CardStatus
from starter.client import ActionRefused, InvalidRequest, KartuClient
from workflows import RefundWorkflow, policies
from workflows.ids import MAX_STEP_ATTEMPTS, card_key, payment_correlation_id, refund_workflow_id
from workflows.lookups import lookup_key
from workflows.models import (
    PaymentStatus,
    RefundInput,
    RefundState,
    RefundStatus,
    UnbindStatus,
)

CONFIRM_URL = "https://merchant.test/confirm"


@pytest.fixture
def kartu(env, task_queue) -> KartuClient:
    return KartuClient(env.client, task_queue=task_queue, outcome_timeout=15)


async def paid(env, task_queue, key: str) -> str:
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    await finish(env, handle)
    assert outcome.status is PaymentStatus.PAID and outcome.invoice_number
    return outcome.invoice_number


def refused(fake, key: str, step: str) -> None:
    """The provider's next answer to this refund step is a definite no."""
    fake.script(
        f"refund:{key}-{step}",
        final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED, ServiceCode.REFUND),
    )


def new_token() -> str:
    return ("tok" + uuid.uuid4().hex + "XXXXX")[:40]


def new_customer() -> str:
    return "CUST" + uuid.uuid4().hex[:8].upper()


# --- finding 5: a refunded payment reads REFUNDED ----------------------------------------------


async def test_refunded_payment_reads_refunded(env, task_queue, fake, kartu, key):
    await paid(env, task_queue, key)
    before = await kartu.payment_status(key)
    assert before.status is PaymentStatus.PAID and before.refunded_at is None

    refund = await kartu.refund(key, "customer returned the goods")
    assert refund.status is RefundStatus.REFUNDED

    state = await kartu.payment_status(key)
    assert state.status is PaymentStatus.REFUNDED
    assert state.refunded_amount == Decimal("150000.00")
    assert state.refunded_at == refund.history[-1].at
    assert state.refund_reason == "customer returned the goods"
    assert state.history[:-1] == before.history
    last = state.history[-1]
    assert (last.from_status, last.to_status) == ("PAID", "REFUNDED")
    assert refund.workflow_id in last.reason
    assert await kartu.wait_payment(key, ["REFUNDED"], timeout=5) == state
    # Asking for the refund again answers the same refund.
    assert (await kartu.refund(key)).status is RefundStatus.REFUNDED


async def test_failed_refund_does_not_read_refunded(env, task_queue, fake, kartu, key):
    await paid(env, task_queue, key)
    refused(fake, key, "rfd")
    assert (await kartu.refund(key)).status is RefundStatus.FAILED
    state = await kartu.payment_status(key)
    assert state.status is PaymentStatus.PAID and state.refunded_amount is None


# --- finding 3: a FAILED refund, a closed unbind can be asked again ---------------------------


async def test_failed_refund_is_asked_again_and_refunds_once(env, task_queue, fake, kartu, key):
    invoice = await paid(env, task_queue, key)
    refused(fake, key, "rfd")
    first = await kartu.refund(key, "returned")
    assert first.status is RefundStatus.FAILED and first.attempt == 1

    second = await kartu.refund(key, "returned")
    assert second.status is RefundStatus.REFUNDED and second.attempt == 2
    # Asked a third time: the REFUNDED run answers, nothing is sent again.
    third = await kartu.refund(key, "returned")
    assert third == second
    sent = [c.request.transactionId for c in fake.calls_of("refund", key)]
    assert sent == [f"{key}-rfd", f"{key}-rfd2"]
    assert fake.payments[invoice].refunded == Decimal("150000.00")
    assert (await kartu.payment_status(key)).status is PaymentStatus.REFUNDED


async def test_two_askers_after_a_failure_join_one_run(env, task_queue, fake, kartu, key):
    await paid(env, task_queue, key)
    refused(fake, key, "rfd")
    assert (await kartu.refund(key)).status is RefundStatus.FAILED

    # Hold the second attempt's refund call open until both have asked.
    gate = fake.gates[f"refund:{key}-rfd2"] = asyncio.Event()
    try:
        asks = [asyncio.create_task(kartu.refund(key)) for _ in range(2)]
        await asyncio.sleep(1.0)
        gate.set()
        a, b = await asyncio.gather(*asks)
    finally:
        fake.gates.pop(f"refund:{key}-rfd2", None)
    assert a == b and a.status is RefundStatus.REFUNDED and a.attempt == 2
    assert [c.request.transactionId for c in fake.calls_of("refund", key)] == [
        f"{key}-rfd",
        f"{key}-rfd2",
    ]


async def test_refund_asked_again_at_most_nine_times(env, task_queue, fake, kartu, key):
    invoice = await paid(env, task_queue, key)
    # A ninth try that ended FAILED (started as the client would have started it).
    last = f"rfd{MAX_STEP_ATTEMPTS}"
    refused(fake, key, last)
    ninth = await env.client.start_workflow(
        RefundWorkflow.run,
        RefundInput(
            payment_id=key,
            customer_id=CUSTOMER,
            invoice_number=invoice,
            amount=Decimal("150000.00"),
            attempt=MAX_STEP_ATTEMPTS,
        ),
        id=refund_workflow_id(key),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )
    state: RefundState = await ninth.result()
    assert state.status is RefundStatus.FAILED and state.attempt == MAX_STEP_ATTEMPTS
    with pytest.raises(ActionRefused, match=f"tried {MAX_STEP_ATTEMPTS} times"):
        await kartu.refund(key)
    assert [c.request.transactionId for c in fake.calls_of("refund", key)] == [f"{key}-{last}"]


async def test_unbind_after_failed_and_after_registered_again(env, task_queue, fake, kartu):
    token, customer = new_token(), new_customer()
    fake.script(
        f"unbind:{card_key(token)}-unb",
        final_error("NotFoundError", GatewayCode.UNSPECIFIED_FAILURE, ServiceCode.UNBIND, 404),
    )
    first = await kartu.unbind_card(token, customer_id=customer)
    assert first.status is UnbindStatus.FAILED and first.attempt == 1

    second = await kartu.unbind_card(token, customer_id=customer)
    assert second.status is UnbindStatus.UNBOUND and second.attempt == 2
    # Asked again while the provider lists the token DISABLED: the same unbind answers.
    fake.cards[customer] = [card(token, CardStatus.DISABLED)]
    assert await kartu.unbind_card(token, customer_id=customer) == second
    # The same card registered again has the same token, ACTIVE again: it is unbound again.
    fake.cards[customer] = [card(token, CardStatus.ACTIVE)]
    third = await kartu.unbind_card(token, customer_id=customer)
    assert third.status is UnbindStatus.UNBOUND and third.attempt == 3
    sent = [c.request.transactionId for c in fake.calls_of("unbind", card_key(token))]
    assert sent == [f"{card_key(token)}-{step}" for step in ("unb", "unb2", "unb3")]


# --- the provider's own view -------------------------------------------------------------------


async def test_provider_status_beside_kartu(env, task_queue, fake, kartu, key):
    invoice = await paid(env, task_queue, key)
    both = await kartu.provider_status(key)
    assert both.kartu.status is PaymentStatus.PAID
    view = both.provider
    assert view.outcome == "found" and view.payment is not None
    assert view.payment.invoiceNumber == invoice
    assert view.payment.status.value == "SUCCESS"
    assert view.lookup_id.startswith("lookup-")
    [call] = [c for c in fake.calls_of("payment_status") if c.invoice_number == invoice][-1:]
    assert call.transaction_id == f"{lookup_key(view.lookup_id)}-s1"
    assert len(call.transaction_id) <= 32
    assert call.correlation_id == payment_correlation_id(key)

    await kartu.refund(key)
    both = await kartu.provider_status(key)
    assert both.kartu.status is PaymentStatus.REFUNDED
    assert both.provider.payment is not None
    assert both.provider.payment.status.value == "REFUNDED"


async def test_provider_status_unknown_at_the_provider(env, task_queue, fake, kartu, key):
    invoice = await paid(env, task_queue, key)
    del fake.payments[invoice]
    view = (await kartu.provider_status(key)).provider
    assert view.outcome == "unknown" and view.payment is None
    assert "unknown at the provider" in (view.reason or "")


async def test_provider_status_unavailable(env, task_queue, fake, kartu, key):
    await paid(env, task_queue, key)
    fake.down.add("payment_status")
    try:
        view = (await kartu.provider_status(key, timeout=60)).provider
    finally:
        fake.down.discard("payment_status")
    assert view.outcome == "unavailable" and view.payment is None
    assert "no answer" in (view.reason or "")


async def test_provider_cards(env, task_queue, fake, kartu):
    customer = new_customer()
    other = new_token()
    fake.cards[customer] = [card(CARD_TOKEN), card(other, CardStatus.DISABLED)]
    view = await kartu.provider_cards(customer)
    assert view.outcome == "found"
    assert [(c.cardToken, c.status) for c in view.cards] == [
        (CARD_TOKEN, CardStatus.ACTIVE),
        (other, CardStatus.DISABLED),
    ]
    [call] = [c for c in fake.calls_of("list_cards") if c.customer_id == customer]
    assert call.transaction_id == f"{lookup_key(view.lookup_id)}-l1"


# --- finding 8, client side: resolve through the update, --force with a note -----------------


async def test_resolve_close_refused_then_forced(env, task_queue, fake, kartu, key):
    refusal = ApplicationError("merchant said no", type="MerchantRejectedError", non_retryable=True)
    fake.script(f"confirm_with_merchant:{key}", refusal)
    refused(fake, key, "rfd")  # the compensating refund is refused: NEEDS_ATTENTION
    _, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    await wait_for(handle, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION)

    with pytest.raises(InvalidRequest, match="note"):
        await kartu.resolve(key, "close", status="REFUNDED", force=True)
    with pytest.raises(ActionRefused, match="provider shows") as claim:
        await kartu.resolve(key, "close", status="REFUNDED", resolved_by="ops")
    assert claim.value.status is PaymentStatus.NEEDS_ATTENTION
    assert (await kartu.payment_status(key)).status is PaymentStatus.NEEDS_ATTENTION

    forced = await kartu.resolve(
        key, "close", status="REFUNDED", note="bank transfer, ticket 4711", force=True
    )
    assert forced is not None and forced.outcome == "resolved"
    state = await kartu.wait_payment(key, ["REFUNDED"], timeout=10)
    assert "ticket 4711" in state.history[-1].reason
    with pytest.raises(ActionRefused, match=r"nothing to resolve|finished"):
        await kartu.resolve(key, "retry")


async def test_resolve_a_refund_by_signal(env, task_queue, fake, kartu, key):
    await paid(env, task_queue, key)
    for n in range(1, policies.REFUND_MAX_ROUNDS + 1):
        fake.script(f"payment_status:{key}-r1{n}", *[transient_error() for _ in range(5)])
    started = await kartu.refund(key, wait=False)
    assert started.status is RefundStatus.PENDING
    with pytest.raises(ActionRefused, match="nothing to resolve"):
        await kartu.resolve(key, "retry", refund=True)
    await env.sleep(timedelta(days=4))
    handle = env.client.get_workflow_handle(refund_workflow_id(key), result_type=RefundState)
    await wait_for(handle, lambda s: s.status is RefundStatus.NEEDS_ATTENTION, RefundState)

    with pytest.raises(InvalidRequest, match="REFUNDED or FAILED"):
        await kartu.resolve(key, "close", status="VOIDED", refund=True)
    assert await kartu.resolve(key, "retry", resolved_by="ops", refund=True) is None
    state = await finish(env, handle)
    assert state.status is RefundStatus.REFUNDED
    assert (await kartu.payment_status(key)).status is PaymentStatus.REFUNDED
