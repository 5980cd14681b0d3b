"""Handlers every payment workflow has, and the skeleton both lifecycles run.

Signals: ``capture`` (CaptureCommand), ``void`` (VoidCommand), ``payment_callback``
(ayoconnect PaymentCallback), ``resolve`` (ResolveCommand, ops' answer to NEEDS_ATTENTION),
``reconcile_difference`` (ReconcileDifference, from the reconciliation schedule).
Updates: ``capture_payment``, ``void_payment`` and ``resolve_payment`` (validated up front,
return ActionResult), ``first_outcome`` (the early return of update-with-start: PaymentOutcome
once the charge is decided and Kartu will not undo it). Query: ``state`` (PaymentState).

Handlers only record what was asked, or wait for the state they need before they act, so a
payment behaves the same whatever order Temporal hands a handler and an activity result that
arrived in one workflow task (no SDK switch needed for that).

Cancellation: the charge and every money call are shielded (``Provider._shielded``); a
cancelled payment whose money moved is refunded (PAID, CAPTURED) or voided (AUTHORIZED), one
still in its 3DS challenge is followed to the end of the window (and its late-result watch)
first, one in NEEDS_ATTENTION keeps waiting for ops with its compensation, then the workflow
ends as cancelled with the compensated state queryable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from . import authorization, charging, merchant
from .compensation import compensate
from .payment_core import PaymentCore, Resolution

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import PaymentCallback

    from .models import (
        UNDECIDED,
        ActionResult,
        CaptureCommand,
        PaymentFlow,
        PaymentInput,
        PaymentOutcome,
        PaymentRequestSummary,
        PaymentState,
        PaymentStatus,
        ReconcileDifference,
        ResolveCommand,
        VoidCommand,
    )


class PaymentWorkflow:
    """Base of DirectPaymentWorkflow and AuthCapturePaymentWorkflow (not a workflow itself)."""

    core: PaymentCore

    def _setup(self, payment: PaymentInput, flow: PaymentFlow) -> None:
        self.core = PaymentCore(payment, flow)

    # --- the steps each lifecycle's ``run`` lists ----------------------------------------------

    @contextlib.asynccontextmanager
    async def _compensated_if_cancelled(self) -> AsyncIterator[None]:
        """The payment's steps run inside: a cancel at any point releases the money that moved
        (``_compensate_cancelled``), and the workflow ends only once every handler is done."""
        core = self.core
        core.start()
        try:
            # A cancel that arrived with the start is delivered at this first wait, before a
            # charge could be sent: a payment cancelled before its first step never charges.
            await workflow.wait_condition(lambda: True)
            yield
            core.raise_if_cancelled()  # a cancel absorbed by a shielded call at the very end
        except asyncio.CancelledError:
            await self._compensate_cancelled()
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _charge(self) -> None:
        """PAY or AUTHORIZE, the 3DS challenge if the issuer asks, then the provider's final
        word (PENDING_PROVIDER until it comes): PAID / AUTHORIZED / DECLINED / FAILED."""
        await charging.charge(self.core)

    async def _kept_after_deadline(self) -> bool:
        """True when money moved and stays; a success past the payment's deadline is released
        at once (and only then does ``first_outcome`` answer)."""
        core = self.core
        if core.status not in (PaymentStatus.PAID, PaymentStatus.AUTHORIZED):
            return False
        if core.past_deadline():
            async with core.lock:
                await compensate(core, "charge succeeded after the payment's deadline")
            return False
        core.progress.money_kept = True
        return True

    async def _confirm_with_merchant(self) -> None:
        """If the payment has a confirmation URL: a refusal refunds (voids), an endpoint that
        never answers leaves NEEDS_ATTENTION with the money kept."""
        await merchant.confirm(self.core)

    async def _compensate_cancelled(self) -> None:
        core = self.core
        workflow.logger.info("payment %s cancelled at %s", core.state.payment_id, core.status)
        if core.status in UNDECIDED:
            if core.progress.charge_answered:
                # The issuer may still approve: follow the challenge to its end, then release.
                await charging.settle_challenge(core)
            else:
                reason = "cancelled before the charge was sent"
                core.state.decline_reason = reason
                core.transition(PaymentStatus.FAILED, reason)
        elif core.state.provider_answer_awaited_since is not None:
            # Money may have moved: the provider's answer first, then release what was taken.
            await charging.await_provider_answer(core)
        elif charging.watching_late_result(core):
            await charging.watch_late_result(core)
        elif core.pending is not None and core.status is PaymentStatus.NEEDS_ATTENTION:
            core.ignore("cancel", f"the pending {core.pending.kind} still waits for ops' resolve")
        merchant.release_held(core, "cancelled while waiting for ops: the money goes back")
        async with core.lock:
            await compensate(core, "payment cancelled")

    # --- signals ----------------------------------------------------------------------------

    @workflow.signal(name="capture")
    async def capture(self, command: CaptureCommand) -> None:
        await authorization.capture(self.core, command, "capture signal")

    @workflow.signal(name="void")
    async def void(self, command: VoidCommand) -> None:
        await authorization.void(self.core, command, "void signal")

    @workflow.signal(name="payment_callback")
    def payment_callback(self, callback: PaymentCallback) -> None:
        charging.on_payment_callback(self.core, callback)

    @workflow.signal(name="resolve")
    def resolve(self, command: ResolveCommand) -> None:
        if self.core.status is not PaymentStatus.NEEDS_ATTENTION:
            self.core.ignore("resolve", f"payment is {self.core.status.value}: nothing to resolve")
            return
        self.core.resolutions.append(Resolution(command))

    @workflow.signal(name="reconcile_difference")
    def reconcile_difference(self, found: ReconcileDifference) -> None:
        """Reconciliation saw the provider's ledger disagree: recorded, and the workflow asks
        the provider again at once wherever it waits (3DS, PENDING_PROVIDER, the hold)."""
        core = self.core
        shown = f" (provider: {found.provider_status})" if found.provider_status else ""
        for difference in found.differences[:5]:
            core.record_difference(f"{difference}{shown}")
        if core.status is PaymentStatus.AUTHORIZED:
            core.progress.provider_void_hint = True
        elif core.awaiting_answer:
            core.wake = True
        elif core.status is PaymentStatus.NEEDS_ATTENTION:
            core.state.attention_reason = (
                f"{core.state.attention_reason or 'needs attention'}; reconciliation: "
                f"{'; '.join(found.differences[:5])}{shown}"
            )

    # --- updates ----------------------------------------------------------------------------

    @workflow.update(name="capture_payment")
    async def capture_payment(self, command: CaptureCommand) -> ActionResult:
        return await authorization.capture(self.core, command, "capture_payment update")

    @capture_payment.validator
    def _validate_capture(self, command: CaptureCommand) -> None:
        refusal = authorization.capture_refusal(self.core, command)
        if refusal:
            raise ApplicationError(refusal, type="CaptureRefused")

    @workflow.update(name="void_payment")
    async def void_payment(self, command: VoidCommand) -> ActionResult:
        return await authorization.void(self.core, command, "void_payment update")

    @void_payment.validator
    def _validate_void(self, command: VoidCommand) -> None:
        refusal = authorization.void_refusal(self.core)
        if refusal:
            raise ApplicationError(refusal, type="VoidRefused")

    @workflow.update(name="resolve_payment")
    async def resolve_payment(self, command: ResolveCommand) -> ActionResult:
        """``resolve`` with an answer: what the workflow did, or why it refused (a close the
        provider contradicts is refused unless forced with a note)."""
        resolution = Resolution(command)
        self.core.resolutions.append(resolution)
        await workflow.wait_condition(lambda: resolution.result is not None)
        assert resolution.result is not None
        return resolution.result

    @resolve_payment.validator
    def _validate_resolve(self, command: ResolveCommand) -> None:
        if self.core.status is not PaymentStatus.NEEDS_ATTENTION:
            raise ApplicationError(
                f"payment is {self.core.status.value}: nothing to resolve", type="ResolveRefused"
            )

    @workflow.update(name="first_outcome")
    async def first_outcome(self, request: PaymentRequestSummary | None = None) -> PaymentOutcome:
        """Returns once the charge is decided (CHALLENGE counts: the customer must act);
        called later, returns the payment's current outcome. ``request`` (optional) is what
        the caller asks to pay: refused if it is not this payment (see the validator)."""
        await workflow.wait_condition(lambda: self.core.decided)
        return self.core.outcome()

    @first_outcome.validator
    def _validate_first_outcome(self, request: PaymentRequestSummary | None = None) -> None:
        # Update-with-start joins a running payment by id (USE_EXISTING): a second request
        # with the same id but another amount, customer or flow must not get its outcome.
        if request is None:
            return
        mine = PaymentRequestSummary.of(self.core.input, self.core.state.flow)
        if request != mine:
            raise ApplicationError(
                f"payment {self.core.state.payment_id} already exists with another amount, "
                "customer or flow: a new payment needs a new payment id",
                type="IdempotencyConflict",
                non_retryable=True,
            )

    # --- query ------------------------------------------------------------------------------

    @workflow.query(name="state")
    def state(self) -> PaymentState:
        return self.core.state
