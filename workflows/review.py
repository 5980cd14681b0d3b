"""PaymentReview: a difference reconciliation found on a payment whose workflow is closed (or a
payment Kartu does not know), held open for ops. Workflow id ``review-<paymentId>``.

It moves no money and changes no other workflow: it makes the difference findable with the same
search as every payment waiting for ops (``KartuPaymentStatus = 'NEEDS_ATTENTION'``, with
``KartuFlow = 'REVIEW'``) and waits for ops' ``resolve`` (``ResolveCommand``, action ``close``
with the status they established, a note saying what they did). A later reconciliation that
finds the same payment signals ``reconcile_difference`` to the open review (started with
signal-with-start, so there is never a second one); a resolved review with the same
differences is not raised again (``activities.reconciliation_activities``).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from . import journal
from . import search_attributes as sa

with workflow.unsafe.imports_passed_through():
    from .models import ReconcileDifference, ResolveCommand, Transition
    from .reconciliation_models import REVIEW_FLOW, ReviewInput, ReviewState, ReviewStatus

MAX_RAISED_BY = 20
REMINDER_EVERY = timedelta(days=1)


@workflow.defn(name="PaymentReview")
class PaymentReviewWorkflow:
    @workflow.init
    def __init__(self, review: ReviewInput) -> None:
        self.input = review
        self.state = ReviewState(
            payment_id=review.payment_id,
            workflow_id=workflow.info().workflow_id,
            payment_workflow_id=review.payment_workflow_id,
            kartu_status=review.kartu_status,
            provider_status=review.provider_status,
            differences=list(review.differences),
            raised_by=[review.reconciliation_id] if review.reconciliation_id else [],
        )
        self.resolutions: list[ResolveCommand] = []

    @workflow.run
    async def run(self, review: ReviewInput) -> ReviewState:
        self._upsert(ReviewStatus.NEEDS_ATTENTION.value)
        workflow.logger.warning(
            "payment %s needs review: %s", review.payment_id, "; ".join(review.differences)
        )
        await self._wait_for_ops()
        command = self.resolutions.pop(0)
        assert command.status is not None  # a close always has one (ResolveCommand)
        self.state.resolution = command
        who = command.resolved_by or "ops"
        forced = " (forced)" if command.force else ""
        note = f": {command.note}" if command.note else ""
        journal.transition(
            self.state, ReviewStatus.RESOLVED, f"closed as {command.status} by {who}{forced}{note}"
        )
        self._upsert(command.status.value)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    async def _wait_for_ops(self) -> None:
        """Until ops resolve it, saying so in the worker's log once a day (two history events
        a day: years of waiting stay far below any history limit)."""
        days = 0
        while True:
            try:
                await workflow.wait_condition(
                    lambda: bool(self.resolutions), timeout=REMINDER_EVERY, timeout_summary="remind"
                )
                return
            except TimeoutError:
                days += 1
                workflow.logger.warning(
                    "payment %s still needs review after %d days", self.state.payment_id, days
                )

    def _upsert(self, status: str) -> None:
        workflow.upsert_search_attributes(
            sa.updates(
                status=status,
                flow=REVIEW_FLOW,
                customer_id=self.input.customer_id,
                amount=self.input.amount,
                invoice_number=self.input.invoice_number,
            )
        )

    @workflow.signal(name="reconcile_difference")
    def reconcile_difference(self, difference: ReconcileDifference) -> None:
        """A later reconciliation found the payment again: keep its latest word."""
        state = self.state
        if state.status is ReviewStatus.RESOLVED:
            journal.ignore(state.ignored, "reconcile_difference", "review already resolved")
            return
        rid = difference.reconciliation_id
        if rid and rid not in state.raised_by:
            state.raised_by = [*state.raised_by, rid][-MAX_RAISED_BY:]
        changed = (
            sorted(difference.differences) != sorted(state.differences)
            or difference.provider_status != state.provider_status
        )
        if not changed:
            return
        state.history.append(
            Transition(
                at=workflow.now(),
                from_status=state.status,
                to_status=state.status,
                reason="differences now: " + "; ".join(difference.differences),
            )
        )
        state.differences = list(difference.differences)
        state.provider_status = difference.provider_status

    @workflow.signal(name="resolve")
    def resolve(self, command: ResolveCommand) -> None:
        if self.state.status is ReviewStatus.RESOLVED:
            why = "review already resolved"
        elif command.action != "close":
            why = "a review is closed (action close) with the status ops established: its "
            why += "payment's workflow is closed, there is nothing to retry"
        else:
            self.resolutions.append(command)
            return
        journal.ignore(self.state.ignored, "resolve", why)

    @workflow.query(name="state")
    def query_state(self) -> ReviewState:
        return self.state
