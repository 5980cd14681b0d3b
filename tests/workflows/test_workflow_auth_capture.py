"""Auth-capture: authorize, capture (full, partial, above 120 %), void, double capture, capture
after void, duplicate callback, expiry at 7 days, auto-capture and auto-void policies."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import CancelledError
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

from ayoconnect.codes import GatewayCode
from ayoconnect.models import PaymentActionResponse
from workflows import search_attributes as sa
from workflows.models import (
    ActionResult,
    CaptureCommand,
    CapturePolicy,
    PaymentStatus,
    ResolveCommand,
    VoidCommand,
)

# The provider's expiry has whole seconds, the workflow's clock does not: the hold may end up
# to a second before "authorized + window".
SLACK = timedelta(seconds=1)


def held_for(state) -> timedelta:
    """How long the authorization was held, by the workflow's own (skipped) clock."""
    authorized = next(t.at for t in state.history if t.to_status == "AUTHORIZED")
    return state.history[-1].at - authorized


async def authorize(env, task_queue, key, **overrides):
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key, **overrides), auth_capture=True
    )
    assert outcome.status is PaymentStatus.AUTHORIZED
    return handle


async def test_authorized_then_captured_in_full(env, task_queue, fake, key):
    handle = await authorize(env, task_queue, key)
    state = await state_of(handle)
    assert state.status is PaymentStatus.AUTHORIZED
    assert state.flow.value == "AUTH_CAPTURE"
    assert state.authorized_amount == Decimal("150000.00")
    assert state.authorization_expires_at is not None
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(sa.PAYMENT_STATUS) == "AUTHORIZED"
    assert attrs.get(sa.FLOW) == "AUTH_CAPTURE"
    assert attrs.get(sa.AUTH_EXPIRES_AT) == state.authorization_expires_at

    result = await handle.execute_update(
        "capture_payment", CaptureCommand(requested_by="ops@merchant"), result_type=ActionResult
    )
    assert result.outcome == "captured"
    assert result.amount == Decimal("150000.00")
    state = await finish(env, handle)
    assert state.status is PaymentStatus.CAPTURED
    assert state.captured_amount == Decimal("150000.00")
    [capture] = [c for c in fake.calls_of("create_charge", key) if c.request.operation == "CAPTURE"]
    assert capture.request.transactionId == f"{key}-cap"
    assert capture.request.invoiceNumber == f"INV-{key}-auth"
    assert (await handle.describe()).typed_search_attributes.get(sa.PAYMENT_STATUS) == "CAPTURED"
    await save_history(handle, "auth_capture_captured")


async def test_partial_capture(env, task_queue, fake, key):
    handle = await authorize(env, task_queue, key)
    result = await handle.execute_update(
        "capture_payment", CaptureCommand(amount=Decimal("50000.00")), result_type=ActionResult
    )
    assert (result.outcome, result.amount) == ("captured", Decimal("50000.00"))
    state = await finish(env, handle)
    assert state.captured_amount == Decimal("50000.00")
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(sa.AMOUNT) == 50000


async def test_capture_up_to_120_percent(env, task_queue, key):
    handle = await authorize(env, task_queue, key, amount="100000.00")
    result = await handle.execute_update(
        "capture_payment", CaptureCommand(amount=Decimal("120000.00")), result_type=ActionResult
    )
    assert result.outcome == "captured"
    await finish(env, handle)


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        ("120000.01", "above 120 %"),
        ("0", "positive"),
        ("-5.00", "positive"),
        ("10.001", "two decimal places"),
    ],
)
async def test_impossible_capture_refused_up_front(env, task_queue, fake, key, amount, why):
    handle = await authorize(env, task_queue, key, amount="100000.00")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            "capture_payment", CaptureCommand(amount=Decimal(amount)), result_type=ActionResult
        )
    assert why in str(refused.value.cause)
    # The same request by signal changes nothing and is recorded as ignored.
    await handle.signal("capture", CaptureCommand(amount=Decimal(amount)))
    state = await wait_for(handle, lambda s: s.ignored)
    assert state.status is PaymentStatus.AUTHORIZED
    assert why in state.ignored[-1].reason
    assert state.ignored[-1].name == "capture signal"
    assert not [c for c in fake.calls_of("create_charge", key) if c.request.operation == "CAPTURE"]
    await handle.signal("void", VoidCommand(reason="test over"))
    assert (await finish(env, handle)).status is PaymentStatus.VOIDED


async def test_void(env, task_queue, fake, key):
    handle = await authorize(env, task_queue, key)
    result = await handle.execute_update(
        "void_payment", VoidCommand(reason="customer cancelled order"), result_type=ActionResult
    )
    assert result.outcome == "voided"
    state = await finish(env, handle)
    assert state.status is PaymentStatus.VOIDED
    [void] = fake.calls_of("void", key)
    assert void.request.transactionId == f"{key}-void"
    assert void.request.reason == "customer cancelled order"


