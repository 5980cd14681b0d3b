"""Reconciliation, time-skipping: the real ``ReconciliationActivities`` over the fake provider's
ledger (``workflow_fakes.FakeAyoconnect``), with visibility listings scripted (the test server
has no visibility). The ledger is changed behind Kartu's back, as another system or the
provider's dashboard would, and every difference must be raised, once, and nothing corrected.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from workflow_fakes import FakeAyoconnect, FakePayment, transient_error
from workflow_helpers import (
    fake_worker,
    finish,
    new_queue,
    payment_input,
    save_history,
    start_payment,
    state_of,
    wait_for,
)

from activities import StatusCall
from activities.reconciliation_activities import ReconciliationActivities
from ayoconnect.codes import GatewayCode, ServiceCode, response_code
from ayoconnect.errors import NotFoundError, TransientError
from ayoconnect.models import PaymentCallback, PaymentDetail, PaymentStatusResponse
from ayoconnect.models import PaymentStatus as Wire
from starter.client import ActionRefused, InvalidRequest, KartuClient, ReviewNotFound
from starter.client.unmatched import record_unmatched_callback
from workflows import ReconciliationWorkflow
from workflows import search_attributes as sa
from workflows.models import ActionResult, PaymentStatus, ResolveCommand
from workflows.reconciliation_models import (
    LIST_CALLBACKS,
    LIST_PAYMENTS,
    RAISE,
    CallbackFinding,
    CallbackPage,
    CallbackPageCall,
    PaymentPage,
    PaymentPageCall,
    PaymentRef,
    RaiseCall,
    RaiseResult,
    ReconcileInput,
    ReconcileReport,
    ReviewState,
    ReviewStatus,
    UnmatchedCallbackState,
    Verdict,
)
from workflows.unmatched_callback import MEMO_KEY


class FakeProviderClient:
    """``AyoconnectClient.payment_status`` over the fake's ledger (its scripts apply too)."""

    def __init__(self, fake: FakeAyoconnect) -> None:
        self.fake = fake
        self.transaction_ids: list[str] = []

    async def payment_status(self, **query: Any) -> PaymentStatusResponse:
        self.transaction_ids.append(query["transaction_id"])
        try:
            return await self.fake.payment_status(StatusCall(**query))
        except ApplicationError as err:
            if err.type == "NotFoundError":
                raise NotFoundError(err.message, http_status=404) from None
            raise TransientError(err.message, http_status=503) from None


class ScriptedListing(ReconciliationActivities):
    """The real activities, but visibility's answers come from the test."""

    def __init__(self, client: Client, provider: FakeProviderClient) -> None:
        super().__init__(client, provider)
        self.payments: list[PaymentRef] = []
        self.callbacks: list[CallbackFinding] = []
        self.raise_fails = False

    @activity.defn(name=LIST_PAYMENTS)
    async def list_payments(self, call: PaymentPageCall) -> PaymentPage:
        start = int(base64.b64decode(call.page_token)) if call.page_token else 0
        end = start + call.page_size
        following = base64.b64encode(str(end).encode()).decode()
        return PaymentPage(
            payments=self.payments[start:end],
            next_page_token=following if end < len(self.payments) else None,
        )

    @activity.defn(name=LIST_CALLBACKS)
    async def list_callbacks(self, call: CallbackPageCall) -> CallbackPage:
        return CallbackPage(callbacks=self.callbacks)

    @activity.defn(name=RAISE)
    async def raise_differences(self, call: RaiseCall) -> RaiseResult:
        if self.raise_fails:
            raise RuntimeError("Temporal refused the signal")
        return await super().raise_differences(call)


@pytest.fixture(scope="module")
def provider(fake: FakeAyoconnect) -> FakeProviderClient:
    return FakeProviderClient(fake)


@pytest.fixture(scope="module")
def listing(env: WorkflowEnvironment, provider: FakeProviderClient) -> ScriptedListing:
    return ScriptedListing(env.client, provider)


@pytest.fixture(scope="module")
async def task_queue(
    env: WorkflowEnvironment, fake: FakeAyoconnect, listing: ScriptedListing, keep_running
) -> str:
    """This module's worker: the fake provider's activities and reconciliation's (running
    until the session ends: see ``keep_running``)."""
    queue = new_queue("kartu-recon")
    keep_running(fake_worker(env, fake, queue, extra_activities=listing.all()))
    return queue


