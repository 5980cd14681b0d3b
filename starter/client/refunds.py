"""Refunds: ``refund`` starts ``refund-<paymentId>`` (the payment's full amount, from its
state); asked while it runs, it joins it; asked after it ended without the money back, it runs
it again (the next ``attempt`` only after a definite "no" to the last one)."""

from __future__ import annotations

from workflows import RefundWorkflow
from workflows.ids import refund_workflow_id
from workflows.models import PaymentStatus, RefundInput, RefundState, RefundStatus

from . import summaries
from .core import ClientCore
from .errors import ActionRefused, RefundNotFound
from .refund_views import REFUNDABLE
from .validation import _key, _text, _validated


class RefundsMixin(ClientCore):
    async def refund(
        self,
        payment_id: str,
        reason: str = "refund requested",
        *,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> RefundState:
        """Refund a PAID or CAPTURED payment in full, once: ``refund-<paymentId>``. Asking again
        returns the same refund (joins it while it runs); after one ended without the money back,
        asking again runs it again (the next ``attempt``, at most ``MAX_STEP_ATTEMPTS``, when
        the last request got a definite "no"; else the same), and that run looks the
        payment up first, so the money goes back at most once. With ``wait``, returns once the
        refund is decided (or its state so far after ``timeout``)."""
        _text(reason, "reason")
        state = await self._payment(payment_id)
        workflow_id = refund_workflow_id(payment_id)
        if state.status not in REFUNDABLE or state.invoice_number is None:
            existing = await self._query(workflow_id, RefundState)
            if existing is not None:
                return await self._refund_result(workflow_id, existing, wait, timeout)
            raise ActionRefused(
                f"payment is {state.status.value}: only a PAID or CAPTURED payment can be refunded",
                status=state.status,
            )
        full = state.captured_amount if state.status is PaymentStatus.CAPTURED else state.amount
        refund = _validated(
            RefundInput,
            {
                "payment_id": payment_id,
                "customer_id": state.customer_id,
                "invoice_number": state.invoice_number,
                "amount": full,
                "reason": reason,
            },
        )

        async def again(previous: RefundState) -> bool:
            # Closed without the money back: FAILED, or a run that was terminated or timed out
            # (its last state still PENDING / NEEDS_ATTENTION). The new run looks first.
            return previous.status is not RefundStatus.REFUNDED

        await self._start_or_retry(
            RefundWorkflow.run,
            refund,
            workflow_id,
            RefundState,
            again,
            f"the refund of {payment_id}",
            summaries.refund,
        )
        return await self._refund_result(workflow_id, None, wait, timeout)

    async def refund_status(self, payment_id: str) -> RefundState:
        workflow_id = _key(refund_workflow_id, payment_id, "payment_id")
        state = await self._query(workflow_id, RefundState)
        if state is None:
            raise RefundNotFound(f"no refund for payment {payment_id}")
        return state

    async def _refund_result(
        self, workflow_id: str, known: RefundState | None, wait: bool, timeout: float
    ) -> RefundState:
        if known is not None and (known.status is not RefundStatus.PENDING or not wait):
            return known
        state = await self._wait_result(workflow_id, RefundState, wait, timeout)
        if state is None:
            raise RefundNotFound("refund workflow vanished")
        return state