async def test_double_capture_captures_once(env, task_queue, fake, key):
    handle = await authorize(env, task_queue, key)
    gate = fake.gates[f"create_charge:{key}-cap"] = asyncio.Event()
    first = await handle.start_update(
        "capture_payment",
        CaptureCommand(),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        result_type=ActionResult,
    )
    second = await handle.start_update(
        "capture_payment",
        CaptureCommand(),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        result_type=ActionResult,
    )
    await handle.signal("capture", CaptureCommand())
    gate.set()
    assert (await first.result()).outcome == "captured"
    late = await second.result()
    assert late.outcome == "refused"
    assert "CAPTURED" in (late.reason or "")
    state = await finish(env, handle)
    assert state.status is PaymentStatus.CAPTURED
    captures = [c for c in fake.calls_of("create_charge", key) if c.request.operation == "CAPTURE"]
    assert len(captures) == 1
    assert {i.name for i in state.ignored} == {"capture_payment update", "capture signal"}


async def test_capture_after_void_changes_nothing(env, task_queue, fake, key):
    handle = await authorize(env, task_queue, key)
    gate = fake.gates[f"void:{key}-void"] = asyncio.Event()
    voiding = await handle.start_update(
        "void_payment",
        VoidCommand(),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        result_type=ActionResult,
    )
    await handle.signal("capture", CaptureCommand())
    gate.set()
    assert (await voiding.result()).outcome == "voided"
    state = await finish(env, handle)
    assert state.status is PaymentStatus.VOIDED
    assert any("VOIDED" in i.reason for i in state.ignored if i.name == "capture signal")
    assert not [c for c in fake.calls_of("create_charge", key) if c.request.operation == "CAPTURE"]


async def test_update_refused_after_settlement(env, task_queue, fake, key):
    handle = await authorize(env, task_queue, key)
    gate = fake.gates[f"create_charge:{key}-cap"] = asyncio.Event()
    await handle.signal("capture", CaptureCommand())
    await wait_for(handle, lambda s: fake.calls_of("create_charge", f"{key}-cap"))
    gate.set()
    await wait_for(handle, lambda s: s.status is PaymentStatus.CAPTURED)
    # The workflow may already be closing: either way no second capture happens.
    with pytest.raises(Exception):  # noqa: B017
        await handle.execute_update("void_payment", VoidCommand(), result_type=ActionResult)
    await finish(env, handle)
    assert len(fake.calls_of("void", key)) == 0


async def test_duplicate_callback_recorded(env, task_queue, fake, key):
    fake.challenge.add(f"{key}-auth")
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key), auth_capture=True
    )
    assert outcome.status is PaymentStatus.CHALLENGE
    payment = fake.complete_challenge(f"{key}-auth")
    callback = fake.callback_for(payment)
    await handle.signal("payment_callback", callback)
    await wait_for(handle, lambda s: s.status is PaymentStatus.AUTHORIZED)
    await handle.signal("payment_callback", callback)
    state = await wait_for(handle, lambda s: s.ignored)
    assert "duplicate" in state.ignored[0].reason
    assert state.callbacks_received == 2
    assert state.status is PaymentStatus.AUTHORIZED
    assert (
        await handle.execute_update("capture_payment", CaptureCommand(), result_type=ActionResult)
    ).outcome == "captured"
    await finish(env, handle)


async def test_expiry_after_seven_days_voids_the_hold(env, task_queue, fake, key):
    handle = await authorize(env, task_queue, key)
    state = await finish(env, handle)
    assert state.status is PaymentStatus.EXPIRED
    assert timedelta(days=7) - SLACK <= held_for(state) < timedelta(days=7, minutes=1)
    [void] = fake.calls_of("void", key)
    assert void.request.transactionId == f"{key}-cv"
    assert fake.payment_by_tid(f"{key}-auth").status.value == "VOIDED"
    # The void goes first: one provider call when Kartu releases the hold itself.
    assert fake.calls_of("payment_status", key) == []
    await save_history(handle, "auth_capture_expired_void_first")


async def test_expiry_when_provider_already_released(env, task_queue, fake, key):
    handle = await authorize(env, task_queue, key)
    fake.payment_by_tid(f"{key}-auth").status = fake.payment_by_tid(f"{key}-auth").status.VOIDED
    state = await finish(env, handle)
    assert state.status is PaymentStatus.EXPIRED
    # The void is refused (nothing left to void); the look-up shows the provider released it.
    assert len(fake.calls_of("void", key)) == 1
    assert len(fake.calls_of("payment_status", key)) == 1
    assert fake.calls_of("refund", key) == []
    assert state.pending_compensation is None
    assert state.attention_reason is None


