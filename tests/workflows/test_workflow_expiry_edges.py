"""Void-first expiry of an auth-capture payment: the edges (``authorization.expire`` under
``AUTH_CAPTURE_VOID_FIRST_EXPIRY_202612``, through ``compensation.compensate``).

At the window's end the hold is voided; only a void that did not succeed (refused, or out of
retries) is looked up, and the look-up's answer decides: REFUNDED / FAILED are applied as they
are (``_MOVED_ELSEWHERE``, nothing sent after), INITIATED / AUTHENTICATION_IN_PROGRESS give
Kartu no status to take (NEEDS_ATTENTION, the void kept). A void the provider cannot be reached
for is retried a day (the ``COMPENSATION`` policy), then asks ops; never EXPIRED unconfirmed.

The common cases (plain expiry, provider already VOIDED, CAPTURED kept, AUTHORIZED asks ops,
cancel during NEEDS_ATTENTION) live in ``test_workflow_auth_capture.py``. Every test here closes
its payment, so no workflow is left for a later module's time skip to wake.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from test_workflow_auth_capture import SLACK, authorize
from workflow_fakes import FakeAyoconnect
from workflow_helpers import (
    finish,
    state_of,
    update_skipping,
    wait_skipping,
)

from ayoconnect.models import PaymentActionResponse
from ayoconnect.models import PaymentStatus as Wire
from workflows import search_attributes as sa
from workflows.authorization import WINDOW_ENDED
from workflows.models import ActionResult, PaymentState, PaymentStatus, ResolveCommand

DAY = 24 * 3600
# Past the 7-day window (the fake's ``auth_window``) with room for the expiry's calls.
PAST_THE_WINDOW = 8 * DAY
AMOUNT = Decimal("150000.00")
RETRY = ResolveCommand(action="retry", resolved_by="ops@kartu")


def ledger_status(fake: FakeAyoconnect, key: str) -> Wire:
    return fake.payment_by_tid(f"{key}-auth").status


def statuses(state: PaymentState) -> list[str]:
    return [t.to_status for t in state.history]


async def search_status(handle: WorkflowHandle) -> str | None:
    return (await handle.describe()).typed_search_attributes.get(sa.PAYMENT_STATUS)


async def expire_with_ledger(
    env: WorkflowEnvironment, task_queue: str, fake: FakeAyoconnect, key: str, status: Wire
) -> PaymentState:
    """An authorization whose hold the provider moved to ``status`` behind Kartu's back (a lost
    capture answer, a refund, the provider's own failure): its window runs out."""
    handle = await authorize(env, task_queue, key)
    fake.payment_by_tid(f"{key}-auth").status = status
    return await finish(env, handle)


def money_calls(fake: FakeAyoconnect, key: str) -> list[str]:
    """What this payment asked the provider after its charge, in order."""
    return fake.call_names(key, "void", "payment_status", "refund")


def void_tids(fake: FakeAyoconnect, key: str) -> list[str]:
    return [c.request.transactionId for c in fake.calls_of("void", key)]


# --- 1. the refused void's look-up shows REFUNDED ------------------------------------------


async def test_expiry_finding_the_hold_refunded_ends_refunded_and_sends_nothing_more(
    env, task_queue, fake, key
):
    # The hold was captured and refunded without Kartu hearing: the void is refused (nothing to
    # release) and the look-up's REFUNDED is the payment's status. Another void or a refund
    # would be a request for money that is already back.
    state = await expire_with_ledger(env, task_queue, fake, key, Wire.REFUNDED)
    assert state.status is PaymentStatus.REFUNDED
    assert money_calls(fake, key) == ["void", "payment_status"]
    assert void_tids(fake, key) == [f"{key}-cv"]
    assert state.refunded_amount == AMOUNT
    assert state.pending_compensation is None
    assert state.attention_reason is None
    assert PaymentStatus.EXPIRED not in statuses(state)
    assert PaymentStatus.NEEDS_ATTENTION not in statuses(state)


async def test_expiry_finding_a_partial_capture_refunded_reports_the_provider_amount(
    env, task_queue, fake, key
):
    handle = await authorize(env, task_queue, key)
    held = fake.payment_by_tid(f"{key}-auth")
    # Two different figures (refunds are full, so a real ledger shows them equal): the test
    # tells which field Kartu reads for which amount.
    captured, refunded = Decimal("60000.00"), Decimal("50000.00")
    held.status, held.captured, held.refunded = Wire.REFUNDED, captured, refunded
    state = await finish(env, handle)
    assert state.status is PaymentStatus.REFUNDED
    assert fake.calls_of("refund", key) == []
    # The provider's figures, not Kartu's authorized amount: it never heard of the capture.
    assert state.refunded_amount == refunded
    assert state.captured_amount == captured


# --- 2. the look-up shows no status Kartu can take -----------------------------------------


