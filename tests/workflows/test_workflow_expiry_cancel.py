"""A cancel that arrives while an expiry's refused void is being looked up.

At the window's end Kartu voids the hold; the provider refuses (its own expiry came first, or a
capture whose answer Kartu lost took the hold) and Kartu asks the status API. A cancel landing
during that look-up cancels the look-up (it moves no money), then resumes the expiry's void as
the cancel's own compensation (``PendingCompensation.resumed_by``): the same void, byte for byte
under the same transactionId (the provider replays its refusal), then a new look-up decides.
What differs from an expiry left alone is the saga's rule: money found captured goes back.

Each test runs on a time-skipping server of its own: the look-up is held open when the
workflow moves on, and a server that saw a workflow close beside one of its cancelled
activities still running was seen to stop skipping time for every later test of its process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from workflow_fakes import FakeAyoconnect
from workflow_helpers import own_worker, payment_input, start_payment, state_of

from ayoconnect.models import PaymentStatus as Wire
from tests.time_skipping import time_skipping_env
from workflows.authorization import WINDOW_ENDED
from workflows.models import PaymentState, PaymentStatus

PAST_THE_WINDOW = 8 * 24 * 3600  # the fake's window is 7 days
AMOUNT = Decimal("150000.00")
REAL_WAIT = 60.0  # seconds of real time for the worker to reach a call, on a loaded machine


@pytest.fixture
def fake() -> FakeAyoconnect:
    return FakeAyoconnect()


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_env() as environment:
        yield environment


@pytest.fixture
async def task_queue(env: WorkflowEnvironment, fake: FakeAyoconnect) -> AsyncIterator[str]:
    async with own_worker(env, fake, "kartu-expiry-cancel") as queue:
        yield queue


async def calls_reach(fake: FakeAyoconnect, key: str, names: list[str]) -> None:
    """Wait (real time) until the provider has seen exactly ``names`` for this payment."""
    deadline = asyncio.get_running_loop().time() + REAL_WAIT
    while (seen := fake.call_names(key, "void", "payment_status", "refund")) != names:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"expected the calls {names}, saw {seen}")
        await asyncio.sleep(0.02)


async def cancelled_during_the_look_up(
    env: WorkflowEnvironment, task_queue: str, fake: FakeAyoconnect, key: str, ledger: Wire
) -> PaymentState:
    """Authorize, let the provider move the hold to ``ledger``, reach the expiry's look-up of
    the refused void and cancel the payment while that look-up is held open."""
    outcome, handle = await start_payment(
        env.client, task_queue, payment_input(key), auth_capture=True
    )
    assert outcome.status is PaymentStatus.AUTHORIZED
    held = fake.payment_by_tid(f"{key}-auth")
    held.status = ledger
    if ledger is Wire.CAPTURED:
        held.captured = AMOUNT
    look_up = fake.gates["payment_status"] = asyncio.Event()
    # The skip stops at the held look-up (the server never skips past work in flight) and
    # goes on once the workflow has closed.
    skipping = asyncio.create_task(env.sleep(PAST_THE_WINDOW))
    try:
        await calls_reach(fake, key, ["void", "payment_status"])
        await handle.cancel()
        # The cancel is taken first: the void is sent again while the first look-up still
        # hangs; only then does the provider answer look-ups again.
        await calls_reach(fake, key, ["void", "payment_status", "void", "payment_status"])
        look_up.set()
        state = await ended_cancelled(handle)
    except BaseException:
        look_up.set()
        skipping.cancel()  # the failure above is the one to report, not a skip left waiting
        raise
    await asyncio.wait_for(skipping, REAL_WAIT)
    return state


async def ended_cancelled(handle: WorkflowHandle) -> PaymentState:
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), REAL_WAIT)
    assert isinstance(failure.value.cause, CancelledError)
    return await state_of(handle)


async def test_a_cancel_during_the_look_up_of_a_hold_the_provider_expired_ends_expired(
    env, task_queue, fake, key
):
    state = await cancelled_during_the_look_up(env, task_queue, fake, key, Wire.VOIDED)
    assert state.status is PaymentStatus.EXPIRED
    # One void request, sent twice with the same transactionId and body (the fixture's
    # ``no_body_drift`` checks the body): the provider replays its refusal, no second void.
    voids = [c.request.transactionId for c in fake.calls_of("void", key)]
    assert voids == [f"{key}-cv", f"{key}-cv"]
    assert fake.calls_of("refund", key) == []
    # The story says why the hold was finally let go: the cancel, resuming the expiry.
    last = state.history[-1]
    assert last.to_status == PaymentStatus.EXPIRED
    assert last.reason.startswith(f"payment cancelled, resuming '{WINDOW_ENDED}'")
    assert state.pending_compensation is None
    assert PaymentStatus.NEEDS_ATTENTION not in [t.to_status for t in state.history]


async def test_a_cancel_during_the_look_up_of_a_hold_found_captured_refunds_it(
    env, task_queue, fake, key
):
    # Left alone, the expiry would keep a capture it finds (``apply_if_moved``): a capture
    # whose answer was lost is the merchant's money. Cancelled, the payment must not keep
    # money: the capture is recorded, then refunded in full.
    state = await cancelled_during_the_look_up(env, task_queue, fake, key, Wire.CAPTURED)
    assert state.status is PaymentStatus.REFUNDED
    assert [t.to_status for t in state.history][-2:] == [
        PaymentStatus.CAPTURED,
        PaymentStatus.REFUNDED,
    ]
    refunds = fake.calls_of("refund", key)
    assert [r.request.amount for r in refunds] == [AMOUNT]
    assert fake.payment_by_tid(f"{key}-auth").status is Wire.REFUNDED
    assert state.refunded_amount == AMOUNT
    assert state.pending_compensation is None