async def test_expiry_keeps_a_hold_the_provider_shows_captured(env, task_queue, fake, key):
    # A capture took effect but Kartu never heard (its answer lost, say): at the window's end
    # the void is refused and the look-up shows CAPTURED. The money stays captured: not EXPIRED
    # (it is not), not refunded (nobody asked for that).
    handle = await authorize(env, task_queue, key)
    held = fake.payment_by_tid(f"{key}-auth")
    held.status, held.captured = held.status.CAPTURED, Decimal("150000.00")
    state = await finish(env, handle)
    assert state.status is PaymentStatus.CAPTURED
    assert state.captured_amount == Decimal("150000.00")
    assert len(fake.calls_of("void", key)) == 1
    assert fake.calls_of("refund", key) == []
    assert state.pending_compensation is None


async def test_expiry_void_refused_while_the_hold_stands_asks_ops(env, task_queue, fake, key):
    # The provider refuses the void and still shows the hold: the money is still held, so the
    # payment is neither EXPIRED nor quietly left AUTHORIZED: ops are asked, Kartu keeps the void.
    handle = await expiry_void_refused(env, task_queue, fake, key)
    state = await state_of(handle)
    assert state.status is PaymentStatus.NEEDS_ATTENTION
    assert state.pending_compensation == "void"
    assert "void failed" in (state.attention_reason or "")
    assert fake.payment_by_tid(f"{key}-auth").status.value == "AUTHORIZED"
    # The void first, then (refused) the look-up: nothing asked before the void.
    assert fake.call_names(key, "void", "payment_status") == ["void", "payment_status"]


async def test_cancel_while_an_expiry_waits_for_ops_refunds_a_hold_since_captured(
    env, task_queue, fake, key
):
    # The expiry would keep a hold it finds captured; a cancelled payment's money goes back.
    handle = await expiry_void_refused(env, task_queue, fake, key)
    held = fake.payment_by_tid(f"{key}-auth")
    held.status, held.captured = held.status.CAPTURED, Decimal("150000.00")
    await handle.cancel()
    await wait_for(handle, lambda s: any(i.name == "cancel" for i in s.ignored))
    await handle.signal("resolve", ResolveCommand(action="retry", resolved_by="ops"))
    with pytest.raises(WorkflowFailureError) as failure:
        await finish(env, handle)
    assert isinstance(failure.value.cause, CancelledError)
    state = await state_of(handle)
    assert state.status is PaymentStatus.REFUNDED
    [refund] = fake.calls_of("refund", key)
    assert refund.request.amount == Decimal("150000.00")
    assert held.status.value == "REFUNDED"
    # The story says why the money went back: the cancel, resuming the expiry's compensation.
    expected = "payment cancelled, resuming 'authorization window ended: hold released'"
    assert state.history[-1].reason.startswith(expected), state.history[-1].reason
    assert state.refund_reason is not None and state.refund_reason.startswith(expected)


async def expiry_void_refused(env, task_queue, fake, key):
    """An authorization whose expiry's void is refused while the provider still holds it."""
    handle = await authorize(env, task_queue, key)
    refused = final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED)
    fake.script(f"void:{key}-cv", refused)
    needs_ops = PaymentStatus.NEEDS_ATTENTION
    await wait_skipping(env, handle, 8 * 24 * 3600, lambda s: s.status is needs_ops)
    return handle


async def test_default_window_when_provider_gives_no_expiry(env, task_queue, fake, key):
    fake.auth_window = None  # Ayoconnect sends no authorizationExpiresAt
    try:
        before = await env.get_current_time()
        _, handle = await start_payment(
            env.client,
            task_queue,
            payment_input(key, authorization_window=timedelta(days=3)),
            auth_capture=True,
        )
    finally:
        fake.auth_window = timedelta(days=7)
    state = await state_of(handle)
    assert state.authorization_expires_at is not None
    window = state.authorization_expires_at - before
    assert timedelta(days=3) <= window < timedelta(days=3, minutes=1)
    state = await finish(env, handle)
    assert state.status is PaymentStatus.EXPIRED
    assert timedelta(days=3) - SLACK <= held_for(state) < timedelta(days=3, minutes=1)


async def test_auto_capture_policy(env, task_queue, fake, key):
    handle = await authorize(
        env,
        task_queue,
        key,
        capture_policy=CapturePolicy.AUTO_CAPTURE,
        capture_policy_margin=timedelta(hours=2),
    )
    state = await finish(env, handle)
    assert state.status is PaymentStatus.CAPTURED
    assert state.captured_amount == Decimal("150000.00")
    assert (
        timedelta(days=6, hours=22) - SLACK
        <= held_for(state)
        < timedelta(days=6, hours=22, minutes=1)
    )
    assert "auto_capture" in state.history[-1].reason


