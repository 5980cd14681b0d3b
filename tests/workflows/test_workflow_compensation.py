"""Compensation: cancel after PAID refunds, cancel while AUTHORIZED voids, a late 3DS success
after the deadline is released at once, a merchant that refuses gets a refund, and a
compensation meeting a final error leaves NEEDS_ATTENTION until ops resolve it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from workflow_fakes import final_error, transient_error
from workflow_helpers import (
    finish,
    payment_input,
    save_history,
    start_payment,
    state_of,
    wait_for,
    wait_skipping,
)

from ayoconnect.codes import GatewayCode, ServiceCode
from ayoconnect.models import PaymentActionResponse
from workflows import search_attributes as sa
from workflows.compensation import WIRE_REASON
from workflows.models import PaymentStatus, ResolveCommand

CONFIRM_URL = "https://merchant.test/confirm"
MERCHANT_NO = ApplicationError("merchant said no", type="MerchantRejectedError", non_retryable=True)
REFUND_REFUSED = final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED, ServiceCode.REFUND)


async def cancelled(env, handle):
    with pytest.raises(WorkflowFailureError) as failure:
        await finish(env, handle)
    assert isinstance(failure.value.cause, CancelledError)
    return await state_of(handle)


async def test_cancel_after_paid_refunds(env, task_queue, fake, key):
    # The merchant's confirmation endpoint is down (retried), so the paid payment is open.
    fake.script(f"confirm_with_merchant:{key}", *[transient_error() for _ in range(50)])
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    assert outcome.status is PaymentStatus.PAID
    await wait_for(handle, lambda s: fake.calls_of("confirm_with_merchant", key))
    await handle.cancel()
    state = await cancelled(env, handle)
    del fake.scripts[f"confirm_with_merchant:{key}"]
    assert state.status is PaymentStatus.REFUNDED
    assert state.refunded_amount == state.amount
    [refund] = fake.calls_of("refund", key)
    assert refund.request.transactionId == f"{key}-rfd"
    assert refund.request.reason == WIRE_REASON["refund"]  # fixed: a retry sends the same body
    assert state.history[-1].reason == "payment cancelled"
    # The history before and after the compensation's look-first patch: both must replay.
    await save_history(handle, "direct_cancelled_refunded")
    await save_history(handle, "direct_cancelled_refunded_look_first")


async def test_cancel_while_authorized_voids(env, task_queue, fake, key):
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key), auth_capture=True
    )
    assert outcome.status is PaymentStatus.AUTHORIZED
    await handle.cancel()
    state = await cancelled(env, handle)
    assert state.status is PaymentStatus.VOIDED
    [void] = fake.calls_of("void", key)
    assert void.request.transactionId == f"{key}-cv"
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(sa.PAYMENT_STATUS) == "VOIDED"


async def test_cancel_during_challenge_releases_a_late_success(env, task_queue, fake, key):
    fake.challenge.add(f"{key}-auth")
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key), auth_capture=True
    )
    assert outcome.status is PaymentStatus.CHALLENGE
    await handle.cancel()
    fake.complete_challenge(f"{key}-auth")  # the customer finishes 3DS anyway
    state = await cancelled(env, handle)
    assert state.status is PaymentStatus.VOIDED
    assert len(fake.calls_of("void", key)) == 1


@pytest.mark.parametrize(
    ("auth_capture", "released", "call"),
    [(False, PaymentStatus.REFUNDED, "refund"), (True, PaymentStatus.VOIDED, "void")],
)
async def test_late_3ds_success_after_deadline(
    env, task_queue, fake, key, auth_capture, released, call
):
    step = "auth" if auth_capture else "pay"
    fake.challenge.add(f"{key}-{step}")
    deadline = await env.get_current_time() + timedelta(seconds=30)
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key, deadline=deadline), auth_capture=auth_capture
    )
    assert outcome.status is PaymentStatus.CHALLENGE
    await env.sleep(60)  # the customer takes a minute: past the deadline, inside the window
    payment = fake.complete_challenge(f"{key}-{step}")
    await handle.signal("payment_callback", fake.callback_for(payment))
    state = await finish(env, handle)
    assert state.status is released
    assert "deadline" in state.history[-1].reason
    assert len(fake.calls_of(call, key)) == 1


async def test_merchant_refusal_refunds(env, task_queue, fake, key):
    refusal = ApplicationError("merchant said no", type="MerchantRejectedError", non_retryable=True)
    fake.script(f"confirm_with_merchant:{key}", refusal)
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    assert outcome.status is PaymentStatus.PAID
    state = await finish(env, handle)
    assert state.status is PaymentStatus.REFUNDED
    assert "merchant confirmation failed" in state.history[-1].reason
    [confirmation] = fake.calls_of("confirm_with_merchant", key)
    assert confirmation.status == "PAID"
    assert len(fake.calls_of("refund", key)) == 1
    await save_history(handle, "direct_merchant_refused_refunded")


async def test_merchant_confirmation_retried_then_ok(env, task_queue, fake, key):
    fake.script(f"confirm_with_merchant:{key}", transient_error())
    _, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID
    assert len(fake.calls_of("confirm_with_merchant", key)) == 2
    assert fake.calls_of("refund", key) == []


async def test_compensation_final_error_needs_attention(env, task_queue, fake, key):
    refusal = ApplicationError("merchant said no", type="MerchantRejectedError", non_retryable=True)
    fake.script(f"confirm_with_merchant:{key}", refusal)
    fake.script(
        f"refund:{key}-rfd",
        final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED, ServiceCode.REFUND),
    )
    _, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    state = await wait_for(handle, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION)
    assert "refund failed" in (state.attention_reason or "")
    assert "RuleViolationError" in (state.attention_reason or "")
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(sa.PAYMENT_STATUS) == "NEEDS_ATTENTION"

    # Still open, waiting for ops. A retry that succeeds ends it REFUNDED.
    await handle.signal("resolve", ResolveCommand(action="retry", resolved_by="ops"))
    state = await finish(env, handle)
    assert state.status is PaymentStatus.REFUNDED
    assert len(fake.calls_of("refund", key)) == 2
    await save_history(handle, "direct_needs_attention_resolved")


async def test_needs_attention_closed_by_ops(env, task_queue, fake, key):
    _, handle = await start_payment(env.client, task_queue, payment_input(key), auth_capture=True)
    fake.script(
        f"void:{key}-cv",
        final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED, ServiceCode.VOID),
    )
    await handle.cancel()
    state = await wait_for(handle, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION)
    assert "void failed" in (state.attention_reason or "")
    # Ops void it in the provider's portal; the close is checked against the provider.
    fake.payment_by_tid(f"{key}-auth").status = fake.payment_by_tid(f"{key}-auth").status.VOIDED
    await handle.signal(
        "resolve",
        ResolveCommand(action="close", status=PaymentStatus.VOIDED, note="voided in portal"),
    )
    state = await cancelled(env, handle)
    assert state.status is PaymentStatus.VOIDED
    assert "voided in portal" in state.history[-1].reason


async def test_cancel_in_needs_attention_keeps_the_compensation(env, task_queue, fake, key):
    # Review item 1: a cancel while the refund waits for ops must not drop it.
    fake.script(f"confirm_with_merchant:{key}", MERCHANT_NO)
    fake.script(f"refund:{key}-rfd", lambda call: fake.refuse(call, REFUND_REFUSED))
    _, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    await wait_for(handle, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION)
    await handle.cancel()
    state = await wait_for(handle, lambda s: any(i.name == "cancel" for i in s.ignored))
    assert state.status is PaymentStatus.NEEDS_ATTENTION
    assert state.pending_compensation == "refund"

    # Ayoconnect stored its refusal of "rfd": ops' retry is a new request, with the same body.
    await handle.signal("resolve", ResolveCommand(action="retry", resolved_by="ops"))
    state = await cancelled(env, handle)
    assert state.status is PaymentStatus.REFUNDED
    assert state.pending_compensation is None
    first, second = fake.calls_of("refund", key)
    assert (first.request.transactionId, second.request.transactionId) == (
        f"{key}-rfd",
        f"{key}-rfd2",
    )
    assert first.request.reason == second.request.reason == WIRE_REASON["refund"]
    assert first.request.amount == second.request.amount


async def test_cancel_in_needs_attention_then_closed_by_ops(env, task_queue, fake, key):
    fake.script(f"confirm_with_merchant:{key}", MERCHANT_NO)
    fake.script(f"refund:{key}-rfd", REFUND_REFUSED)
    _, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    await wait_for(handle, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION)
    await handle.cancel()
    await wait_for(handle, lambda s: any(i.name == "cancel" for i in s.ignored))
    paid = fake.payment_by_tid(f"{key}-pay")
    paid.status, paid.refunded = paid.status.REFUNDED, paid.amount  # refunded by hand
    close = ResolveCommand(action="close", status=PaymentStatus.REFUNDED, note="refunded by hand")
    await handle.signal("resolve", close)
    state = await cancelled(env, handle)
    assert state.status is PaymentStatus.REFUNDED
    assert len(fake.calls_of("refund", key)) == 1


async def test_void_of_a_captured_hold_switches_to_refund(env, task_queue, fake, key):
    # Review item 7: Kartu thinks AUTHORIZED, the provider has it CAPTURED (captured elsewhere).
    _, handle = await start_payment(env.client, task_queue, payment_input(key), auth_capture=True)
    payment = fake.payment_by_tid(f"{key}-auth")
    payment.status, payment.captured = payment.status.CAPTURED, payment.amount
    await handle.cancel()
    state = await wait_for(
        handle,
        lambda s: s.status in (PaymentStatus.REFUNDED, PaymentStatus.NEEDS_ATTENTION),
    )
    assert state.status is PaymentStatus.REFUNDED, state.attention_reason
    assert [t.to_status for t in state.history][-2:] == ["CAPTURED", "REFUNDED"]
    [void] = fake.calls_of("void", key)
    [refund] = fake.calls_of("refund", key)
    assert (void.request.transactionId, refund.request.transactionId) == (f"{key}-cv", f"{key}-rfd")
    assert refund.request.amount == payment.amount
    await cancelled(env, handle)


async def test_void_answered_without_voided_is_not_success(env, task_queue, fake, key):
    # Review item 4: a 2xx whose status is not VOIDED: the look-up decides (still held).
    def not_voided(call):
        p = fake.payments[call.request.invoiceNumber]
        return PaymentActionResponse(
            code=200, responseCode="2005701", message="ok", invoiceNumber=p.invoice, status=p.status
        )

    fake.script(f"void:{key}-cv", not_voided)
    _, handle = await start_payment(env.client, task_queue, payment_input(key), auth_capture=True)
    await handle.cancel()
    state = await wait_for(handle, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION)
    assert "void answered AUTHORIZED" in (state.attention_reason or "")
    assert fake.payment_by_tid(f"{key}-auth").status.value == "AUTHORIZED"
    await handle.signal("resolve", ResolveCommand(action="retry"))
    state = await cancelled(env, handle)
    assert state.status is PaymentStatus.VOIDED
    # A 2xx is a definite answer: the retry is a new request.
    assert [c.request.transactionId for c in fake.calls_of("void", key)] == [
        f"{key}-cv",
        f"{key}-cv2",
    ]


async def test_merchant_unreachable_keeps_the_money(env, task_queue, fake, key):
    # Review item 9: an endpoint down past the retry budget is no "no": ops decide.
    fake.script(f"confirm_with_merchant:{key}", *[transient_error() for _ in range(8)])
    _, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL)
    )
    # The activity's 8 attempts take 2 + 4 + ... + 60 s = 182 s of backoff.
    state = await wait_skipping(
        env,
        handle,
        200,
        lambda s: s.status is not PaymentStatus.PAID or fake.calls_of("refund", key),
    )
    assert state.status is PaymentStatus.NEEDS_ATTENTION
    assert "money kept" in (state.attention_reason or "")
    assert fake.calls_of("refund", key) == []

    await handle.signal("resolve", ResolveCommand(action="retry", resolved_by="ops"))
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID
    assert len(fake.calls_of("confirm_with_merchant", key)) == 9
    assert fake.calls_of("refund", key) == []
    await save_history(handle, "direct_merchant_unreachable_retried")


async def test_merchant_unreachable_then_cancelled_refunds(env, task_queue, fake, key):
    fake.script(f"confirm_with_merchant:{key}", *[transient_error() for _ in range(8)])
    _, handle = await start_payment(
        env.client, task_queue, payment_input(key, confirmation_url=CONFIRM_URL), auth_capture=True
    )
    await wait_skipping(env, handle, 200, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION)
    await handle.cancel()
    state = await cancelled(env, handle)
    assert state.status is PaymentStatus.VOIDED
    assert [t.to_status for t in state.history][-2:] == ["AUTHORIZED", "VOIDED"]
    assert len(fake.calls_of("void", key)) == 1