@pytest.mark.parametrize("shown", [Wire.INITIATED, Wire.AUTHENTICATION_IN_PROGRESS])
async def test_expiry_finding_the_payment_undecided_asks_ops_with_the_void_pending(
    env, task_queue, fake, key, shown
):
    # The void is refused and the status API shows a payment not yet decided: nothing says
    # the hold is gone (not EXPIRED) nor that the payment failed (not FAILED), so ops are
    # asked and Kartu keeps the void to send.
    handle = await authorize(env, task_queue, key)
    held = fake.payment_by_tid(f"{key}-auth")
    held.status = shown
    needs_ops = PaymentStatus.NEEDS_ATTENTION
    state = await wait_skipping(env, handle, PAST_THE_WINDOW, lambda s: s.status is needs_ops)
    assert state.pending_compensation == "void"
    assert "void failed" in (state.attention_reason or "")
    assert PaymentStatus.EXPIRED not in statuses(state)
    assert PaymentStatus.FAILED not in statuses(state)
    assert await search_status(handle) == "NEEDS_ATTENTION"  # ops find it with one search
    assert money_calls(fake, key) == ["void", "payment_status"]

    # The hold is there again; ops' retry sends the kept void, as a new request: the provider
    # stored its "no" for ``cv`` and would replay it forever.
    held.status = Wire.AUTHORIZED
    answer = await update_skipping(env, handle, "resolve_payment", RETRY, ActionResult, 60)
    assert answer.outcome == "resolved"
    state = await finish(env, handle)
    assert state.status is PaymentStatus.EXPIRED
    assert state.history[-1].reason == WINDOW_ENDED
    assert state.pending_compensation is None
    assert void_tids(fake, key) == [f"{key}-cv", f"{key}-cv2"]
    assert money_calls(fake, key) == ["void", "payment_status", "void"]
    assert ledger_status(fake, key) is Wire.VOIDED


# --- 3. the look-up shows FAILED -----------------------------------------------------------


async def test_expiry_finding_the_payment_failed_ends_failed_without_a_refund(
    env, task_queue, fake, key
):
    state = await expire_with_ledger(env, task_queue, fake, key, Wire.FAILED)
    assert state.status is PaymentStatus.FAILED
    assert money_calls(fake, key) == ["void", "payment_status"]
    assert state.pending_compensation is None
    assert state.attention_reason is None
    assert state.refunded_amount is None
    assert PaymentStatus.EXPIRED not in statuses(state)


# --- 4. the void cannot reach the provider for a day ---------------------------------------


async def test_expiry_void_unreachable_for_a_day_asks_ops_then_voids_once(
    env, task_queue, fake, key
):
    handle = await authorize(env, task_queue, key)
    expires_at = (await state_of(handle)).authorization_expires_at
    assert expires_at is not None
    fake.down.add("void")  # every void fails on the network, before the provider
    try:
        # Half a day after the window: the void is still being retried (a day, the
        # COMPENSATION policy), the payment says AUTHORIZED with the void pending, not EXPIRED.
        await env.sleep(7 * DAY + DAY // 2)
        state = await state_of(handle)
        assert state.status is PaymentStatus.AUTHORIZED
        assert state.pending_compensation == "void"
        assert len(fake.calls_of("void", key)) > 1  # retried, not given up
        assert fake.calls_of("payment_status", key) == []  # no answer yet: nothing to look up

        # The day of retries is over: ops are asked, the void kept; still nothing is EXPIRED.
        needs_ops = PaymentStatus.NEEDS_ATTENTION
        state = await wait_skipping(env, handle, DAY, lambda s: s.status is needs_ops)
        assert "void failed" in (state.attention_reason or "")
        assert state.pending_compensation == "void"
        assert PaymentStatus.EXPIRED not in statuses(state)
        assert await search_status(handle) == "NEEDS_ATTENTION"
        asked_ops = next(t.at for t in state.history if t.to_status == needs_ops)
        assert timedelta(hours=23) <= asked_ops - expires_at <= timedelta(days=1) + SLACK
        assert ledger_status(fake, key) is Wire.AUTHORIZED
    finally:
        fake.down.discard("void")
    sent_in_outage = len(fake.calls_of("void", key))
    assert set(void_tids(fake, key)) == {f"{key}-cv"}

    # The provider is back, but the workflow waits for ops (the compensation's rule): it does
    # not resend on its own.
    await env.sleep(3600)
    assert (await state_of(handle)).status is PaymentStatus.NEEDS_ATTENTION
    assert len(fake.calls_of("void", key)) == sent_in_outage

    answer = await update_skipping(env, handle, "resolve_payment", RETRY, ActionResult, 60)
    assert answer.outcome == "resolved"
    state = await finish(env, handle)
    assert state.status is PaymentStatus.EXPIRED
    assert state.history[-1].reason == WINDOW_ENDED  # released by Kartu's void, confirmed
    assert state.pending_compensation is None
    assert state.attention_reason is None
    # One void more, and the same request: the outage was no "no", so ``cv`` is resent (not
    # ``cv2``) and the provider's idempotency makes it one release whatever it had seen.
    assert len(fake.calls_of("void", key)) == sent_in_outage + 1
    assert set(void_tids(fake, key)) == {f"{key}-cv"}
    _, stored = fake.stored[f"{key}-cv"]
    assert isinstance(stored, PaymentActionResponse)
    assert stored.status is Wire.VOIDED
    assert ledger_status(fake, key) is Wire.VOIDED
    # The single look-up came after the day of failures; after the retry nothing else.
    assert money_calls(fake, key)[-3:] == ["void", "payment_status", "void"]
    assert money_calls(fake, key).count("payment_status") == 1
    assert fake.calls_of("refund", key) == []
