"""Asking the merchant to confirm a payment whose money moved (``confirmation_url``).

Only a definite rejection (``MerchantRejectedError``: the endpoint answered a 4xx "no") gives the
money back. An endpoint still unreachable or unavailable after the activity's retry budget says
nothing about the payment: refunding every payment during a merchant outage would be worse than
holding them. The money is kept and the payment waits in NEEDS_ATTENTION for ops, who ``retry``
(ask the merchant again) or ``close`` with the status they established; a cancel releases it.
"""

from __future__ import annotations

from temporalio import workflow

from .compensation import compensate
from .payment_core import PaymentCore
from .provider import ProviderError, ProviderFailure

with workflow.unsafe.imports_passed_through():
    from activities import MerchantConfirmation

    from .models import PaymentStatus

MERCHANT_REJECTED = "MerchantRejectedError"


async def confirm(core: PaymentCore) -> None:
    """Confirm with the merchant until it answers; a rejection compensates."""
    url = core.input.confirmation_url
    if url is None:
        return
    while True:
        failure = await _ask(core, url)
        if failure is None:
            return
        if failure.error_type == MERCHANT_REJECTED:
            async with core.lock:
                await compensate(core, f"merchant confirmation failed: {failure.message}")
            return
        held = core.status
        core.progress.held_status = held
        why = f"merchant confirmation unanswered ({failure.describe()}): money kept, ops decide"
        core.state.attention_reason = why
        core.transition(PaymentStatus.NEEDS_ATTENTION, why)
        command = await core.next_resolution()
        if command.action == "close":
            core.close_by_ops(command)
            return
        core.progress.held_status = None
        core.state.attention_reason = None
        who = command.resolved_by or "ops"
        core.transition(held, f"merchant confirmation retried (resolved by {who})")


def release_held(core: PaymentCore, reason: str) -> None:
    """Leave a merchant NEEDS_ATTENTION for the status the money is in, so it can go back."""
    if core.status is PaymentStatus.NEEDS_ATTENTION and core.progress.held_status is not None:
        held, core.progress.held_status = core.progress.held_status, None
        core.state.attention_reason = None
        core.transition(held, reason)


async def _ask(core: PaymentCore, url: str) -> ProviderFailure | None:
    s = core.state
    try:
        await core.provider.confirm_with_merchant(
            MerchantConfirmation(
                url=url,
                payment_id=s.payment_id,
                workflow_id=s.workflow_id,
                status=s.status.value,
                amount=s.amount,
                invoice_number=s.invoice_number,
            )
        )
    except ProviderError as err:
        return err.failure
    return None
