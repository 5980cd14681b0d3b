"""Auth-capture payment: AUTHORIZE (3DS as for PAY) → AUTHORIZED → CAPTURED | VOIDED | EXPIRED.

The authorization is held with a durable timer until the provider's ``authorizationExpiresAt``
(else ``authorization_window``, 7 days by default). Capture and void arrive as signals or
updates; the capture policy may capture or void on its own a margin before expiry. At expiry
the hold is voided, then EXPIRED; a refused void is looked up (the provider's own expiry came
first: EXPIRED; the hold was captured after all: CAPTURED).

History stays small over the 7 days (a few timers and activities, a bounded number of signals
recorded), so continue-as-new is not needed.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from . import authorization
from .payment_workflow import PaymentWorkflow

with workflow.unsafe.imports_passed_through():
    from .models import (
        CaptureCommand,
        CapturePolicy,
        PaymentFlow,
        PaymentInput,
        PaymentState,
        PaymentStatus,
        VoidCommand,
    )


@workflow.defn(name="AuthCapturePayment")
class AuthCapturePaymentWorkflow(PaymentWorkflow):
    @workflow.init
    def __init__(self, payment: PaymentInput) -> None:
        self._setup(payment, PaymentFlow.AUTH_CAPTURE)

    @workflow.run
    async def run(self, payment: PaymentInput) -> PaymentState:
        async with self._compensated_if_cancelled():
            await self._charge()
            if await self._kept_after_deadline():
                await self._confirm_with_merchant()
                await self._hold_authorization()
        return self.core.state

    async def _hold_authorization(self) -> None:
        """Until captured or voided (signal, update, or the capture policy a margin before
        expiry), or the window ends: then the hold is released (``authorization.expire``)."""
        core = self.core
        expires_at = core.state.authorization_expires_at
        if core.status is not PaymentStatus.AUTHORIZED or expires_at is None:
            return
        policy = core.input.capture_policy
        if policy is not CapturePolicy.NONE:
            if await self._settled_before(expires_at - core.input.capture_policy_margin):
                return
            if policy is CapturePolicy.AUTO_CAPTURE:
                command = CaptureCommand(requested_by="auto_capture policy")
                await authorization.capture(core, command, "auto_capture policy")
            else:
                command = VoidCommand(
                    reason="auto_void policy: authorization about to expire",
                    requested_by="auto_void policy",
                )
                await authorization.void(core, command, "auto_void policy")
        if await self._settled_before(expires_at):
            return
        await authorization.expire(self.core)

    async def _settled_before(self, moment: datetime) -> bool:
        """Wait until the authorization is settled (True) or ``moment`` comes (False).
        A provider-void callback on the way is confirmed, then the wait goes on if it was not
        true."""
        core = self.core
        while core.status is PaymentStatus.AUTHORIZED:
            remaining = moment - workflow.now()
            if remaining.total_seconds() <= 0:
                break
            try:
                await workflow.wait_condition(
                    lambda: (
                        core.status is not PaymentStatus.AUTHORIZED
                        or core.progress.provider_void_hint
                    ),
                    timeout=remaining,
                    timeout_summary="authorization window",
                )
            except TimeoutError:
                break
            if core.progress.provider_void_hint:
                await authorization.confirm_provider_void(core)
        return core.status is not PaymentStatus.AUTHORIZED
