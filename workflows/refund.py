"""Refund (full only, once per payment): REFUNDED | FAILED, or NEEDS_ATTENTION while ops decide.
Workflow id ``refund-<paymentId>``: asking while one runs joins it (conflict policy
USE_EXISTING); after one ended FAILED the client starts a new run with ``attempt`` + 1.

Every refund of a payment, whoever asks (merchant, ops, the payment's own compensation), is ONE
provider request: transactionId step ``rfd`` (``rfd<n>`` for the n-th attempt, since Ayoconnect
replays a stored refusal for a spent id), the full amount and the fixed wire reason
``ids.REFUND_WIRE_REASON``. The merchant's reason stays in Kartu's state and history only, so
two paths asking at once send the same id with the same body and the provider refunds once.

The payment is looked up first: already REFUNDED is success without a second call; anything but
PAID (SUCCESS) or CAPTURED, or an amount other than the full one, fails with the reason.

Only a final answer from Ayoconnect makes a refund FAILED (an authentication error is not one: a
credential rotation delays, it does not refuse). A round without a definite answer (no answer
after the activity's retries, a 2xx that is not REFUNDED, a look-up that failed) is confirmed
by a look-up (REFUNDED is success), then retried after a backoff with the very same request
(same transactionId, same body). After about three days of rounds
(``policies.REFUND_MAX_ROUNDS``) it waits in NEEDS_ATTENTION for ops' ``resolve``: ``retry``
(more rounds) or ``close`` with REFUNDED or FAILED as they established.
"""

from __future__ import annotations

import functools

from temporalio import workflow

from . import ids, journal, payment_metrics, policies
from . import search_attributes as sa
from .provider import Provider, ProviderError

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import PaymentDetail
    from ayoconnect.models import PaymentStatus as Wire

    from .models import PaymentStatus, RefundInput, RefundState, RefundStatus, ResolveCommand

