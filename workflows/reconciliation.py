"""Reconciliation: every payment changed in a look-back window, open or closed, compared with
Ayoconnect's Get Payment Status; every difference raised, nothing corrected.

    run: unmatched callbacks in the window (their payments are checked too)
         → pages of payments started or closed since the window start, and every open one
         → per page: observe in batches → the rule (``reconcile_rules``) → what differs is
           looked at again after ``confirm_after`` → still differing: raised
         → the report

Raising: a running payment is signalled ``reconcile_difference`` (it records the difference in
its state and asks the provider again wherever it waits); a closed one gets a ``PaymentReview``
workflow (``review-<paymentId>``, NEEDS_ATTENTION until ops' ``resolve``). A difference that
could not be raised fails the run, after the report is complete (query ``report``), so a
schedule shows it.

A Temporal Schedule (``kartu-reconciliation``, see ``starter.reconcile``) runs it hourly with a
48 h window; ``kartu reconcile`` runs it on demand. Long windows continue-as-new every
``pages_per_run`` pages, carrying the report, the page token and the look-up counter.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from . import search_attributes as sa
from .reconcile_steps import LIST_OPTIONS, NOT_RAISED, Checked, Checker, lookup_key

with workflow.unsafe.imports_passed_through():
    from .reconciliation_models import (
        LIST_CALLBACKS,
        LIST_PAYMENTS,
        MAX_LISTED,
        RECONCILIATION_FLOW,
        CallbackPage,
        CallbackPageCall,
        PaymentDifference,
        PaymentPage,
        PaymentPageCall,
        PaymentRef,
        ReconcileInput,
        ReconcileReport,
        Verdict,
    )

PAYMENT_PREFIX = "payment-"


@workflow.defn(name="Reconciliation")
class ReconciliationWorkflow:
    @workflow.init
    def __init__(self, request: ReconcileInput) -> None:
        info = workflow.info()
        self.input = request
        now = workflow.now()
        self.report = request.carry_report or ReconcileReport(
            reconciliation_id=request.reconciliation_id or info.workflow_id,
            started_at=now,
            since=request.since,
            window_start=now - request.since,
        )
        # One key per reconciliation (all its runs): no two look-ups share a transactionId.
        seed = f"{info.workflow_id}/{info.first_execution_run_id}"
        self.checker = Checker(
            lookup_key("rc", seed), request.carry_lookups, request.confirm_after, request.batch_size
        )
        self.seen: set[str] = set()
        self.not_raised = 0

    @workflow.run
    async def run(self, request: ReconcileInput) -> ReconcileReport:
        workflow.upsert_search_attributes(sa.updates(flow=RECONCILIATION_FLOW))
        if request.carry_report is None:
            await self._unmatched_callbacks()
        else:
            self.seen.update(c.payment_id for c in self.report.unmatched_callbacks if c.payment_id)
        token = request.carry_page_token
        for _ in range(request.pages_per_run):
            page = await self._payments_page(token)
            await self._check([r for r in page.payments if r.payment_id not in self.seen])
            token = page.next_page_token
            if token is None:
                return self._finish()
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(
            request.model_copy(
                update={
                    "carry_report": self.report,
                    "carry_page_token": token,
                    "carry_lookups": self.checker.lookups,
                }
            )
        )

    @workflow.query(name="report")
    def query_report(self) -> ReconcileReport:
        """The report so far (complete once the run returns)."""
        return self.report

    # --- steps ------------------------------------------------------------------------------

    async def _unmatched_callbacks(self) -> None:
        """Callbacks no workflow took, received in the window: listed with their own check's
        finding, and their payments compared like the others (even if older than the window)."""
        page = await workflow.execute_activity(
            LIST_CALLBACKS,
            CallbackPageCall(window_start=self.report.window_start, limit=MAX_LISTED),
            result_type=CallbackPage,
            summary="list unmatched callbacks",
            **LIST_OPTIONS,  # type: ignore[arg-type]
        )
        self.report.unmatched_callbacks = page.callbacks[:MAX_LISTED]
        refs: list[PaymentRef] = []
        for callback in page.callbacks:
            pid = callback.payment_id
            if pid and pid not in self.seen and len(refs) < MAX_LISTED:
                self.seen.add(pid)
                refs.append(PaymentRef(payment_id=pid, workflow_id=PAYMENT_PREFIX + pid))
        await self._check(refs)

    async def _payments_page(self, token: str | None) -> PaymentPage:
        return await workflow.execute_activity(
            LIST_PAYMENTS,
            PaymentPageCall(
                window_start=self.report.window_start,
                page_size=self.input.page_size,
                page_token=token,
            ),
            result_type=PaymentPage,
            summary="list payments in the window",
            **LIST_OPTIONS,  # type: ignore[arg-type]
        )

    async def _check(self, refs: list[PaymentRef]) -> None:
        if not refs:
            return
        self.seen.update(r.payment_id for r in refs)
        checked = await self.checker.check(refs)
        raised = await self.checker.raise_differences(self.report.reconciliation_id, checked)
        for c in checked:
            how = raised.get(c.payment_id)
            if how is not None and how.startswith(NOT_RAISED):
                self.not_raised += 1
            add_to_report(self.report, c, how)

    def _finish(self) -> ReconcileReport:
        self.report.finished_at = workflow.now()
        if self.not_raised:
            raise ApplicationError(
                f"{self.not_raised} differences could not be raised: see the report query",
                type="DifferencesNotRaised",
                non_retryable=True,
            )
        return self.report


def add_to_report(report: ReconcileReport, checked: Checked, raised: str | None) -> None:
    """Count one checked payment into its bucket (lists capped at ``MAX_LISTED``)."""
    o, verdict = checked.observation, checked.comparison.verdict
    report.checked += 1
    if verdict is Verdict.AGREE:
        report.agreeing += 1
        return
    if verdict is Verdict.DIFFER:
        entry = PaymentDifference(
            payment_id=o.ref.payment_id,
            workflow_id=o.ref.workflow_id,
            kartu_status=o.kartu.status.value if o.kartu else None,
            provider_status=o.provider.status.value if o.provider else None,
            differences=list(checked.comparison.differences),
            running=o.ref.running,
            raised=raised,
        )
        _append(report, report.differing, entry)
        return
    if verdict is Verdict.IN_PROGRESS:
        bucket = report.in_progress
    elif verdict is Verdict.AWAITING_OPS:
        bucket = report.needs_attention
    elif o.kartu is None:
        bucket = report.kartu_unknown
    else:
        bucket = report.unknown_at_provider
    _append(report, bucket, o.ref.payment_id)


def _append(report: ReconcileReport, bucket: list, entry: object) -> None:
    if len(bucket) < MAX_LISTED:
        bucket.append(entry)
    else:
        report.omitted += 1