@pytest.fixture(autouse=True)
def fresh_listing(listing: ScriptedListing) -> None:
    listing.payments = []
    listing.callbacks = []
    listing.raise_fails = False


# --- helpers ----------------------------------------------------------------------------------


async def listed(client: Client, *payment_ids: str) -> list[PaymentRef]:
    """What visibility would list: each payment with whether its workflow runs."""
    refs = []
    for pid in payment_ids:
        described = await client.get_workflow_handle(f"payment-{pid}").describe()
        running = described.status == WorkflowExecutionStatus.RUNNING
        refs.append(PaymentRef(payment_id=pid, workflow_id=f"payment-{pid}", running=running))
    return refs


async def reconcile(env: WorkflowEnvironment, task_queue: str, **fields: Any) -> ReconcileReport:
    return await env.client.execute_workflow(
        ReconciliationWorkflow.run,
        ReconcileInput(**fields),
        id=f"reconcile-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
        result_type=ReconcileReport,
    )


async def paid(env: WorkflowEnvironment, task_queue: str, key: str) -> str:
    """A direct payment, PAID, its workflow closed."""
    _, handle = await start_payment(env.client, task_queue, payment_input(key))
    state = await finish(env, handle)
    assert state.status is PaymentStatus.PAID
    return key


def refunded_behind_kartus_back(fake: FakeAyoconnect, payment_id: str) -> FakePayment:
    p = fake.payment_by_tid(f"{payment_id}-pay")
    p.status, p.refunded = Wire.REFUNDED, p.amount
    return p


def answer(p: FakePayment, status: Wire) -> PaymentStatusResponse:
    return PaymentStatusResponse(
        code=200,
        responseCode=response_code(200, ServiceCode.PAYMENT_STATUS, GatewayCode.APPROVED),
        message="ok",
        payment=PaymentDetail(
            invoiceNumber=p.invoice,
            originalTransactionId=p.transaction_id,
            operation=p.operation,
            status=status,
            amount=p.amount,
        ),
    )


async def exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except Exception:  # the test server answers NOT_FOUND as an RPCError
        return False
    return True


# --- tests ------------------------------------------------------------------------------------


def lookups_of(fake: FakeAyoconnect, invoices: set[str]) -> list:
    """This test's payments' status look-ups: the module's other payments, left open, may
    wake (an expiry) while its reconciliation skips time, and look themselves up."""
    return [
        call
        for name, call in fake.calls
        if name == "payment_status" and call.invoice_number in invoices
    ]


async def test_a_clean_run_agrees_and_raises_nothing(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    key: str,
):
    await paid(env, task_queue, key + "p")
    outcome, held = await start_payment(
        env.client, task_queue, payment_input(key + "a"), auth_capture=True
    )
    assert outcome.status is PaymentStatus.AUTHORIZED
    listing.payments = await listed(env.client, key + "p", key + "a")
    invoices = {
        fake.payment_by_tid(f"{key}p-pay").invoice,
        fake.payment_by_tid(f"{key}a-auth").invoice,
    }
    lookups_before = len(lookups_of(fake, invoices))

    # Clock locked: a clean run waits on no timer. Awaited with the clock unlocked, the test
    # server runs free between the run's end and the client locking it again, and on a loaded
    # machine it reached the hold's 7-day expiry first (CI-like run: EXPIRED, not AUTHORIZED).
    with env.auto_time_skipping_disabled():
        report = await asyncio.wait_for(reconcile(env, task_queue), timeout=60)

    assert (report.checked, report.agreeing) == (2, 2)
    assert report.differing == [] and report.unknown_at_provider == []
    assert report.in_progress == [] and report.needs_attention == []
    assert report.window_start == report.started_at - timedelta(hours=48)
    assert report.finished_at is not None
    # One look-up each, nothing looked at again (nothing was doubtful).
    looked_up = len(lookups_of(fake, invoices)) - lookups_before
    assert looked_up == 2
    assert not await exists(env.client, f"review-{key}p")
    assert (await state_of(held)).status is PaymentStatus.AUTHORIZED


