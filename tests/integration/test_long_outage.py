"""A provider outage longer than every Kartu window, through the REAL activities and sandbox.

Five payments are in flight when Ayoconnect's status and charge APIs start answering 5xx:
- a direct and an auth-capture payment in their 3DS challenge, which the customer completes
  during the outage (the money is taken or held, the callback comes, no look-up can confirm);
- a direct and an auth-capture payment whose charge the provider applied but whose answer was
  lost just before the outage (every retry and look-up then fails);
- a direct payment started during the outage (its charge never reaches the provider).

The outage outlasts the 3DS window (15 s), the charge's retries (about 3 minutes) and the
provider poll's interval (5 s): the test server's clock skips ahead, the sandbox answers in real
time. No payment may end FAILED while the ledger holds its money, and none may call itself
decided: they wait PENDING_PROVIDER (or still CHALLENGE / PENDING). When the outage ends every
payment settles to the ledger's truth, and a reconciliation run (the ``kartu reconcile``
workflow, its visibility listing scripted: the test server has none) finds 0 differences.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from integration_support import Card, Harness, new_key, record_history
from temporalio import activity
from temporalio.client import WorkflowHandle

from activities.reconciliation_activities import ReconciliationActivities
from ayoconnect import AyoconnectClient, AyoconnectSettings
from sandbox.customer import authenticate_3ds
from starter.client.reconcile import run_reconciliation
from worker import WorkerSettings, build_worker
from workflows.models import (
    AWAITING_PROVIDER,
    ActionResult,
    CaptureCommand,
    PaymentInput,
    PaymentState,
    PaymentStatus,
    VoidCommand,
)
from workflows.reconciliation_models import (
    LIST_CALLBACKS,
    LIST_PAYMENTS,
    CallbackPage,
    CallbackPageCall,
    PaymentPage,
    PaymentPageCall,
    PaymentRef,
    ReconcileReport,
)

CHALLENGE_WINDOW = timedelta(seconds=15)
PROVIDER_POLL_MAX = timedelta(seconds=5)
# Longer than every window: the 3DS window, the charge activity's retries (8 attempts, about
# 3 minutes, then its look-up and a 3DS-like wait), the provider poll interval.
OUTAGE = timedelta(minutes=6)
STEP = timedelta(seconds=30)
OUTAGE_FAULTS = {
    "create_charge": {"error_rate": 1.0, "status": [500, 503]},
    "payment_status": {"error_rate": 1.0, "status": [500, 502, 503]},
}
# The ledger holds the customer's money in these (taken, or authorized and not released).
MONEY_HELD = frozenset({"SUCCESS", "AUTHORIZED", "CAPTURED"})


@dataclass
class InFlight:
    name: str
    handle: WorkflowHandle[Any, PaymentState]
    expected: PaymentStatus  # once the outage is over: what the ledger says
    ledger: str | None  # the ledger's status for it (None: the provider never saw it)


def short_windows(h: Harness, card: Card) -> PaymentInput:
    return h.payment(
        new_key("out"),
        card,
        "88000.00",
        challenge_window=CHALLENGE_WINDOW,
        provider_poll_max=PROVIDER_POLL_MAX,
    )


async def test_outage_longer_than_every_window_ends_in_the_ledgers_truth(
    h: Harness, cards: dict[str, Card], reconciler: ListedPayments
):
    payments: list[InFlight] = []
    # 3DS payments waiting for the customer.
    challenges = []
    for auth_capture in (False, True):
        payment = short_windows(h, cards["challenge"])
        outcome, handle = await h.start_payment(payment, auth_capture=auth_capture)
        assert outcome.status is PaymentStatus.CHALLENGE and outcome.authentication_url
        challenges.append(outcome.authentication_url)
        payments.append(
            InFlight(
                "3ds-auth" if auth_capture else "3ds-direct",
                handle,
                PaymentStatus.AUTHORIZED if auth_capture else PaymentStatus.PAID,
                "AUTHORIZED" if auth_capture else "SUCCESS",
            )
        )

    # Charges the provider applies but whose answers are lost; then the outage begins at once.
    await h.control.set_faults({"create_charge": {"drop_next": 2}})
    for auth_capture in (False, True):
        payment = short_windows(h, cards["frictionless"])
        handle = await h.start_payment_workflow(payment, auth_capture=auth_capture)
        payments.append(
            InFlight(
                "lost-auth" if auth_capture else "lost-direct",
                handle,
                PaymentStatus.AUTHORIZED if auth_capture else PaymentStatus.PAID,
                "AUTHORIZED" if auth_capture else "SUCCESS",
            )
        )
    await until(lambda c: c.get("create_charge", {}).get("drops") == 2, h)
    await h.control.set_faults(OUTAGE_FAULTS)
    before = (await h.control.faults())["counts"].get("payment_status", {})

    # During the outage: the customers pass 3DS, and one more payment is started.
    for url in challenges:
        await authenticate_3ds(url)
    handle = await h.start_payment_workflow(short_windows(h, cards["frictionless"]))
    payments.append(InFlight("new-direct", handle, PaymentStatus.FAILED, None))
    by_name = {p.name: p for p in payments}
    skipped = timedelta(0)
    while skipped < OUTAGE:
        await h.env.sleep(STEP)  # the test server's clock: timers and retry backoffs
        skipped += STEP
        for p in payments:
            # Never FAILED (nor anything decided) while the provider cannot be asked.
            state = await h.state(p.handle)
            assert state.status in AWAITING_PROVIDER, (p.name, state.status, state.history)
    # Every window is over and nobody decided: they all say the provider's word is awaited.
    for p in payments:
        state = await h.state(p.handle)
        assert state.status is PaymentStatus.PENDING_PROVIDER, (p.name, state.history)
        assert state.attention_reason and "awaited" in state.attention_reason
        ledger = await h.ledger_payments(state.payment_id)
        assert [e["status"] for e in ledger] == ([p.ledger] if p.ledger else [])
    # Kartu kept asking, and the provider never answered.
    status = (await h.control.faults())["counts"]["payment_status"]
    asked = status["calls"] - before.get("calls", 0)
    assert asked > len(payments) and status["errors"] - before.get("errors", 0) == asked
    for name in ("3ds-direct", "3ds-auth"):
        # The SUCCESS / AUTHORIZED callback came and woke the payment: a hint, not the truth.
        assert (await h.state(by_name[name].handle)).callbacks_received >= 1

    # The provider is back: every payment settles to what the ledger says.
    await h.control.clear_faults()
    states = {p.name: await settled(h, p) for p in payments}
    for p in payments:
        state = states[p.name]
        assert state.status is p.expected, (p.name, state.status, state.history)
        assert state.attention_reason is None
        if p.ledger is None:
            assert await h.ledger_payments(state.payment_id) == []
        else:
            assert (await h.reconcile(state))["status"] in MONEY_HELD

    # The holds are settled by the merchant; the direct payments finish on their own.
    captured = await by_name["3ds-auth"].handle.execute_update(
        "capture_payment", CaptureCommand(requested_by="merchant"), result_type=ActionResult
    )
    assert captured.outcome == "captured"
    voided = await by_name["lost-auth"].handle.execute_update(
        "void_payment", VoidCommand(reason="order cancelled"), result_type=ActionResult
    )
    assert voided.outcome == "voided"
    finals: dict[str, PaymentState] = {}
    for p in payments:
        # The payment the provider never saw watches for a late success (15 min, skipped).
        finals[p.name] = await h.result(p.handle, skip_time=p.ledger is None)
    expected_end = {
        "3ds-direct": PaymentStatus.PAID,
        "3ds-auth": PaymentStatus.CAPTURED,
        "lost-direct": PaymentStatus.PAID,
        "lost-auth": PaymentStatus.VOIDED,
        "new-direct": PaymentStatus.FAILED,
    }
    for name, state in finals.items():
        assert state.status is expected_end[name], (name, state.history)
        if by_name[name].ledger is not None:
            payment = await h.reconcile(state)
            # Never FAILED while the provider holds the money.
            assert payment["status"] not in MONEY_HELD or state.status is not PaymentStatus.FAILED
    await record_history(by_name["3ds-direct"].handle, "direct_3ds_paid_after_long_outage")

    # Reconciliation agrees: nothing differs, the one payment the provider never saw is
    # "unknown at the provider".
    report = await reconciler.run(h, payments)
    assert report.differing == [], report.differing
    assert report.checked == len(payments)
    assert report.agreeing == len(payments) - 1
    assert report.unknown_at_provider == [finals["new-direct"].payment_id]


async def until(predicate: Any, h: Harness, timeout: float = 10.0) -> None:
    """Wait (real time) until the sandbox's fault counters satisfy ``predicate``."""
    async with asyncio.timeout(timeout):
        while True:
            if predicate((await h.control.faults())["counts"]):
                return
            await asyncio.sleep(0.01)


