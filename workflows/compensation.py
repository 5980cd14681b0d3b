"""Putting money back (saga): refund a PAID / CAPTURED payment, void an AUTHORIZED one.

Compensations use their own transactionIds (``cr`` refund, ``cv`` void) and the long
``COMPENSATION`` retry policy. One that still fails (a final error, or a day of retries) is never
dropped: the payment goes to NEEDS_ATTENTION, visible in the ``state`` query and the
``KartuPaymentStatus`` search attribute, and the workflow stays open until ops send the
``resolve`` signal (``retry`` the compensation, or ``close`` with the status they established).
"""

from __future__ import annotations

from temporalio import workflow

from . import ids, policies
from .payment_core import PaymentCore
from .provider import ProviderError

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import PaymentStatus as Wire

    from .models import PaymentStatus

REFUNDABLE = frozenset({PaymentStatus.PAID, PaymentStatus.CAPTURED})


async def compensate(
    core: PaymentCore, reason: str, success_status: PaymentStatus | None = None
) -> None:
    """Release the money of a payment that cannot complete; no-op if none moved.

    Ends REFUNDED / VOIDED (or ``success_status``, e.g. EXPIRED for an authorization that ran
    out), or stays in NEEDS_ATTENTION until ops resolve it.
    """
    before = core.status
    if before not in REFUNDABLE and before is not PaymentStatus.AUTHORIZED:
        return
    failure = await _attempt(core, before, reason, success_status)
    while failure is not None:
        core.state.attention_reason = failure
        core.transition(PaymentStatus.NEEDS_ATTENTION, failure)
        await workflow.wait_condition(lambda: bool(core.resolutions))
        command = core.resolutions.pop(0)
        who = command.resolved_by or "ops"
        if command.action == "close":
            assert command.status is not None
            core.state.attention_reason = None
            core.transition(command.status, f"resolved by {who}: {command.note or 'closed'}")
            return
        failure = await _attempt(core, before, reason, success_status)


async def _attempt(
    core: PaymentCore,
    before: PaymentStatus,
    reason: str,
    success_status: PaymentStatus | None = None,
) -> str | None:
    """One compensation; None if the money is back, else why not."""
    s = core.state
    if s.invoice_number is None:
        return f"cannot {_verb(before)}: no invoice number known"
    try:
        if before in REFUNDABLE:
            amount = s.captured_amount or s.amount
            await core.provider.refund(
                s.invoice_number,
                amount,
                reason,
                ids.Step.COMPENSATION_REFUND,
                policies.COMPENSATION,
            )
            s.refunded_amount = amount
            core.transition(success_status or PaymentStatus.REFUNDED, reason)
        else:
            await core.provider.void(
                s.invoice_number, reason, ids.Step.COMPENSATION_VOID, policies.COMPENSATION
            )
            core.transition(success_status or PaymentStatus.VOIDED, reason)
        return None
    except ProviderError as err:
        # A refusal may mean it is already done (by hand, or the provider's own expiry).
        detail = await core.confirm()
        if detail is not None:
            if detail.status is Wire.REFUNDED and before in REFUNDABLE:
                s.refunded_amount = detail.refundedAmount or s.captured_amount or s.amount
                core.transition(success_status or PaymentStatus.REFUNDED, f"{reason} (confirmed)")
                return None
            if detail.status is Wire.VOIDED and before is PaymentStatus.AUTHORIZED:
                core.transition(success_status or PaymentStatus.VOIDED, f"{reason} (confirmed)")
                return None
        return f"{_verb(before)} failed: {err.failure.describe()}"


def _verb(status: PaymentStatus) -> str:
    return "refund" if status in REFUNDABLE else "void"