async def test_auto_void_policy(env, task_queue, fake, key):
    handle = await authorize(env, task_queue, key, capture_policy=CapturePolicy.AUTO_VOID)
    state = await finish(env, handle)
    assert state.status is PaymentStatus.VOIDED
    [void] = fake.calls_of("void", key)
    assert void.request.transactionId == f"{key}-void"


def captures(fake, key):
    return [c for c in fake.calls_of("create_charge", key) if c.request.operation == "CAPTURE"]


async def test_unresolved_capture_keeps_its_amount(env, task_queue, fake, key):
    # Review item 3: no answer to a capture of 50 000: another amount would reuse "cap" with
    # another body (409 forever); the same amount resends the very same request.
    handle = await authorize(env, task_queue, key)
    fake.script(f"create_charge:{key}-cap", *[transient_error() for _ in range(8)])
    first = await handle.start_update(
        "capture_payment",
        CaptureCommand(amount=Decimal("50000.00")),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        result_type=ActionResult,
    )
    await env.sleep(200)  # the activity's 8 attempts back off 182 s
    first = await first.result()
    assert first.outcome == "refused"
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            "capture_payment", CaptureCommand(amount=Decimal("60000.00")), result_type=ActionResult
        )
    assert "still unresolved" in str(refused.value.cause)
    again = await handle.execute_update(
        "capture_payment", CaptureCommand(amount=Decimal("50000.00")), result_type=ActionResult
    )
    assert (again.outcome, again.amount) == ("captured", Decimal("50000.00"))
    assert {c.request.transactionId for c in captures(fake, key)} == {f"{key}-cap"}
    assert (await finish(env, handle)).captured_amount == Decimal("50000.00")


async def test_capture_refused_by_provider_uses_a_new_step(env, task_queue, fake, key):
    # A definite "no" (stored by Ayoconnect for that transactionId) with the hold intact: the
    # next capture, any amount, is a new request.
    handle = await authorize(env, task_queue, key)
    refusal = final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED)
    fake.script(f"create_charge:{key}-cap", lambda call: fake.refuse(call, refusal))
    first = await handle.execute_update(
        "capture_payment", CaptureCommand(amount=Decimal("50000.00")), result_type=ActionResult
    )
    assert first.outcome == "refused"
    second = await handle.execute_update(
        "capture_payment", CaptureCommand(amount=Decimal("60000.00")), result_type=ActionResult
    )
    assert (second.outcome, second.amount) == ("captured", Decimal("60000.00"))
    assert [c.request.transactionId for c in captures(fake, key)] == [f"{key}-cap", f"{key}-cap2"]
    await finish(env, handle)


async def test_capture_answered_without_captured_is_not_success(env, task_queue, fake, key):
    # Review item 4: a 2xx capture answer whose status is not CAPTURED.
    handle = await authorize(env, task_queue, key)

    def still_authorized(call):
        p = fake.payment_by_tid(f"{key}-auth")
        return fake._charge_answer(p)  # status AUTHORIZED, nothing captured

    fake.script(f"create_charge:{key}-cap", still_authorized)
    result = await handle.execute_update(
        "capture_payment", CaptureCommand(), result_type=ActionResult
    )
    assert result.outcome == "refused"
    assert "capture answered AUTHORIZED" in (result.reason or "")
    state = await state_of(handle)
    assert state.status is PaymentStatus.AUTHORIZED
    assert state.captured_amount is None
    await handle.signal("void", VoidCommand(reason="test over"))
    assert (await finish(env, handle)).status is PaymentStatus.VOIDED


async def test_void_answered_without_voided_is_not_success(env, task_queue, fake, key):
    handle = await authorize(env, task_queue, key)

    def still_authorized(call):
        p = fake.payment_by_tid(f"{key}-auth")
        return PaymentActionResponse(
            code=200, responseCode="2005701", message="ok", invoiceNumber=p.invoice, status=p.status
        )

    fake.script(f"void:{key}-void", still_authorized)
    result = await handle.execute_update(
        "void_payment", VoidCommand(reason="first"), result_type=ActionResult
    )
    assert result.outcome == "refused"
    assert "void answered AUTHORIZED" in (result.reason or "")
    assert (await state_of(handle)).status is PaymentStatus.AUTHORIZED
    again = await handle.execute_update(
        "void_payment", VoidCommand(reason="second"), result_type=ActionResult
    )
    assert again.outcome == "voided"
    assert [c.request.transactionId for c in fake.calls_of("void", key)] == [
        f"{key}-void",
        f"{key}-void2",
    ]
    await finish(env, handle)