async def test_a_refund_kartu_does_not_know_of_opens_one_review_until_ops_resolve_it(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    key: str,
):
    payment_id = await paid(env, task_queue, key)
    listing.payments = await listed(env.client, payment_id)
    refunded_behind_kartus_back(fake, payment_id)

    report = await reconcile(env, task_queue)

    assert (report.checked, report.agreeing) == (1, 0)
    [difference] = report.differing
    assert difference.payment_id == payment_id and difference.running is False
    assert (difference.kartu_status, difference.provider_status) == ("PAID", "REFUNDED")
    assert difference.differences == [
        "a refund Kartu does not know of: Kartu says PAID, the provider says REFUNDED"
    ]
    review_id = f"review-{payment_id}"
    assert difference.raised == f"review {review_id} (NEEDS_ATTENTION)"
    run = env.client.get_workflow_handle(report.reconciliation_id)
    await save_history(run, "reconciliation_review_raised")
    review = env.client.get_workflow_handle(review_id, result_type=ReviewState)
    state = await review.query("state", result_type=ReviewState)
    assert state.status is ReviewStatus.NEEDS_ATTENTION
    assert state.differences == difference.differences
    assert state.raised_by == [report.reconciliation_id]
    attributes = (await review.describe()).typed_search_attributes
    assert attributes.get(sa.PAYMENT_STATUS) == "NEEDS_ATTENTION"
    assert attributes.get(sa.FLOW) == "REVIEW"
    assert attributes.get(sa.CUSTOMER_ID) == "CUST000123"
    # Nothing corrected: the payment still says what Kartu knew.
    payment = env.client.get_workflow_handle(f"payment-{payment_id}")
    assert (await state_of(payment)).status is PaymentStatus.PAID

    # The next run finds it again: the same review hears of it, no second one.
    first_run = (await review.describe()).run_id
    again = await reconcile(env, task_queue)
    assert again.differing[0].raised == difference.raised
    state = await review.query("state", result_type=ReviewState)
    assert state.raised_by == [report.reconciliation_id, again.reconciliation_id]
    assert (await review.describe()).run_id == first_run

    # Ops close it with what they established; the same difference is not raised again.
    await review.signal(
        "resolve",
        ResolveCommand(
            action="close",
            status=PaymentStatus.REFUNDED,
            note="refunded from the provider dashboard, ticket 42",
            resolved_by="ops@kartu",
        ),
    )
    resolved = await finish(env, review)
    assert resolved.status is ReviewStatus.RESOLVED
    await save_history(review, "review_resolved_checked")
    assert "closed as REFUNDED by ops@kartu" in resolved.history[-1].reason
    assert (await review.describe()).typed_search_attributes.get(sa.PAYMENT_STATUS) == "REFUNDED"
    third = await reconcile(env, task_queue)
    assert third.differing[0].raised == f"resolved by ops in {review_id}: not raised again"
    assert (await review.describe()).run_id == first_run


async def open_review(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    key: str,
) -> tuple[str, Any]:
    """A paid payment refunded behind Kartu's back, reconciled: its review is open."""
    payment_id = await paid(env, task_queue, key)
    listing.payments = await listed(env.client, payment_id)
    refunded_behind_kartus_back(fake, payment_id)
    await reconcile(env, task_queue, confirm_after=timedelta(0))
    review = env.client.get_workflow_handle(f"review-{payment_id}", result_type=ReviewState)
    return payment_id, review


async def test_a_review_refuses_retry_and_keeps_waiting(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    key: str,
):
    _payment_id, review = await open_review(env, task_queue, fake, listing, key)
    await review.signal("resolve", ResolveCommand(action="retry"))
    state = await review.query("state", result_type=ReviewState)
    assert state.status is ReviewStatus.NEEDS_ATTENTION
    assert [i.name for i in state.ignored] == ["resolve"]
    assert "nothing to retry" in state.ignored[0].reason


async def test_a_review_close_the_provider_contradicts_is_refused_unless_forced(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    key: str,
):
    _payment_id, review = await open_review(env, task_queue, fake, listing, key)

    claim = ResolveCommand(action="close", status=PaymentStatus.PAID, resolved_by="ops")
    answer = await review.execute_update("resolve_review", claim, result_type=ActionResult)
    assert answer.outcome == "refused"
    assert "provider shows this payment REFUNDED" in (answer.reason or "")
    state = await review.query("state", result_type=ReviewState)
    assert state.status is ReviewStatus.NEEDS_ATTENTION
    assert state.ignored[-1].name == "resolve"

    agreeing = ResolveCommand(action="close", status=PaymentStatus.REFUNDED, note="seen")
    answer = await review.execute_update("resolve_review", agreeing, result_type=ActionResult)
    assert answer.outcome == "resolved"
    resolved = await finish(env, review)
    assert resolved.status is ReviewStatus.RESOLVED
    with pytest.raises(RPCError, match=r"not found|completed"):  # a closed review: no 2nd close
        await review.execute_update("resolve_review", agreeing, result_type=ActionResult)


