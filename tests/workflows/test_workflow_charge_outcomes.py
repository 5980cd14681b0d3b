"""How a charge is decided when its answer is missing, unreadable or late: look-ups rather than
guesses, a late-result watch after the 3DS window, and no charge at all past the deadline."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from workflow_fakes import final_error, transient_error
from workflow_helpers import (
    finish,
    payment_input,
    save_history,
    start_in_background,
    start_payment,
    state_of,
    wait_for,
)

from ayoconnect.codes import GatewayCode
from workflows.models import PaymentStatus

# 300 s challenge window (the provider ends an unfinished one FAILED at 300 s too).
AFTER_WINDOW = 330


@pytest.mark.parametrize(("auth_capture", "kept"), [(False, "PAID"), (True, "AUTHORIZED")])
async def test_3ds_success_after_kartus_window_is_kept(
    env, task_queue, fake, key, auth_capture, kept
):
    # The provider keeps the challenge open longer than Kartu's window: Kartu never says FAILED
    # while the provider has not (PENDING_PROVIDER), and a success then is the payment's.
    step = "auth" if auth_capture else "pay"
    fake.challenge.add(f"{key}-{step}")
    fake.challenge_session = timedelta(minutes=30)
    try:
        outcome, handle = await start_payment(
            env.client, task_queue, payment_input(key), auth_capture=auth_capture
        )
    finally:
        fake.challenge_session = timedelta(seconds=300)
    assert outcome.status is PaymentStatus.CHALLENGE
    await env.sleep(AFTER_WINDOW)
    await wait_for(handle, lambda s: s.status is PaymentStatus.PENDING_PROVIDER)
    payment = fake.complete_challenge(f"{key}-{step}")
    await handle.signal("payment_callback", fake.callback_for(payment))
    state = await wait_for(handle, lambda s: s.status == kept)
    assert [t.to_status for t in state.history] == ["CHALLENGE", "PENDING_PROVIDER", kept]
    assert fake.calls_of("refund", key) == fake.calls_of("void", key) == []
    if not auth_capture:
        await finish(env, handle)
        await save_history(handle, "direct_late_3ds_success_kept")


async def test_lost_charge_the_provider_has_no_record_of_is_watched_then_released(
    env, task_queue, fake, key
):
    # No answer to the charge, and the provider answers it has no such charge: FAILED, and a
    # request that commits late after all is found by the late-result watch and released.
    fake.script(f"create_charge:{key}-pay", *[transient_error() for _ in range(8)])
    handle = await start_in_background(env, task_queue, payment_input(key))
    await env.sleep(200 + AFTER_WINDOW)  # 182 s of retries, then the 300 s window
    state = await wait_for(handle, lambda s: s.status is PaymentStatus.FAILED)
    assert state.late_result_watch_until is not None
    assert state.decline_reason == "the provider has no record of the charge"
    fake.commit_late(fake.calls_of("create_charge", key)[0])
    state = await finish(env, handle)
    assert state.status is PaymentStatus.REFUNDED
    assert all("late success" in t.reason for t in state.history[-2:])
    assert len(fake.calls_of("refund", key)) == 1


async def test_no_late_result_ends_failed_after_the_watch(env, task_queue, fake, key):
    fake.challenge.add(f"{key}-pay")
    _, handle = await start_payment(env.client, task_queue, payment_input(key))
    state = await finish(env, handle)
    assert state.status is PaymentStatus.FAILED
    assert state.late_result_watch_until is None
    assert fake.calls_of("refund", key) == []


def commit_before_look_up(fake, key):
    """The charge request was lost on the way, yet reaches Ayoconnect later: it commits just
    before this look-up."""

    def commit(call):
        fake.commit_late(fake.calls_of("create_charge", key)[0])

    return commit


async def test_charge_found_after_a_not_found_look_up(env, task_queue, fake, key):
    # Review item 2: no answer after every attempt, and the look-up says NotFound (s2): the
    # charge is not failed but followed; it commits before the next look-up (s3).
    fake.script(f"create_charge:{key}-pay", *[transient_error() for _ in range(8)])
    fake.script(f"payment_status:{key}-s3", commit_before_look_up(fake, key))
    handle = await start_in_background(env, task_queue, payment_input(key))
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID
    assert len(fake.calls_of("create_charge", key)) == 8
    assert [c.transaction_id for c in fake.calls_of("payment_status", key)][:2] == [
        f"{key}-s2",
        f"{key}-s3",
    ]


@pytest.mark.parametrize(
    "error_type", ["InvalidRequestError", "ConflictError", "AuthenticationError", "FinalError"]
)
async def test_charge_error_after_it_took_effect_is_looked_up(
    env, task_queue, fake, key, error_type
):
    # Review item 5: an unreadable 2xx (InvalidRequestError) or another final error after the
    # request took effect: only a decline or a rule violation skips the look-up.
    fake.lose_answer(f"create_charge:{key}-pay", final_error(error_type, None, http=200))
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    assert outcome.status is PaymentStatus.PAID
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID
    [look_up] = fake.calls_of("payment_status", key)
    assert look_up.original_transaction_id == f"{key}-pay"


async def test_decline_is_not_looked_up(env, task_queue, fake, key):
    fake.script(f"create_charge:{key}-pay", final_error("DeclinedError", GatewayCode.DECLINED))
    outcome, handle = await start_payment(env.client, task_queue, payment_input(key))
    assert outcome.status is PaymentStatus.DECLINED
    await finish(env, handle)
    assert fake.calls_of("payment_status", key) == []


async def test_challenge_found_by_look_up_has_no_url(env, task_queue, fake, key):
    # Review item 12: a retried charge found only by look-up (no 3DS URL) is still a challenge.
    fake.challenge.add(f"{key}-pay")

    def url_lost(call):
        return fake.commit_late(call).model_copy(update={"authenticationUrl": None})

    fake.script(f"create_charge:{key}-pay", url_lost)
    outcome, handle = await asyncio.wait_for(
        start_payment(env.client, task_queue, payment_input(key)), 10
    )
    assert outcome.status is PaymentStatus.CHALLENGE
    assert outcome.authentication_url is None
    assert outcome.reason == "authentication URL unavailable"
    payment = fake.complete_challenge(f"{key}-pay")
    await handle.signal("payment_callback", fake.callback_for(payment))
    assert (await finish(env, handle)).status is PaymentStatus.PAID


async def test_deadline_passed_before_the_charge(env, task_queue, fake, key):
    # Review item 6: a payment whose deadline already passed never moves money.
    deadline = await env.get_current_time() - timedelta(minutes=1)
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key, deadline=deadline)
    )
    assert outcome.status is PaymentStatus.FAILED
    assert "deadline" in (outcome.reason or "")
    assert (await finish(env, handle)).status is PaymentStatus.FAILED
    assert fake.calls_of("create_charge", key) == []


async def test_naive_authorization_expiry_is_jakarta_time(env, task_queue, fake, key):
    # Review item 6: a provider time without an offset must not wedge the workflow.
    fake.naive_times = True
    try:
        outcome, handle = await start_payment(
            env.client, task_queue, payment_input(key), auth_capture=True
        )
    finally:
        fake.naive_times = False
    assert outcome.status is PaymentStatus.AUTHORIZED
    state = await state_of(handle)
    expires = fake.payment_by_tid(f"{key}-auth").expires_at
    assert state.authorization_expires_at == expires  # the same instant, read as +07:00
    assert state.authorization_expires_at.utcoffset() == timedelta(hours=7)
    state = await asyncio.wait_for(finish(env, handle), 10)
    assert state.status is PaymentStatus.EXPIRED
