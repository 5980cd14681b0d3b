"""Charge (PAY or AUTHORIZE) and the 3DS wait, shared by both payment lifecycles.

A callback only wakes the workflow: the status API is the truth, so every decision after the
charge response comes from a status look-up. While the issuer's challenge is open the workflow
waits for a callback and polls on a backoff (``policies.challenge_poll_delays``) in case it is
late or lost; when the challenge window ends it confirms one last time.

Only a decline or a rule violation says for sure that a charge did not happen. Any other failure
(no answer, an unreadable 2xx, a conflict, refused credentials) is decided by looking the charge
up, and a charge Kartu cannot find may still be committed: it is followed like a challenge.
A charge ended undecided is then watched for a grace period (``watch_late_result``): a late
success found then is refunded or voided at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import workflow

from . import ids, policies, versions
from .compensation import compensate
from .payment_core import PaymentCore
from .provider import ProviderError

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import CreateChargeRequest, Operation, Order, PaymentCallback
    from ayoconnect.models import PaymentStatus as Wire

    from .models import UNDECIDED, PaymentFlow, PaymentStatus

# Ayoconnect answered and the answer says no charge exists: no look-up needed.
_NO_CHARGE = frozenset({"DeclinedError", "RuleViolationError"})
# A late answer showing money moved.
_LATE_SUCCESS = frozenset({Wire.SUCCESS, Wire.AUTHORIZED, Wire.CAPTURED})
WINDOW_ENDED = "3DS challenge window ended without a result"
NO_RECORD = "the provider has no record of the charge"
NO_ANSWER = "the charge got no definite answer"


async def charge(core: PaymentCore) -> None:
    """Charge once and follow it until decided: PAID / AUTHORIZED / DECLINED / FAILED."""
    if core.past_deadline():
        # Checked before any money moves: a charge after the deadline would only be refunded.
        core.state.decline_reason = "the payment's deadline passed before the charge was sent"
        core.transition(PaymentStatus.FAILED, core.state.decline_reason)
        return
    try:
        response = await core.provider.charge(_charge_request(core))
    except ProviderError as err:
        core.progress.charge_answered = True
        if err.failure.error_type in _NO_CHARGE:
            core.fail_from_error(err.failure)
        else:
            await _decide_after_failed_charge(core, err)
        core.raise_if_cancelled()
        return
    core.progress.charge_answered = True
    core.apply_charge_response(response)
    core.raise_if_cancelled()
    if core.status in UNDECIDED:
        await settle_challenge(core)


async def settle_challenge(core: PaymentCore) -> None:
    """Wait for the issuer's challenge to end, woken by callbacks, polling on a backoff; then
    the provider's final word decides. Without one the payment is PENDING_PROVIDER."""
    window_end = _challenge_started(core) + core.input.challenge_window
    delays = policies.challenge_poll_delays()
    while core.status in UNDECIDED:
        remaining = window_end - workflow.now()
        if remaining.total_seconds() <= 0:
            break
        if not core.woken():
            try:
                await workflow.wait_condition(
                    core.woken,
                    timeout=min(next(delays), remaining),
                    timeout_summary="3DS poll",
                )
            except TimeoutError:
                pass
        core.take_wake()
        detail = await core.confirm()
        if detail is not None:
            core.apply_status(detail)
    if core.status not in UNDECIDED:
        return
    found = await core.look_up()
    if found.detail is not None:
        core.apply_status(found.detail)
    if core.status not in UNDECIDED:
        return
    if found.not_found:
        # The provider answered that it has no such charge: nothing was taken. A request still
        # on its way could commit late, so the late-result watch follows.
        core.state.decline_reason = NO_RECORD
        core.transition(PaymentStatus.FAILED, NO_RECORD)
        await watch_late_result(core)
        return
    challenged = any(t.to_status == PaymentStatus.CHALLENGE for t in core.state.history)
    await await_provider_answer(core, WINDOW_ENDED if challenged else NO_ANSWER)


