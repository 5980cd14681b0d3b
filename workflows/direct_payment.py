"""Direct payment (PAY): charge → 3DS if the issuer asks → PAID | DECLINED | FAILED.

Then, if the merchant gave a confirmation URL, confirm with it (a refusal refunds; an endpoint
that never answers leaves NEEDS_ATTENTION, money kept). A success after the payment's deadline,
or after Kartu ended the 3DS wait, is refunded at once. Workflow id ``payment-<paymentId>``.
"""

from __future__ import annotations

from temporalio import workflow

from .payment_workflow import PaymentWorkflow

with workflow.unsafe.imports_passed_through():
    from .models import PaymentFlow, PaymentInput, PaymentState


@workflow.defn(name="DirectPayment")
class DirectPaymentWorkflow(PaymentWorkflow):
    @workflow.init
    def __init__(self, payment: PaymentInput) -> None:
        self._setup(payment, PaymentFlow.DIRECT)

    @workflow.run
    async def run(self, payment: PaymentInput) -> PaymentState:
        async with self._compensated_if_cancelled():
            await self._charge()
            if await self._kept_after_deadline():
                await self._confirm_with_merchant()
        return self.core.state