REFUND_FLOW = "REFUND"
REFUNDABLE = (Wire.SUCCESS, Wire.CAPTURED)
_CLOSE = {PaymentStatus.REFUNDED: RefundStatus.REFUNDED, PaymentStatus.FAILED: RefundStatus.FAILED}


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
            attempt=refund.attempt,
        )
        self.step = ids.attempt_step(ids.Step.REFUND, refund.attempt)
        # The payment's own correlation id: a refund is one more call of the payment flow.
        self.provider = Provider(
            key=refund.payment_id,
            customer_id=refund.customer_id,
            correlation_id=ids.payment_correlation_id(refund.payment_id),
            status_step=functools.partial(ids.refund_status_step, refund.attempt),
            max_lookups=ids.MAX_REFUND_LOOKUPS,
        )
        self.resolutions: list[ResolveCommand] = []

    @workflow.run
    async def run(self, refund: RefundInput) -> RefundState:
        self._upsert_search_attributes()
        while not await self._rounds():
            if await self._ops_closed():
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    async def _rounds(self) -> bool:
        """Rounds until a definite answer (True), or the round budget is spent (False)."""
        delays = policies.refund_round_delays()
        for n in range(policies.REFUND_MAX_ROUNDS):
            if n:
                await workflow.sleep(next(delays), summary="refund retry")
            if await self._round():
                return True
        return False

    async def _round(self) -> bool:
        """A look-up and, if the payment is refundable, the refund; True once decided."""
        self.state.rounds += 1
        try:
            payment = await self.provider.status(invoice_number=self.input.invoice_number)
        except ProviderError as err:
            if err.failure.final:
                self._fail(f"payment look-up failed: {err}", err.failure.error_type)
                return True
            self.state.last_error = f"payment look-up failed: {err}"
            return False
        if not self._refundable(payment):
            return True
        try:
            # The fixed wire reason, never the merchant's: the body is the same whoever asks.
            response = await self.provider.refund(
                self.input.invoice_number, self.input.amount, ids.REFUND_WIRE_REASON, self.step
            )
        except ProviderError as err:
            self.state.response_code = err.failure.response_code
            # Refused, yet perhaps refunded meanwhile (the payment's own compensation), or no
            # answer at all: the status API says which.
            if await self._confirmed_refunded():
                return True
            if err.failure.final:
                # Ayoconnect said no to this transactionId and replays that answer: a new run
                # asking again needs the next attempt's step.
                self.state.step_spent = True
                self._fail(f"refund failed: {err}", err.failure.error_type)
                return True
            self.state.last_error = f"refund failed: {err}"
            return False
        if response.status is Wire.REFUNDED:
            self._finish(RefundStatus.REFUNDED, f"refunded: {self.input.reason}")
            return True
        if await self._confirmed_refunded():
            return True
        self.state.last_error = f"refund answered {response.status.value}"
        return False

    async def _confirmed_refunded(self) -> bool:
        try:
            after = await self.provider.status(invoice_number=self.input.invoice_number)
        except ProviderError:
            return False
        if after.status is not Wire.REFUNDED:
            return False
        self._finish(RefundStatus.REFUNDED, "payment refunded (confirmed by status)")
        return True

    async def _ops_closed(self) -> bool:
        """Rounds spent without an answer: wait for ops. True if they closed it."""
        why = f"no definite refund answer after {self.state.rounds} rounds: {self.state.last_error}"
        self._finish(RefundStatus.NEEDS_ATTENTION, why)
        while True:
            await workflow.wait_condition(lambda: bool(self.resolutions))
            command = self.resolutions.pop(0)
            refusal = None
            if command.action == "close" and not command.force:
                refusal = await self._close_refusal(command)
            if refusal is None:
                break
            journal.ignore(self.state.ignored, "resolve", refusal)
        who = command.resolved_by or "ops"
        if command.action == "close":
            assert command.status is not None
            self._finish(_CLOSE[command.status], f"resolved by {who}: {command.note or 'closed'}")
            return True
        self._finish(RefundStatus.PENDING, f"refund retried (resolved by {who})")
        return False

    async def _close_refusal(self, command: ResolveCommand) -> str | None:
        """Why ops cannot close the refund as they say: the provider's status contradicts it
        (REFUNDED needs the provider to show it refunded, FAILED that it is not), or it cannot
        be read now. ``force`` with a note skips this check."""
        try:
            payment = await self.provider.status(invoice_number=self.input.invoice_number)
        except ProviderError as err:
            return f"the provider's status cannot be read right now ({err}): retry or force"
        refunded = payment.status is Wire.REFUNDED
        if refunded == (command.status is PaymentStatus.REFUNDED):
            return None
        return (
            f"the provider shows this payment {payment.status.value}, which contradicts closing "
            f"the refund {command.status}: close with what the provider shows, or force it"
        )

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

    def _fail(self, reason: str, error_type: str | None = None) -> None:
        self.state.failure = reason
        self.state.error_type = error_type
        self._finish(RefundStatus.FAILED, reason)

    def _finish(self, status: RefundStatus, reason: str) -> None:
        if journal.transition(self.state, status, reason):
            payment_metrics.refund_transitioned(self.state)
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

    @workflow.signal(name="resolve")
    def resolve(self, command: ResolveCommand) -> None:
        """Ops' answer to NEEDS_ATTENTION: ``retry``, or ``close`` with REFUNDED / FAILED."""
        if self.state.status is not RefundStatus.NEEDS_ATTENTION:
            why = f"refund is {self.state.status.value}: nothing to resolve"
        elif command.action == "close" and command.status not in _CLOSE:
            why = "a refund closes as REFUNDED or FAILED"
        else:
            self.resolutions.append(command)
            return
        journal.ignore(self.state.ignored, "resolve", why)

    @workflow.query(name="state")
    def query_state(self) -> RefundState:
        return self.state