async def await_provider_answer(core: PaymentCore, why: str | None = None) -> None:
    """No terminal state without a definite provider answer: PENDING_PROVIDER, asking again on
    a long backoff (a callback wakes it) until the provider says paid, authorized or failed.
    Past the payment's ``provider_attention_after`` it is NEEDS_ATTENTION (ops are told, and
    may close it, checked against the provider) and goes on asking all the same.

    Resumable: a cancel while waiting calls it again and it goes on asking."""
    s = core.state
    if s.provider_answer_awaited_since is None:
        s.provider_answer_awaited_since = workflow.now()
        reason = f"{why or 'no definite answer'}: the provider's final word is awaited"
        s.attention_reason = reason
        core.transition(PaymentStatus.PENDING_PROVIDER, reason)
    attention_at = s.provider_answer_awaited_since + core.input.provider_attention_after
    delays = policies.provider_poll_delays(core.input.provider_poll_max)
    while core.status in _STILL_ASKING:
        if core.provider.lookups_left() <= policies.LOOKUPS_KEPT_FOR_OPS:
            await _ops_decide_unknown(core)
            break
        if core.status is PaymentStatus.PENDING_PROVIDER and workflow.now() >= attention_at:
            if versions.changed(versions.PROVIDER_ATTENTION_202612):
                _tell_ops_still_unknown(core)
            else:
                attention_at = _NEVER  # started before the change: stays PENDING_PROVIDER
        if core.status is PaymentStatus.NEEDS_ATTENTION:
            command = await core.take_resolution()
            if command is not None and command.action == "close":
                core.close_by_ops(command)
                break
            # A ``retry`` asks the provider now (as a callback would); so does a refused close.
        elif not core.woken():
            wait = next(delays)
            if core.status is PaymentStatus.PENDING_PROVIDER and attention_at is not _NEVER:
                wait = min(wait, attention_at - workflow.now())
            try:
                await workflow.wait_condition(
                    core.woken, timeout=wait, timeout_summary="provider answer poll"
                )
            except TimeoutError:
                pass
        core.take_wake()
        found = await core.look_up()
        if found.detail is not None:
            core.apply_status(found.detail, source="status API, after waiting for it")
        elif found.not_found:
            s.decline_reason = NO_RECORD
            core.transition(PaymentStatus.FAILED, NO_RECORD)
        if core.status is PaymentStatus.NEEDS_ATTENTION and not core.resolutions:
            await _until_next_poll_or_ops(core, next(delays))
    answered = s.provider_answer_awaited_since is not None
    s.provider_answer_awaited_since = None
    if answered:
        s.attention_reason = None
    if core.status is PaymentStatus.FAILED and s.decline_reason == NO_RECORD:
        await watch_late_result(core)


# PENDING_PROVIDER, and NEEDS_ATTENTION once it took too long (ops told, Kartu still asking).
_STILL_ASKING = frozenset({PaymentStatus.PENDING_PROVIDER, PaymentStatus.NEEDS_ATTENTION})
# Marks an execution that passed its attention age before the change (see versions.py).
_NEVER = datetime.max.replace(tzinfo=UTC)


def _ops_answered(core: PaymentCore) -> bool:
    return core.status is PaymentStatus.NEEDS_ATTENTION and bool(core.resolutions)


async def _until_next_poll_or_ops(core: PaymentCore, delay: timedelta) -> None:
    """NEEDS_ATTENTION while asking: the next look-up comes after ``delay``, or sooner when a
    callback wakes it or ops resolve."""
    try:
        await workflow.wait_condition(
            lambda: core.woken() or _ops_answered(core),
            timeout=delay,
            timeout_summary="provider answer poll",
        )
    except TimeoutError:
        pass


