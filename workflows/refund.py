"""Refund (full only, once per payment): REFUNDED | FAILED. Workflow id ``refund-<paymentId>``,
so asking twice (conflict policy USE_EXISTING, reuse policy REJECT_DUPLICATE) refunds once.

The payment is looked up first: already REFUNDED is success without a second call; anything but
PAID (SUCCESS) or CAPTURED, or an amount other than the full one, fails with the reason.
"""

from __future__ import annotations

from temporalio import workflow

from . import ids, journal
from . import search_attributes as sa
from .provider import Provider, ProviderError

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import PaymentDetail
    from ayoconnect.models import PaymentStatus as Wire

    from .models import RefundInput, RefundState, RefundStatus

REFUND_FLOW = "REFUND"
REFUNDABLE = (Wire.SUCCESS, Wire.CAPTURED)


@workflow.defn(name="Refund")
class RefundWorkflow:
    @workflow.init
    def __init__(self, refund: RefundInput) -> None:
        self.input = refund
        self.state = RefundState(
            payment_id=refund.payment_id,
            workflow_id=workflow.info().workflow_id,
            invoice_number=refund.invoice_number,
            amount=refund.amount,
            reason=refund.reason,
        )
        # The payment's own correlation id: a refund is one more call of the payment flow.
        self.provider = Provider(
            key=refund.payment_id,
            customer_id=refund.customer_id,
            correlation_id=ids.payment_correlation_id(refund.payment_id),
        )

    @workflow.run
    async def run(self, refund: RefundInput) -> RefundState:
        self._upsert_search_attributes()
        payment = await self._look_up()
        if payment is not None and self._refundable(payment):
            await self._refund()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    async def _look_up(self) -> PaymentDetail | None:
        try:
            return await self.provider.status(invoice_number=self.input.invoice_number)
        except ProviderError as err:
            self._fail(f"payment look-up failed: {err}", err.failure.error_type)
            return None

    def _refundable(self, payment: PaymentDetail) -> bool:
        if payment.status is Wire.REFUNDED:
            self._finish(RefundStatus.REFUNDED, "payment was already refunded")
            return False
        if payment.status not in REFUNDABLE:
            self._fail(f"payment is {payment.status.value}: only a paid or captured one refunds")
            return False
        full = payment.capturedAmount if payment.status is Wire.CAPTURED else payment.amount
        if full is not None and full != self.input.amount:
            self._fail(f"refunds are full only: the payment's amount is {full}")
            return False
        return True

    async def _refund(self) -> None:
        try:
            await self.provider.refund(
                self.input.invoice_number,
                self.input.amount,
                self.input.reason,
                ids.Step.REFUND,
            )
        except ProviderError as err:
            self.state.response_code = err.failure.response_code
            # Refused, yet perhaps refunded meanwhile (the payment's own compensation): ask.
            try:
                after = await self.provider.status(invoice_number=self.input.invoice_number)
            except ProviderError:
                after = None
            if after is not None and after.status is Wire.REFUNDED:
                self._finish(RefundStatus.REFUNDED, "payment refunded (confirmed by status)")
            else:
                self._fail(f"refund failed: {err}", err.failure.error_type)
            return
        self._finish(RefundStatus.REFUNDED, f"refunded: {self.input.reason}")

    def _fail(self, reason: str, error_type: str | None = None) -> None:
        self.state.failure = reason
        self.state.error_type = error_type
        self._finish(RefundStatus.FAILED, reason)

    def _finish(self, status: RefundStatus, reason: str) -> None:
        journal.transition(self.state, status, reason)
        self._upsert_search_attributes()

    def _upsert_search_attributes(self) -> None:
        workflow.upsert_search_attributes(
            sa.updates(
                status=self.state.status.value,  # with KartuFlow=REFUND
                flow=REFUND_FLOW,
                customer_id=self.input.customer_id,
                amount=self.input.amount,
                invoice_number=self.input.invoice_number,
            )
        )

    @workflow.query(name="state")
    def query_state(self) -> RefundState:
        return self.state
