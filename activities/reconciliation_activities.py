"""Reconciliation's activities: list what changed (Temporal visibility), read each payment as
Kartu and as Ayoconnect see it, and raise a difference on the payment (signal) or in a
``PaymentReview`` workflow. The worker builds ONE instance around its Temporal client and its
``AyoconnectClient``.

Unlike the Ayoconnect activities these talk to Temporal too: Kartu's view of a payment is its
workflow's ``state`` (``KartuClient.payment_status``, which also reads a refund done by the
Refund workflow). Per-payment failures are results (unknown at the provider, Kartu's state
unread), not activity failures: one payment must not stop the others. A Temporal outage does
fail the activity, which then retries.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from ayoconnect.errors import AyoconnectError, NotFoundError
from ayoconnect.models import PaymentStatusResponse
from workflows import ids
from workflows.models import PaymentFlow, PaymentState, ReconcileDifference
from workflows.reconciliation_models import (
    LIST_CALLBACKS,
    LIST_PAYMENTS,
    OBSERVE,
    PAYMENT_WORKFLOW_TYPES,
    RAISE,
    REVIEW_WORKFLOW_TYPE,
    CallbackPage,
    CallbackPageCall,
    KartuView,
    Observation,
    ObserveCall,
    ObserveItem,
    ObserveResult,
    PaymentPage,
    PaymentPageCall,
    PaymentRef,
    ProviderOutcome,
    RaiseCall,
    RaiseItem,
    RaiseResult,
    ReviewInput,
    ReviewState,
    ReviewStatus,
    review_workflow_id,
)

if TYPE_CHECKING:
    from ayoconnect.models import PaymentDetail
    from starter.client import KartuClient

# Reads at once per batch: enough to finish 50 payments quickly, few enough for the provider.
CONCURRENCY = 8
PAYMENT_PREFIX = "payment-"


class PaymentStatusReader(Protocol):
    """What reconciliation needs of ``AyoconnectClient`` (tests pass a fake)."""

    async def payment_status(
        self,
        *,
        transaction_id: str,
        customer_id: str,
        correlation_id: str,
        invoice_number: str | None = None,
        original_transaction_id: str | None = None,
    ) -> PaymentStatusResponse: ...


def visibility_time(moment: datetime) -> str:
    """RFC 3339 in UTC for a visibility query (4-digit years, ``Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def payments_query(window_start: datetime) -> str:
    """Payments started or closed since ``window_start``, and every open one (an open
    authorization may be days old and still change)."""
    types = ", ".join(f"'{t}'" for t in PAYMENT_WORKFLOW_TYPES)
    at = visibility_time(window_start)
    return (
        f"WorkflowType IN ({types}) AND "
        f"(StartTime >= '{at}' OR CloseTime >= '{at}' OR ExecutionStatus = 'Running')"
    )


class ReconciliationActivities:
    def __init__(self, temporal: Client, provider: PaymentStatusReader) -> None:
        # Imported here: ``starter`` imports ``worker``, which imports this module.
        from starter.client import KartuClient

        self.temporal = temporal
        self.provider = provider
        self.kartu: KartuClient = KartuClient(temporal)

    def all(self) -> list[Callable[..., Any]]:
        return [self.list_payments, self.list_callbacks, self.observe, self.raise_differences]

    # --- listing ----------------------------------------------------------------------------

    @activity.defn(name=LIST_PAYMENTS)
    async def list_payments(self, call: PaymentPageCall) -> PaymentPage:
        token = base64.b64decode(call.page_token) if call.page_token else None
        listing = self.temporal.list_workflows(
            payments_query(call.window_start), page_size=call.page_size, next_page_token=token
        )
        await listing.fetch_next_page()
        refs = [
            PaymentRef(
                payment_id=e.id.removeprefix(PAYMENT_PREFIX),
                workflow_id=e.id,
                running=e.status == WorkflowExecutionStatus.RUNNING,
            )
            for e in listing.current_page or []
            if e.id.startswith(PAYMENT_PREFIX)
        ]
        following = listing.next_page_token
        return PaymentPage(
            payments=refs,
            next_page_token=base64.b64encode(following).decode() if following else None,
        )

    @activity.defn(name=LIST_CALLBACKS)
    async def list_callbacks(self, call: CallbackPageCall) -> CallbackPage:
        from starter.client.unmatched import list_unmatched_callbacks

        found = await list_unmatched_callbacks(
            self.temporal, since=call.window_start, limit=call.limit
        )
        return CallbackPage(callbacks=found)

    # --- observing --------------------------------------------------------------------------

    @activity.defn(name=OBSERVE)
    async def observe(self, call: ObserveCall) -> ObserveResult:
        slots = asyncio.Semaphore(CONCURRENCY)

        async def one(item: ObserveItem) -> Observation:
            async with slots:
                observation = await self._observe(item)
            activity.heartbeat()
            return observation

        return ObserveResult(observations=list(await asyncio.gather(*map(one, call.items))))

    async def _observe(self, item: ObserveItem) -> Observation:
        from starter.client import KartuError, KartuUnavailable, PaymentNotFound

        ref = item.ref
        if ref.running is None:
            ref = ref.model_copy(update={"running": await self._running(ref.workflow_id)})
        now = datetime.now(UTC)
        try:
            state = await self.kartu.payment_status(ref.payment_id)
        except PaymentNotFound:
            return Observation(
                ref=ref, observed_at=now, kartu_missing=True, kartu_error="no such Kartu payment"
            )
        except KartuUnavailable:
            raise  # Temporal itself: the activity retries
        except KartuError as err:
            why = f"Kartu's state could not be read: {err}"[:300]
            return Observation(ref=ref, observed_at=now, kartu_error=why)
        kartu = kartu_view(state)
        outcome, detail, why = await self._ask_provider(kartu, item.lookup_transaction_id)
        return Observation(
            ref=ref,
            observed_at=datetime.now(UTC),
            kartu=kartu,
            provider_outcome=outcome,
            provider=detail,
            provider_error=why,
        )

    async def _ask_provider(
        self, kartu: KartuView, transaction_id: str
    ) -> tuple[ProviderOutcome, PaymentDetail | None, str | None]:
        if kartu.invoice_number:
            reference: dict[str, str] = {"invoice_number": kartu.invoice_number}
        else:  # the charge's answer never came: its own transactionId finds it
            step = ids.Step.PAY if kartu.flow is PaymentFlow.DIRECT else ids.Step.AUTHORIZE
            reference = {"original_transaction_id": ids.transaction_id(kartu.payment_id, step)}
        try:
            response = await self.provider.payment_status(
                transaction_id=transaction_id,
                customer_id=kartu.customer_id,
                # A status check is one more call of the payment's flow.
                correlation_id=ids.payment_correlation_id(kartu.payment_id),
                **reference,
            )
        except NotFoundError:
            return "not_found", None, "the provider does not know the payment"
        except AyoconnectError as err:
            return "unavailable", None, f"{type(err).__name__}: {err.message}"[:300]
        except ValueError as err:  # refused by the client before sending
            return "unavailable", None, f"look-up not sent: {err}"[:300]
        return "found", response.payment, None

    async def _running(self, workflow_id: str) -> bool | None:
        try:
            described = await self.temporal.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return described.status == WorkflowExecutionStatus.RUNNING

    # --- raising ----------------------------------------------------------------------------

    @activity.defn(name=RAISE)
    async def raise_differences(self, call: RaiseCall) -> RaiseResult:
        raised: dict[str, str] = {}
        for item in call.items:
            raised[item.payment_id] = await self._raise(call.reconciliation_id, item)
            activity.heartbeat()
        return RaiseResult(raised=raised)

    async def _raise(self, reconciliation_id: str, item: RaiseItem) -> str:
        difference = ReconcileDifference(
            differences=item.differences,
            provider_status=item.provider_status,
            reconciliation_id=reconciliation_id,
        )
        signalled = ""
        if item.running:
            try:
                await self.temporal.get_workflow_handle(item.workflow_id).signal(
                    "reconcile_difference", difference
                )
                # The payment records it and asks the provider again wherever it waits.
                signalled = f"signalled {item.workflow_id} (reconcile_difference); "
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                # Closed since it was listed: the review alone.
        # Raised for ops too, running or not: a difference that survived the re-check is
        # never left to a payment's own state, where no NEEDS_ATTENTION search finds it.
        return signalled + await self._review(item, difference)

    async def _review(self, item: RaiseItem, difference: ReconcileDifference) -> str:
        review_id = review_workflow_id(item.payment_id)
        earlier = await self._closed_review(review_id)
        if (
            earlier is not None
            and earlier.status is ReviewStatus.RESOLVED
            and sorted(earlier.differences) == sorted(item.differences)
        ):
            return f"resolved by ops in {review_id}: not raised again"
        review = ReviewInput(
            payment_id=item.payment_id,
            payment_workflow_id=item.workflow_id,
            kartu_status=item.kartu_status,
            provider_status=item.provider_status,
            differences=item.differences,
            reconciliation_id=difference.reconciliation_id,
            customer_id=item.customer_id,
            amount=item.amount,
            invoice_number=item.invoice_number,
        )
        # Signal-with-start: an open review gets the signal, none opens one; never two.
        await self.temporal.start_workflow(
            REVIEW_WORKFLOW_TYPE,
            review,
            id=review_id,
            task_queue=activity.info().task_queue,
            start_signal="reconcile_difference",
            start_signal_args=[difference],
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        return f"review {review_id} (NEEDS_ATTENTION)"

    async def _closed_review(self, review_id: str) -> ReviewState | None:
        """The last review of this payment if it is closed (None: none, or one still open)."""
        handle = self.temporal.get_workflow_handle(review_id, result_type=ReviewState)
        try:
            described = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        if described.status == WorkflowExecutionStatus.RUNNING:
            return None
        try:
            return await handle.result()
        except WorkflowFailureError:
            return None  # terminated or failed: raise again


def kartu_view(state: PaymentState) -> KartuView:
    return KartuView(
        payment_id=state.payment_id,
        workflow_id=state.workflow_id,
        flow=state.flow,
        status=state.status,
        amount=state.amount,
        customer_id=state.customer_id,
        invoice_number=state.invoice_number,
        authorized_amount=state.authorized_amount,
        captured_amount=state.captured_amount,
        refunded_amount=state.refunded_amount,
        authorization_expires_at=state.authorization_expires_at,
        pending_compensation=state.pending_compensation,
        late_result_watch_until=state.late_result_watch_until,
    )
