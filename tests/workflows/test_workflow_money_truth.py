"""Money truth (issue 8): Kartu's state never parts from the provider's.

Each test is one finding of the review: no terminal state without a definite provider answer,
no first answer that Kartu is about to undo, no charge for a payment cancelled before its first
step, one refund request per payment whoever asks, no close by ops that the provider
contradicts, and reconciliation's differences acted on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import CancelledError
from workflow_fakes import final_error, transient_error
from workflow_helpers import (
    fake_worker,
    finish,
    new_queue,
    payment_input,
    save_history,
    start_in_background,
    start_payment,
    state_of,
    update_skipping,
    wait_for,
    wait_skipping,
)

from ayoconnect.codes import GatewayCode, ServiceCode
from workflows import RefundWorkflow
from workflows import search_attributes as sa
from workflows.ids import REFUND_WIRE_REASON, payment_workflow_id, refund_workflow_id
from workflows.models import (
    ActionResult,
    PaymentOutcome,
    PaymentStatus,
    ReconcileDifference,
    RefundInput,
    RefundState,
    RefundStatus,
    ResolveCommand,
)

CONFIRM_URL = "https://merchant.test/confirm"
REFUND_REFUSED = final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED, ServiceCode.REFUND)


@pytest.fixture
def outage(fake) -> Iterator[set[str]]:
    """Activities named here fail before they reach the provider, until removed."""
    yield fake.down
    fake.down.clear()


async def search_status(handle) -> str | None:
    return (await handle.describe()).typed_search_attributes.get(sa.PAYMENT_STATUS)


# --- 1. no terminal state without a definite provider answer -------------------------------


async def test_taken_3ds_charge_with_status_api_down_is_never_failed(
    env, task_queue, fake, key, outage
):
    fake.challenge.add(f"{key}-pay")
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    assert outcome.status is PaymentStatus.CHALLENGE
    outage.add("payment_status")
    payment = fake.complete_challenge(f"{key}-pay")  # the card is charged...
    await handle.signal("payment_callback", fake.callback_for(payment))  # ...and says so
    # Past the 3DS window and the old 15-minute late-result watch: still not FAILED.
    state = await wait_skipping(
        env, handle, 1500, lambda s: s.status is PaymentStatus.PENDING_PROVIDER
    )
    assert "final word" in (state.attention_reason or "")
    assert await search_status(handle) == "PENDING_PROVIDER"  # ops find it with one search
    await env.sleep(6 * 3600)  # hours of outage: Kartu keeps asking, says nothing false
    assert (await state_of(handle)).status is PaymentStatus.PENDING_PROVIDER
    outage.clear()
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID  # the ledger's truth, kept: no deadline passed
    assert fake.calls_of("refund", key) == []
    assert PaymentStatus.FAILED not in [t.to_status for t in state.history]
    await save_history(handle, "direct_pending_provider_paid")


@pytest.mark.parametrize(
    ("deadline_after", "final"),
    [(None, PaymentStatus.PAID), (timedelta(minutes=5), PaymentStatus.REFUNDED)],
)
async def test_ambiguous_charge_then_long_outage_settles_to_the_ledger(
    env, task_queue, fake, key, outage, deadline_after, final
):
    # The charge takes effect but every answer is lost, then the status API is down > 20 min.
    fake.lose_answer(f"create_charge:{key}-pay", *[transient_error() for _ in range(20)])
    outage.add("payment_status")
    deadline = None
    if deadline_after is not None:
        deadline = await env.get_current_time() + deadline_after
    handle = await start_in_background(env, task_queue, payment_input(key, deadline=deadline))
    state = await wait_skipping(
        env, handle, 3600, lambda s: s.status is PaymentStatus.PENDING_PROVIDER
    )
    assert state.status is PaymentStatus.PENDING_PROVIDER
    outage.clear()
    state = await finish(env, handle)
    assert state.status is final
    assert len(fake.calls_of("refund", key)) == (1 if final is PaymentStatus.REFUNDED else 0)


async def ambiguous_charge_in_an_outage(env, task_queue, fake, key, outage, attention_after):
    """A charge whose answers are all lost, the status API down: PENDING_PROVIDER."""
    fake.lose_answer(f"create_charge:{key}-pay", *[transient_error() for _ in range(20)])
    outage.add("payment_status")
    payment = payment_input(key, provider_attention_after=attention_after)
    handle = await start_in_background(env, task_queue, payment)
    await wait_skipping(env, handle, 3600, lambda s: s.status is PaymentStatus.PENDING_PROVIDER)
    return handle


async def test_no_answer_past_the_attention_age_tells_ops_and_keeps_asking(
    env, task_queue, fake, key, outage
):
    handle = await ambiguous_charge_in_an_outage(
        env, task_queue, fake, key, outage, timedelta(hours=3)
    )
    state = await wait_skipping(
        env, handle, 3 * 3600, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION
    )
    assert "Kartu keeps asking" in (state.attention_reason or "")
    assert state.provider_answer_awaited_since is not None
    assert await search_status(handle) == "NEEDS_ATTENTION"  # ops' search finds it
    await env.sleep(12 * 3600)  # a long outage: still asking, still nothing false said
    assert (await state_of(handle)).status is PaymentStatus.NEEDS_ATTENTION
    outage.clear()
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID  # settled by the provider's answer, not by ops
    statuses = [t.to_status for t in state.history]
    assert statuses[-3:] == [
        PaymentStatus.PENDING_PROVIDER,
        PaymentStatus.NEEDS_ATTENTION,
        PaymentStatus.PAID,
    ]
    assert state.attention_reason is None
    assert state.provider_answer_awaited_since is None
    assert fake.calls_of("refund", key) == []
    await save_history(handle, "direct_provider_attention_paid")


async def test_ops_close_a_payment_the_provider_never_answers(env, task_queue, fake, key, outage):
    handle = await ambiguous_charge_in_an_outage(
        env, task_queue, fake, key, outage, timedelta(hours=1)
    )
    await wait_skipping(env, handle, 2 * 3600, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION)
    claim = ResolveCommand(action="close", status=PaymentStatus.FAILED, resolved_by="ops")
    # The close check's look-up retries, then fails.
    answer = await update_skipping(env, handle, "resolve_payment", claim, ActionResult, 3600)
    assert answer.outcome == "refused"
    assert "cannot be read right now" in (answer.reason or "")
    assert (await state_of(handle)).status is PaymentStatus.NEEDS_ATTENTION

    forced = ResolveCommand(
        action="close",
        status=PaymentStatus.FAILED,
        resolved_by="ops",
        force=True,
        note="issuer confirms no debit, ticket 99",
    )
    answer = await update_skipping(env, handle, "resolve_payment", forced, ActionResult, 60)
    assert answer.outcome == "resolved"
    await finish(env, handle)
    state = await state_of(handle)
    assert state.status is PaymentStatus.FAILED
    assert "ticket 99" in state.history[-1].reason
    assert state.provider_answer_awaited_since is None
    assert fake.calls_of("refund", key) == []


def test_the_attention_age_must_be_positive():
    with pytest.raises(ValueError, match="provider_attention_after must be positive"):
        payment_input("order_x", provider_attention_after=timedelta(0))


async def test_challenge_the_provider_ends_failed_is_failed(env, task_queue, fake, key):
    fake.challenge.add(f"{key}-pay")
    _, handle = await start_payment(env.client, task_queue, payment_input(key))
    state = await finish(env, handle)  # the customer never finishes: the provider fails it
    assert state.status is PaymentStatus.FAILED
    assert PaymentStatus.PENDING_PROVIDER not in [t.to_status for t in state.history]


# --- 2. the first answer never says a status Kartu is about to undo ------------------------


async def test_first_outcome_is_not_paid_for_a_payment_being_refunded(env, task_queue, fake, key):
    # The charge is retried past the payment's deadline (its retries wait 1+2+4+8+16+32 s)
    # and then succeeds. 30 s: the test server's clock runs in real time until skipped, and a
    # loaded machine must still send the first charge before the deadline.
    fake.script(f"create_charge:{key}-pay", *(transient_error() for _ in range(6)))
    deadline = await env.get_current_time() + timedelta(seconds=30)
    handle = await start_in_background(env, task_queue, payment_input(key, deadline=deadline))
    outcome = await update_skipping(env, handle, "first_outcome", None, PaymentOutcome, 3600)
    assert outcome.status is not PaymentStatus.PAID
    assert outcome.status is PaymentStatus.REFUNDED
    state = await finish(env, handle)
    assert state.status is PaymentStatus.REFUNDED
    assert len(fake.calls_of("refund", key)) == 1


# --- 6. a payment cancelled before its first step never charges ----------------------------


async def test_cancel_before_the_first_workflow_task_sends_no_charge(env, fake, key):
    queue = new_queue("kartu-cold")
    handle = await start_in_background(env, queue, payment_input(key))  # no worker yet
    await handle.cancel()
    async with fake_worker(env, fake, queue):
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert isinstance(failure.value.cause, CancelledError)
        state = await state_of(handle)
    assert fake.calls_of("create_charge", key) == []
    assert state.status is PaymentStatus.FAILED
    assert state.history[-1].reason == "cancelled before the charge was sent"


# --- 4. one refund path, one transactionId -------------------------------------------------


async def test_merchant_refund_and_compensation_send_one_refund_request(env, task_queue, fake, key):
    # The merchant's confirmation endpoint is down: the paid payment's workflow is still open.
    fake.script(f"confirm_with_merchant:{key}", *[transient_error() for _ in range(50)])
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    assert outcome.status is PaymentStatus.PAID
    refund = await env.client.start_workflow(
        RefundWorkflow.run,
        RefundInput(
            payment_id=key,
            customer_id=outcome_customer(),
            invoice_number=outcome.invoice_number,
            amount=payment_input(key).amount,
            reason="customer returned the goods",
        ),
        id=refund_workflow_id(key),
        task_queue=task_queue,
    )
    refunded = await refund.result()
    assert refunded.status is RefundStatus.REFUNDED
    await handle.cancel()  # ...and the payment is cancelled: its compensation refunds too
    with pytest.raises(WorkflowFailureError):
        await finish(env, handle)
    del fake.scripts[f"confirm_with_merchant:{key}"]
    state = await state_of(handle)
    assert state.status is PaymentStatus.REFUNDED
    calls = fake.calls_of("refund", key)
    assert {c.request.transactionId for c in calls} == {f"{key}-rfd"}
    assert {c.request.reason for c in calls} == {REFUND_WIRE_REASON}
    assert fake.payment_by_tid(f"{key}-pay").refunded == payment_input(key).amount


def outcome_customer() -> str:
    return payment_input("x").customer_id


async def test_a_refund_by_compensation_says_when_and_why(env, task_queue, fake, key):
    fake.script(f"confirm_with_merchant:{key}", *[transient_error() for _ in range(50)])
    _, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    await wait_for(handle, lambda s: fake.calls_of("confirm_with_merchant", key))
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await finish(env, handle)
    del fake.scripts[f"confirm_with_merchant:{key}"]
    state = await state_of(handle)
    assert state.status is PaymentStatus.REFUNDED
    assert state.refunded_at is not None
    assert state.refund_reason == "payment cancelled"
    assert await search_status(handle) == "REFUNDED"


# --- 8. ops cannot close a payment as something the provider contradicts -------------------


async def test_resolve_close_is_checked_against_the_provider(env, task_queue, fake, key):
    fake.script(f"refund:{key}-rfd", REFUND_REFUSED)
    fake.script(f"confirm_with_merchant:{key}", *[transient_error() for _ in range(50)])
    _, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    await wait_for(handle, lambda s: fake.calls_of("confirm_with_merchant", key))
    await handle.cancel()  # the compensating refund is refused: NEEDS_ATTENTION
    await wait_for(handle, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION)
    del fake.scripts[f"confirm_with_merchant:{key}"]

    claim = ResolveCommand(action="close", status=PaymentStatus.REFUNDED, resolved_by="ops")
    answer = await handle.execute_update("resolve_payment", claim, result_type=ActionResult)
    assert answer.outcome == "refused"
    assert "provider shows this payment SUCCESS" in (answer.reason or "")
    assert (await state_of(handle)).status is PaymentStatus.NEEDS_ATTENTION

    forced = ResolveCommand(
        action="close",
        status=PaymentStatus.REFUNDED,
        resolved_by="ops",
        force=True,
        note="refunded by bank transfer, ticket 4711",
    )
    answer = await handle.execute_update("resolve_payment", forced, result_type=ActionResult)
    assert answer.outcome == "resolved"
    with pytest.raises(WorkflowFailureError):
        await finish(env, handle)
    state = await state_of(handle)
    assert state.status is PaymentStatus.REFUNDED
    assert "ticket 4711" in state.history[-1].reason


async def test_resolve_update_is_refused_when_nothing_needs_attention(env, task_queue, key):
    _, handle = await start_payment(env.client, task_queue, payment_input(key), auth_capture=True)
    claim = ResolveCommand(action="close", status=PaymentStatus.VOIDED)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update("resolve_payment", claim, result_type=ActionResult)


def test_a_forced_close_needs_a_note():
    with pytest.raises(ValueError, match="note"):
        ResolveCommand(action="close", status=PaymentStatus.REFUNDED, force=True)


# --- reconciliation's differences reach the running payment --------------------------------


async def test_reconcile_difference_makes_a_held_payment_check_the_provider(
    env, task_queue, fake, key
):
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key), auth_capture=True
    )
    assert outcome.status is PaymentStatus.AUTHORIZED
    fake.payment_by_tid(f"{key}-auth").status = fake_status("VOIDED")  # behind Kartu's back
    await handle.signal(
        "reconcile_difference",
        ReconcileDifference(
            differences=["Kartu AUTHORIZED, provider VOIDED"], provider_status="VOIDED"
        ),
    )
    state = await finish(env, handle)
    assert state.status is PaymentStatus.EXPIRED
    assert any("provider VOIDED" in d for d in state.reconcile_differences)
    assert fake.calls_of("void", key) == []


def fake_status(name: str):
    from ayoconnect.models import PaymentStatus as Wire

    return Wire[name]


async def test_workflow_ids_are_the_refund_and_payment_ids():
    # The merchant refund and the payment name each other by the payment id alone.
    assert refund_workflow_id("abc") == "refund-abc"
    assert payment_workflow_id("abc") == "payment-abc"
    assert RefundState.model_fields["attempt"].default == 1


async def test_a_duplicate_resolve_is_answered_and_the_payment_still_closes(
    env, task_queue, fake, key
):
    # Ops resolve twice (a retried CLI call): both are accepted while NEEDS_ATTENTION; the
    # first closes the payment, the second is answered "nothing to resolve" rather than left
    # waiting (an update never answered would keep the workflow open forever).
    fake.script(f"refund:{key}-rfd", REFUND_REFUSED)
    fake.script(f"confirm_with_merchant:{key}", *[transient_error() for _ in range(50)])
    _, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    await wait_for(handle, lambda s: fake.calls_of("confirm_with_merchant", key))
    await handle.cancel()
    await wait_for(handle, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION)
    del fake.scripts[f"confirm_with_merchant:{key}"]
    close = ResolveCommand(
        action="close", status=PaymentStatus.PAID, force=True, note="merchant keeps it"
    )
    answers = await asyncio.gather(
        handle.execute_update("resolve_payment", close, result_type=ActionResult),
        handle.execute_update("resolve_payment", close, result_type=ActionResult),
    )
    assert sorted(a.outcome for a in answers) == ["refused", "resolved"]
    [refused] = [a for a in answers if a.outcome == "refused"]
    assert "nothing to resolve" in (refused.reason or "")
    with pytest.raises(WorkflowFailureError):
        await finish(env, handle)  # it closes (cancelled): no handler left waiting