async def test_kartu_client_closes_a_review_checked(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    key: str,
):
    payment_id, _ = await open_review(env, task_queue, fake, listing, key)
    kartu = KartuClient(env.client, task_queue=task_queue, outcome_timeout=15)

    with pytest.raises(ActionRefused, match="provider shows this payment REFUNDED"):
        await kartu.resolve(payment_id, "close", status="PAID", review=True)
    with pytest.raises(InvalidRequest, match="nothing to retry"):
        await kartu.resolve(payment_id, "retry", review=True)
    result = await kartu.resolve(payment_id, "close", status="REFUNDED", note="ok", review=True)
    assert result is not None and result.outcome == "resolved"
    with pytest.raises(ReviewNotFound):
        await kartu.resolve("nosuchpayment", "close", status="REFUNDED", review=True)


async def test_a_forced_review_close_is_not_checked(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    key: str,
):
    payment_id, review = await open_review(env, task_queue, fake, listing, key)
    looked_up = len(fake.calls_of("payment_status", payment_id))
    forced = ResolveCommand(
        action="close", status=PaymentStatus.PAID, force=True, note="chargeback reversed, t-7"
    )
    answer = await review.execute_update("resolve_review", forced, result_type=ActionResult)
    assert answer.outcome == "resolved"
    resolved = await finish(env, review)
    assert "(forced): chargeback reversed, t-7" in resolved.history[-1].reason
    assert len(fake.calls_of("payment_status", payment_id)) == looked_up