async def settled(h: Harness, p: InFlight) -> PaymentState:
    """Once the provider answers: the payment's next poll (``PROVIDER_POLL_MAX``, or the retry
    of a look-up still in flight) finds the truth. Skips time in small steps meanwhile."""
    for _ in range(40):
        state = await h.state(p.handle)
        if state.status is not PaymentStatus.PENDING_PROVIDER:
            return state
        await h.env.sleep(timedelta(seconds=2))
    raise AssertionError(f"{p.name} still PENDING_PROVIDER: {state.history}")


# --- reconciliation on the test server ---------------------------------------------------------


class ListedPayments(ReconciliationActivities):
    """The real activities against the sandbox; only visibility's listing (which the test
    server does not serve) answers with this test's payments."""

    def __init__(self, temporal: Any, provider: AyoconnectClient, task_queue: str) -> None:
        super().__init__(temporal, provider)
        self.task_queue = task_queue
        self.refs: list[PaymentRef] = []

    @activity.defn(name=LIST_PAYMENTS)
    async def list_payments(self, call: PaymentPageCall) -> PaymentPage:
        return PaymentPage(payments=self.refs)

    @activity.defn(name=LIST_CALLBACKS)
    async def list_callbacks(self, call: CallbackPageCall) -> CallbackPage:
        return CallbackPage(callbacks=[])  # every callback of this test found its workflow

    async def run(self, h: Harness, payments: list[InFlight]) -> ReconcileReport:
        """One reconciliation of these payments, as ``kartu reconcile`` runs it."""
        self.refs = [
            PaymentRef(payment_id=p.handle.id.removeprefix("payment-"), workflow_id=p.handle.id)
            for p in payments
        ]
        return await run_reconciliation(
            h.client,
            task_queue=self.task_queue,
            since=timedelta(hours=1),
            confirm_after=timedelta(0),
            workflow_id=f"reconcile-it-{uuid.uuid4().hex[:8]}",
        )


@pytest.fixture(scope="module")
async def reconciler(harness: Harness) -> AsyncIterator[ListedPayments]:
    """A worker on its own task queue with the reconciliation activities above."""
    queue = f"kartu-it-recon-{uuid.uuid4().hex[:8]}"
    async with AyoconnectClient(AyoconnectSettings(base_url=harness.sandbox_url)) as provider:
        listing = ListedPayments(harness.client, provider, queue)
        worker = build_worker(
            harness.client,
            WorkerSettings(KARTU_GRACEFUL_SHUTDOWN_SECONDS=2),
            None,
            activities=[],
            extra_activities=listing.all(),
            task_queue=queue,
        )
        async with worker:
            yield listing
