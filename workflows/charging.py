"""Charge (PAY or AUTHORIZE) and the 3DS wait, shared by both payment lifecycles.

A callback only wakes the workflow: the status API is the truth, so every decision after the
charge response comes from a status look-up. While the issuer's challenge is open the workflow
waits for a callback and polls on a backoff (``policies.challenge_poll_delays``) in case it is
late or lost; when the challenge window ends it confirms one last time.
"""

from __future__ import annotations

from temporalio import workflow

from . import policies
from .payment_core import PaymentCore
from .provider import ProviderError

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import CreateChargeRequest, Operation, Order, PaymentCallback

    from .models import UNDECIDED, PaymentFlow, PaymentStatus


async def charge(core: PaymentCore) -> None:
    """Charge once and follow it until decided: PAID / AUTHORIZED / DECLINED / FAILED."""
    try:
        response = await core.provider.charge(_charge_request(core))
    except ProviderError as err:
        core.charge_answered = True
        if err.failure.final:
            core.fail_from_error(err.failure)
        else:
            # No answer even after retries: the charge may or may not exist. Ask.
            await _decide_after_unanswered_charge(core, err)
        core.raise_if_cancelled()
        return
    core.charge_answered = True
    core.apply_charge_response(response)
    core.raise_if_cancelled()
    if core.status in UNDECIDED:
        await settle_challenge(core)


async def settle_challenge(core: PaymentCore) -> None:
    """Wait for the issuer's challenge to end, woken by callbacks, polling on a backoff."""
    window_end = _challenge_started(core) + core.input.challenge_window
    delays = policies.challenge_poll_delays()
    while core.status in UNDECIDED:
        remaining = window_end - workflow.now()
        if remaining.total_seconds() <= 0:
            break
        if not core.wake:
            try:
                await workflow.wait_condition(
                    lambda: core.wake,
                    timeout=min(next(delays), remaining),
                    timeout_summary="3DS poll",
                )
            except TimeoutError:
                pass
        core.wake = False
        detail = await core.confirm()
        if detail is not None:
            core.apply_status(detail)
    if core.status in UNDECIDED:
        detail = await core.confirm()
        if detail is not None:
            core.apply_status(detail)
    if core.status in UNDECIDED:
        core.state.decline_reason = "3DS challenge window ended without a result"
        core.transition(PaymentStatus.FAILED, "3DS challenge window ended without a result")


def on_payment_callback(core: PaymentCore, callback: PaymentCallback) -> None:
    """A callback is a hint: check it is ours, then wake the waiting charge to confirm."""
    if callback.transactionId != core.charge_transaction_id:
        core.ignore(
            "payment_callback",
            f"transactionId {callback.transactionId} is not this payment's charge",
        )
        return
    core.state.callbacks_received += 1
    if core.status not in UNDECIDED:
        core.ignore(
            "payment_callback",
            f"payment already {core.status.value}: duplicate or late callback",
        )
        return
    core.last_callback = callback
    core.wake = True


def _charge_request(core: PaymentCore) -> CreateChargeRequest:
    p = core.input
    operation = Operation.PAY if core.state.flow is PaymentFlow.DIRECT else Operation.AUTHORIZE
    return CreateChargeRequest(
        transactionId=core.charge_transaction_id,
        customerId=p.customer_id,
        operation=operation,
        cardToken=p.card_token,
        encryptedCard=p.encrypted_card,
        order=Order(id=p.payment_id, amount=p.amount, description=p.description),
        redirectUrl=p.redirect_url,
    )


async def _decide_after_unanswered_charge(core: PaymentCore, err: ProviderError) -> None:
    detail = None
    try:
        detail = await core.provider.status(original_transaction_id=core.charge_transaction_id)
    except ProviderError as lookup:
        if lookup.failure.error_type == "NotFoundError":
            core.fail_from_error(err.failure)
            return
    if detail is None:
        # Neither the charge nor the look-up answered: the payment may still appear, so wait
        # out the challenge window polling, as for a 3DS challenge without a URL.
        await settle_challenge(core)
        return
    core.apply_status(detail)
    if core.status in UNDECIDED:
        await settle_challenge(core)


def _challenge_started(core: PaymentCore):
    for t in reversed(core.state.history):
        if t.to_status == PaymentStatus.CHALLENGE:
            return t.at
    return workflow.now()