async def test_a_capture_behind_a_running_payments_back_is_signalled_and_reviewed(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    key: str,
):
    _, held = await start_payment(env.client, task_queue, payment_input(key), auth_capture=True)
    p = fake.payment_by_tid(f"{key}-auth")
    p.status, p.captured = Wire.CAPTURED, p.amount
    listing.payments = await listed(env.client, key)
    assert listing.payments[0].running is True

    report = await reconcile(env, task_queue)

    [difference] = report.differing
    assert difference.running is True
    assert difference.differences == [
        "a capture Kartu does not know of: Kartu says AUTHORIZED, the provider says CAPTURED"
    ]
    assert difference.raised == (
        f"signalled payment-{key} (reconcile_difference); review review-{key} (NEEDS_ATTENTION)"
    )
    history = await held.fetch_history()
    signalled = [
        e.workflow_execution_signaled_event_attributes
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert [s.signal_name for s in signalled] == ["reconcile_difference"]
    sent = signalled[0].input.payloads[0].data.decode()
    assert "a capture Kartu does not know of" in sent and report.reconciliation_id in sent
    assert '"provider_status":"CAPTURED"' in sent
    # Ops find it with the one NEEDS_ATTENTION search, whatever the payment does with it.
    assert await exists(env.client, f"review-{key}")
    # The payment keeps what reconciliation found in its own state.
    state = await wait_for(held, lambda s: s.reconcile_differences)
    assert "a capture Kartu does not know of" in state.reconcile_differences[0]


async def test_a_difference_that_settles_before_the_second_look_is_not_raised(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    key: str,
):
    """The provider's first answer disagrees (a refund being recorded, a replica behind), the
    second, a minute later, agrees: nothing is raised."""
    payment_id = await paid(env, task_queue, key)
    listing.payments = await listed(env.client, payment_id)
    p = fake.payment_by_tid(f"{payment_id}-pay")
    fake.script("payment_status", lambda call: answer(p, Wire.REFUNDED))

    started = datetime.now(UTC)
    report = await reconcile(env, task_queue, confirm_after=timedelta(minutes=5))

    assert (report.checked, report.agreeing, report.differing) == (1, 1, [])
    # The second look came after the (skipped) confirm delay, in workflow time.
    assert report.finished_at is not None
    assert report.finished_at - report.started_at >= timedelta(minutes=5)
    assert datetime.now(UTC) - started < timedelta(minutes=1)
    assert not await exists(env.client, f"review-{payment_id}")


async def test_a_provider_that_does_not_answer_is_unknown_not_a_difference(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    provider: FakeProviderClient,
    key: str,
):
    payment_id = await paid(env, task_queue, key)
    listing.payments = await listed(env.client, payment_id)
    refunded_behind_kartus_back(fake, payment_id)  # what it would say, if it answered
    fake.script("payment_status", transient_error(), transient_error())
    before = len(provider.transaction_ids)

    report = await reconcile(env, task_queue)

    assert report.unknown_at_provider == [payment_id]
    assert (report.checked, report.agreeing, report.differing) == (1, 0, [])
    assert len(provider.transaction_ids) - before == 2  # asked again after the delay
    assert not await exists(env.client, f"review-{payment_id}")


async def test_long_windows_continue_as_new_and_never_reuse_a_transaction_id(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    provider: FakeProviderClient,
    key: str,
):
    ids = [await paid(env, task_queue, f"{key}{n}") for n in range(3)]
    listing.payments = await listed(env.client, *ids)
    refunded_behind_kartus_back(fake, ids[1])
    before = len(provider.transaction_ids)

    workflow_id = f"reconcile-{uuid.uuid4().hex[:12]}"
    handle = await env.client.start_workflow(
        ReconciliationWorkflow.run,
        ReconcileInput(page_size=1, pages_per_run=1, batch_size=1),
        id=workflow_id,
        task_queue=task_queue,
        result_type=ReconcileReport,
    )
    report = await handle.result()

    assert (report.checked, report.agreeing) == (3, 2)
    assert [d.payment_id for d in report.differing] == [ids[1]]
    assert report.reconciliation_id == workflow_id
    used = provider.transaction_ids[before:]
    assert len(used) == 4  # three look-ups, and the difference looked at again
    assert len(set(used)) == len(used)
    assert len({t.rsplit("-", 1)[0] for t in used}) == 1  # one key for the whole chain
    assert all(len(t) <= 32 for t in used)


async def test_unmatched_callbacks_are_checked_listed_and_their_payments_reconciled(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    key: str,
):
    """A late SUCCESS callback of a closed payment the provider since refunded: its own check
    raises the difference; the reconciliation lists the callback and checks its payment even
    though visibility did not list the payment."""
    payment_id = await paid(env, task_queue, key)
    p = refunded_behind_kartus_back(fake, payment_id)
    callback = PaymentCallback(
        type="PAYMENT",
        transactionId=p.transaction_id,
        invoiceNumber=p.invoice,
        operation=p.operation,
        status=Wire.SUCCESS,
        amount=p.amount,
        responseCode=response_code(200, ServiceCode.CREATE_CHARGE, GatewayCode.APPROVED),
    )
    raw = callback.model_dump_json().encode()
    stored = await record_unmatched_callback(
        env.client,
        task_queue,
        callback,
        raw,
        routed_to=f"payment-{payment_id}",
        reason="workflow not running: workflow execution already completed",
    )
    assert stored.startswith(f"callback-{payment_id}-pay-")
    # Delivered again (Ayoconnect's retry): the same workflow, not a second one.
    assert stored == await record_unmatched_callback(
        env.client, task_queue, callback, raw, routed_to=None, reason="again"
    )
    handle = env.client.get_workflow_handle(stored, result_type=UnmatchedCallbackState)
    checked = await finish(env, handle)
    await save_history(handle, "unmatched_callback_raised")

    assert checked.verdict is Verdict.DIFFER
    assert checked.raised == f"review review-{payment_id} (NEEDS_ATTENTION)"
    finding = checked.memo.finding or ""
    assert finding.startswith("differs: a refund Kartu does not know of")
    assert "the callback said SUCCESS, the provider's status API says REFUNDED" in finding
    memo = await (await handle.describe()).memo_value(MEMO_KEY)
    assert memo["finding"] == finding and memo["payment_id"] == payment_id
    assert "cardToken" not in str(memo)
    # The Temporal UI says what came in and what the check found, without opening the input.
    shown = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    details = shown.current_details
    assert details.startswith(f"**PAYMENT callback** · SUCCESS · transactionId {p.transaction_id}")
    assert f"payment {payment_id}" in details and details.endswith(finding)

    listing.callbacks = [
        CallbackFinding(
            callback_workflow_id=stored,
            type="PAYMENT",
            transaction_id=p.transaction_id,
            status="SUCCESS",
            received_at=checked.memo.received_at,
            payment_id=payment_id,
            finding=finding,
        )
    ]
    report = await reconcile(env, task_queue)
    assert [c.callback_workflow_id for c in report.unmatched_callbacks] == [stored]
    assert [d.payment_id for d in report.differing] == [payment_id]
    assert report.differing[0].raised == f"review review-{payment_id} (NEEDS_ATTENTION)"


async def test_a_callback_claiming_money_for_a_payment_kartu_does_not_know_is_raised(
    env: WorkflowEnvironment, task_queue: str, key: str
):
    callback = PaymentCallback(
        type="PAYMENT",
        transactionId=f"{key}-pay",
        invoiceNumber="INV-ELSEWHERE",
        operation="PAY",
        status=Wire.SUCCESS,
        amount=Decimal("99000.00"),
        responseCode=response_code(200, ServiceCode.CREATE_CHARGE, GatewayCode.APPROVED),
    )
    stored = await record_unmatched_callback(
        env.client, task_queue, callback, b"{...}", routed_to=f"payment-{key}", reason="not found"
    )
    checked = await finish(
        env, env.client.get_workflow_handle(stored, result_type=UnmatchedCallbackState)
    )
    assert checked.differences == [
        "a callback says SUCCESS for a payment Kartu does not know "
        "(unconfirmed: no customer id to ask the provider with)"
    ]
    review = await env.client.get_workflow_handle(f"review-{key}").query(
        "state", result_type=ReviewState
    )
    assert review.kartu_status is None and review.status is ReviewStatus.NEEDS_ATTENTION


async def test_a_failed_callback_or_a_binding_callback_is_recorded_only(
    env: WorkflowEnvironment, task_queue: str, fake: FakeAyoconnect, key: str
):
    failed = PaymentCallback(
        type="PAYMENT",
        transactionId=f"{key}-pay",
        invoiceNumber="INV-X",
        operation="PAY",
        status=Wire.FAILED,
        amount=Decimal("1000.00"),
        responseCode=response_code(400, ServiceCode.CREATE_CHARGE, GatewayCode.DECLINED),
    )
    stored = await record_unmatched_callback(
        env.client, task_queue, failed, b"failed", routed_to=None, reason="not found"
    )
    checked = await finish(
        env, env.client.get_workflow_handle(stored, result_type=UnmatchedCallbackState)
    )
    assert checked.memo.finding == f"no Kartu payment {key}; the callback says FAILED: recorded"
    assert checked.raised is None and not await exists(env.client, f"review-{key}")

    from ayoconnect.models import BindingCallback

    calls_before = len(fake.calls)
    binding = BindingCallback(
        type="CARD_BINDING",
        transactionId=f"{key}-reg",
        referenceNumber="REF-1",
        customerId="CUST000123",
        cardToken="tok" + "Z" * 37,
        status="ACTIVE",
        responseCode="2000101",
    )
    stored = await record_unmatched_callback(
        env.client, task_queue, binding, b"binding", routed_to=None, reason="not running"
    )
    handle = env.client.get_workflow_handle(stored, result_type=UnmatchedCallbackState)
    checked = await finish(env, handle)
    assert (checked.memo.finding or "").startswith("binding callback for no running registration")
    assert len(fake.calls) == calls_before  # nothing asked of the provider
    memo = await (await handle.describe()).memo_value(MEMO_KEY)
    assert "Z" * 37 not in str(memo)  # the card token stays in the encrypted input only


async def test_a_difference_that_cannot_be_raised_fails_the_run_with_its_report(
    env: WorkflowEnvironment,
    task_queue: str,
    fake: FakeAyoconnect,
    listing: ScriptedListing,
    key: str,
):
    """Raising retries for an hour; then the run fails loudly (a schedule shows a failed run)
    and its report query says which difference was not raised."""
    payment_id = await paid(env, task_queue, key)
    listing.payments = await listed(env.client, payment_id)
    refunded_behind_kartus_back(fake, payment_id)
    listing.raise_fails = True
    handle = await env.client.start_workflow(
        ReconciliationWorkflow.run,
        ReconcileInput(),
        id=f"reconcile-{uuid.uuid4().hex[:12]}",
        task_queue=task_queue,
        result_type=ReconcileReport,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "DifferencesNotRaised"
    report = await handle.query("report", result_type=ReconcileReport)
    [difference] = report.differing
    assert (difference.raised or "").startswith("NOT raised:")
    assert report.finished_at is not None and report.finished_at - report.started_at >= timedelta(
        minutes=59
    )
    assert not await exists(env.client, f"review-{payment_id}")
