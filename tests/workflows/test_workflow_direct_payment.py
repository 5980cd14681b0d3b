"""Direct payment (PAY): success, declines, 3DS pass / fail / timeout, callbacks lost,
duplicated and early, search attributes, idempotent start."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from workflow_fakes import final_error
from workflow_helpers import finish, payment_input, save_history, start_payment, state_of, wait_for

from ayoconnect.codes import DECLINE_CODES, GatewayCode, ServiceCode
from workflows import policies
from workflows import search_attributes as sa
from workflows.ids import payment_correlation_id
from workflows.models import (
    MAX_CHALLENGE_WINDOW,
    ActionResult,
    CaptureCommand,
    PaymentFlow,
    PaymentRequestSummary,
    PaymentState,
    PaymentStatus,
)


async def test_paid_at_once(env, task_queue, fake, key):
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    assert outcome.status is PaymentStatus.PAID
    assert outcome.invoice_number == f"INV-{key}-pay"
    assert outcome.workflow_id == f"payment-{key}"
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID
    assert [(t.from_status, t.to_status) for t in state.history] == [("PENDING", "PAID")]
    [charge] = fake.calls_of("create_charge", key)
    assert charge.request.transactionId == f"{key}-pay"
    assert charge.request.operation.value == "PAY"
    assert charge.correlation_id == payment_correlation_id(key)
    await save_history(handle, "direct_paid")


async def test_search_attributes_upserted(env, task_queue, key):
    _, handle = await start_payment(env.client, task_queue, payment_input(key, "150000.50"))
    await finish(env, handle)
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(sa.PAYMENT_STATUS) == "PAID"
    assert attrs.get(sa.FLOW) == "DIRECT"
    assert attrs.get(sa.CUSTOMER_ID) == "CUST000123"
    assert attrs.get(sa.AMOUNT) == 150000
    assert attrs.get(sa.INVOICE_NUMBER) == f"INV-{key}-pay"
    # Nothing about the card in clear metadata.
    assert all("tok" not in str(pair.value) for pair in attrs)


@pytest.mark.parametrize("gateway", sorted(DECLINE_CODES, key=lambda g: g.value))
async def test_each_decline(env, task_queue, fake, key, gateway):
    fake.script(f"create_charge:{key}-pay", final_error("DeclinedError", gateway))
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    assert outcome.status is PaymentStatus.DECLINED
    assert outcome.gateway_code == gateway.name
    assert outcome.decline_code == f"400{ServiceCode.CREATE_CHARGE.value}{gateway.value}"
    state = await finish(env, handle)
    assert state.status is PaymentStatus.DECLINED
    assert len(fake.calls_of("create_charge", key)) == 1  # a decline is never retried


@pytest.mark.parametrize(
    "error_type", ["RuleViolationError", "InvalidRequestError", "AuthenticationError"]
)
async def test_final_errors_fail(env, task_queue, fake, key, error_type):
    fake.script(
        f"create_charge:{key}-pay", final_error(error_type, GatewayCode.UNSPECIFIED_FAILURE)
    )
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    assert outcome.status is PaymentStatus.FAILED
    assert error_type in (outcome.reason or "")
    assert (await finish(env, handle)).status is PaymentStatus.FAILED


async def test_3ds_passes_by_callback(env, task_queue, fake, key):
    fake.challenge.add(f"{key}-pay")
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    assert outcome.status is PaymentStatus.CHALLENGE
    assert outcome.authentication_url == f"https://3ds.test/{key}-pay"
    state = await state_of(handle)
    assert state.status is PaymentStatus.CHALLENGE
    assert state.authentication_url == outcome.authentication_url

    payment = fake.complete_challenge(f"{key}-pay")
    await handle.signal("payment_callback", fake.callback_for(payment))
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID
    assert state.callbacks_received == 1
    assert [t.to_status for t in state.history] == ["CHALLENGE", "PAID"]
    await save_history(handle, "direct_3ds_callback")


async def test_3ds_fails(env, task_queue, fake, key):
    fake.challenge.add(f"{key}-pay")
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    assert outcome.status is PaymentStatus.CHALLENGE
    payment = fake.complete_challenge(f"{key}-pay", ok=False)
    callback = fake.callback_for(payment, GatewayCode.AUTHENTICATION_FAILED)
    await handle.signal("payment_callback", callback)
    state = await finish(env, handle)
    assert state.status is PaymentStatus.DECLINED
    assert state.gateway_code == "AUTHENTICATION_FAILED"


async def test_callback_lost_poll_wins(env, task_queue, fake, key):
    fake.challenge.add(f"{key}-pay")
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    assert outcome.status is PaymentStatus.CHALLENGE
    fake.complete_challenge(f"{key}-pay")  # and no callback ever comes
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID
    assert state.callbacks_received == 0
    assert 1 <= len(fake.calls_of("payment_status", key)) <= 2


async def test_challenge_window_ends_failed(env, task_queue, fake, key):
    fake.challenge.add(f"{key}-pay")
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    assert outcome.status is PaymentStatus.CHALLENGE
    state = await finish(env, handle)
    assert state.status is PaymentStatus.FAILED
    # The provider ends the unfinished challenge FAILED: its answer, not a guess.
    assert state.decline_reason == "payment failed (status API)"
    # Polled on a backoff (5, 10, 20, 40, 60, ...): bounded, plus one last confirmation.
    polls = len(fake.calls_of("payment_status", key))
    assert 6 <= polls <= 12


async def test_callback_before_charge_response(env, task_queue, fake, key):
    fake.callback_first.add(f"{key}-pay")
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID
    assert outcome.status in (PaymentStatus.CHALLENGE, PaymentStatus.PAID)
    # Woken by the early callback: confirmed at once, no poll timer waited out.
    assert len(fake.calls_of("payment_status", key)) == 1


async def test_callback_for_another_payment_ignored(env, task_queue, fake, key):
    fake.challenge.add(f"{key}-pay")
    _, handle = await start_payment(env.client, task_queue, payment_input(key))
    payment = fake.complete_challenge(f"{key}-pay")
    stranger = fake.callback_for(payment).model_copy(update={"transactionId": "someone-pay"})
    await handle.signal("payment_callback", stranger)
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID  # by polling
    assert any("not this payment" in i.reason for i in state.ignored)


async def test_start_twice_is_one_payment(env, task_queue, fake, key):
    first, handle = await start_payment(env.client, task_queue, payment_input(key))
    await finish(env, handle)
    fake.challenge.discard(f"{key}-pay")
    charges = len(fake.calls_of("create_charge", key))
    with pytest.raises(Exception):  # noqa: B017 - closed: REJECT_DUPLICATE refuses a new run
        await start_payment(env.client, task_queue, payment_input(key))
    assert len(fake.calls_of("create_charge", key)) == charges == 1
    assert first.status is PaymentStatus.PAID


async def test_capture_refused_for_direct_payment(env, task_queue, fake, key):
    fake.challenge.add(f"{key}-pay")
    _, handle = await start_payment(env.client, task_queue, payment_input(key))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("capture_payment", CaptureCommand(), result_type=ActionResult)
    assert "nothing to capture" in str(refused.value.cause)
    await handle.signal("capture", CaptureCommand(amount=Decimal("1.00")))
    fake.complete_challenge(f"{key}-pay")
    state: PaymentState = await finish(env, handle)
    assert state.status is PaymentStatus.PAID
    assert any(i.name == "capture signal" for i in state.ignored)


@pytest.mark.parametrize(
    ("amount", "auth_capture"), [("999.00", False), ("150000.00", True)], ids=["amount", "flow"]
)
async def test_second_request_with_another_payment_is_refused(
    env, task_queue, fake, key, amount, auth_capture
):
    # Review item 14: the same payment id with another amount or flow joins the running payment
    # (USE_EXISTING): with its request summary, first_outcome refuses instead of answering.
    fake.challenge.add(f"{key}-pay")  # keeps the first payment open
    first = payment_input(key)
    summary = PaymentRequestSummary.of(first, PaymentFlow.DIRECT)
    outcome, handle = await start_payment(env.client, task_queue, first, summary=summary)
    assert outcome.status is PaymentStatus.CHALLENGE

    other = payment_input(key, amount)
    flow = PaymentFlow.AUTH_CAPTURE if auth_capture else PaymentFlow.DIRECT
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await start_payment(
            env.client,
            task_queue,
            other,
            auth_capture=auth_capture,
            summary=PaymentRequestSummary.of(other, flow),
        )
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == "IdempotencyConflict"

    same, _ = await start_payment(env.client, task_queue, first, summary=summary)
    assert same.status is PaymentStatus.CHALLENGE
    fake.complete_challenge(f"{key}-pay")
    assert (await finish(env, handle)).status is PaymentStatus.PAID
    assert len(fake.calls_of("create_charge", key)) == 1


async def test_callback_wakes_are_bounded(env, task_queue, fake, key):
    # Review item 10: a flood of callbacks cannot drive look-ups (and ``s<n>``) without bound.
    fake.challenge.add(f"{key}-pay")
    _, handle = await start_payment(
        env.client, task_queue, payment_input(key, challenge_window=MAX_CHALLENGE_WINDOW)
    )
    callback = fake.callback_for(fake.payment_by_tid(f"{key}-pay"))

    def looked_up():
        return fake.calls_of("payment_status", key)

    for _ in range(policies.MAX_CALLBACK_LOOKUPS):
        before = len(looked_up())
        await handle.signal("payment_callback", callback)
        await wait_for(handle, lambda s, n=before: len(looked_up()) > n)
    # The budget is spent: more callbacks, each given time to act, look nothing up (a poll
    # timer, 5 s then 10 s apart in real time here, may account for one).
    before = len(looked_up())
    for _ in range(5):
        await handle.signal("payment_callback", callback)
        await asyncio.sleep(0.2)
    assert len(looked_up()) - before <= 1
    fake.complete_challenge(f"{key}-pay")
    assert (await finish(env, handle)).status is PaymentStatus.PAID  # the poll timers still look