def _tell_ops_still_unknown(core: PaymentCore) -> None:
    since = core.state.provider_answer_awaited_since
    assert since is not None
    hours = int((workflow.now() - since).total_seconds() // 3600)
    why = (
        f"no definite answer from the provider for {hours} h: Kartu keeps asking; close it "
        "with the status the provider shows (checked), or force it with a note"
    )
    core.state.attention_reason = why
    core.transition(PaymentStatus.NEEDS_ATTENTION, why)


async def _ops_decide_unknown(core: PaymentCore) -> None:
    """Asked so often that this payment's look-up ids are nearly spent (at the default 1 h
    interval: more than a year): ops establish the outcome and close it (checked against the
    provider with the look-ups kept for that, or forced with a note)."""
    asked = ids.MAX_LOOKUPS - core.provider.lookups_left()
    why = f"no definite answer from the provider after {asked} look-ups: ops decide"
    core.state.attention_reason = why
    core.transition(PaymentStatus.NEEDS_ATTENTION, why)
    while core.status is PaymentStatus.NEEDS_ATTENTION:
        command = await core.next_resolution()
        if command.action == "close":
            core.close_by_ops(command)
        else:
            core.ignore("resolve", "nothing to retry: close with the status the provider shows")


async def watch_late_result(core: PaymentCore) -> None:
    """Kartu ended the charge FAILED because the provider had no record of it: for a grace
    period a callback wakes a look-up, and a final look-up closes the watch. A success found (a
    lost charge committed late) is released at once.

    Resumable: a cancel during the watch calls it again and it keeps the same end."""
    s = core.state
    if s.late_result_watch_until is None:
        s.late_result_watch_until = workflow.now() + policies.LATE_RESULT_GRACE
    until = s.late_result_watch_until
    while True:
        remaining = until - workflow.now()
        woken = core.woken()
        if not woken and remaining.total_seconds() > 0:
            try:
                await workflow.wait_condition(
                    core.woken, timeout=remaining, timeout_summary="late result watch"
                )
                woken = True
            except TimeoutError:
                pass
        core.take_wake()
        detail = await core.confirm()
        if detail is not None and detail.status in _LATE_SUCCESS:
            s.late_result_watch_until = None  # decided: from here on, the compensation's story
            core.apply_status(detail, source="late success, status API")
            async with core.lock:
                await compensate(core, "late success: released, the charge had been ended")
            return
        if not woken or (detail is not None and detail.status is Wire.FAILED):
            break
    s.late_result_watch_until = None


def watching_late_result(core: PaymentCore) -> bool:
    return core.state.late_result_watch_until is not None


def on_payment_callback(core: PaymentCore, callback: PaymentCallback) -> None:
    """A callback is a hint: check it is ours, then wake the waiting charge to confirm."""
    if callback.transactionId != core.charge_transaction_id:
        core.ignore(
            "payment_callback",
            f"transactionId {callback.transactionId} is not this payment's charge",
        )
        return
    core.state.callbacks_received += 1
    if core.status is PaymentStatus.AUTHORIZED and callback.status is Wire.VOIDED:
        # The provider's authorization window may end before Kartu's timer (clocks, a shorter
        # card window): a hint only, the hold loop asks the status API before it believes it.
        core.progress.provider_void_hint = True
        return
    if not core.awaiting_answer and not watching_late_result(core):
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


async def _decide_after_failed_charge(core: PaymentCore, err: ProviderError) -> None:
    """The charge call failed without a decline: the provider's record decides."""
    detail = None
    try:
        detail = await core.provider.status(original_transaction_id=core.charge_transaction_id)
    except ProviderError as lookup:
        if lookup.failure.not_found and err.failure.final:
            # Ayoconnect answered the charge with a "no" and has no record of it.
            core.fail_from_error(err.failure)
            await watch_late_result(core)
            return
    if detail is not None:
        core.apply_status(detail)
    if core.status in UNDECIDED:
        # No answer, or not found after a call that got none: the charge may still commit.
        # Follow it as a 3DS challenge (polls, then the late-result watch).
        await settle_challenge(core)


def _challenge_started(core: PaymentCore):
    for t in reversed(core.state.history):
        if t.to_status == PaymentStatus.CHALLENGE:
            return t.at
    return workflow.now()
