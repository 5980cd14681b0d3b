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
from temporalio.exceptions import ApplicationError

from . import ids, journal, versions
from . import search_attributes as sa
from .close_check import close_refusal
from .lookups import lookup_key
from .payment_core import Resolution
from .provider import Provider, ProviderError

with workflow.unsafe.imports_passed_through():
    from .models import (
        ActionResult,
        PaymentStatus,
        ReconcileDifference,
        ResolveCommand,
        Transition,
    )
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
        self.resolutions: list[Resolution] = []
        info = workflow.info()
        # Look-up ids of this run only (``lk<digest>-s<n>``): a later review of the same
        # payment never gets this one's stored answers.
        self.provider = Provider(
            key=lookup_key(f"{info.workflow_id}/{info.run_id}"),
            customer_id=review.customer_id,
            correlation_id=ids.payment_correlation_id(review.payment_id),
        )

    @workflow.run
    async def run(self, review: ReviewInput) -> ReviewState:
        self._upsert(ReviewStatus.NEEDS_ATTENTION.value)
        workflow.logger.warning(
            "payment %s needs review: %s", review.payment_id, "; ".join(review.differences)
        )
        command = await self._accepted_close()
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

    async def _accepted_close(self) -> ResolveCommand:
        """Ops' first close the provider does not contradict (or forced); refused ones are
        answered with the reason and the review waits on."""
        while True:
            await self._wait_for_ops()
            resolution = self.resolutions[0]  # stays queued (answerable) while it is checked
            command = resolution.command
            assert command.status is not None  # a close always has one (ResolveCommand)
            refusal = None
            if not command.force and versions.changed(versions.REVIEW_CLOSE_CHECKED_202612):
                refusal = await self._close_refusal(command)
            self.resolutions.remove(resolution)
            if refusal is None:
                resolution.result = ActionResult(outcome="resolved", status=command.status)
                return command
            journal.ignore(self.state.ignored, "resolve", refusal)
            resolution.result = ActionResult(
                outcome="refused", reason=refusal, status=PaymentStatus.NEEDS_ATTENTION
            )

    async def _close_refusal(self, command: ResolveCommand) -> str | None:
        assert command.status is not None
        if self.input.invoice_number is None or self.input.customer_id is None:
            return (
                "this review has no invoice number or customer to ask the provider by: force "
                "the close with a note saying how the status was established"
            )
        try:
            detail = await self.provider.status(invoice_number=self.input.invoice_number)
        except ProviderError as err:
            return close_refusal(command.status, None, not_found=err.failure.not_found)
        self.state.provider_status = detail.status.value
        return close_refusal(command.status, detail, not_found=False)

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
            self.resolutions.append(Resolution(command))
            return
        journal.ignore(self.state.ignored, "resolve", why)

    @workflow.update(name="resolve_review")
    async def resolve_review(self, command: ResolveCommand) -> ActionResult:
        """``resolve`` with an answer: resolved, or refused with the reason (a close the
        provider's status contradicts, unless forced with a note)."""
        resolution = Resolution(command)
        self.resolutions.append(resolution)
        await workflow.wait_condition(lambda: resolution.result is not None)
        assert resolution.result is not None
        return resolution.result

    @resolve_review.validator
    def _validate_resolve(self, command: ResolveCommand) -> None:
        if self.state.status is ReviewStatus.RESOLVED:
            raise ApplicationError("review already resolved", type="ResolveRefused")
        if command.action != "close":
            raise ApplicationError(
                "a review is closed (action close) with the status ops established",
                type="ResolveRefused",
            )

    @workflow.query(name="state")
    def query_state(self) -> ReviewState:
        return self.state
