"""What can happen to an authorization: capture (full or partial, at most 120 %), void, expiry.

Every move runs under ``core.lock`` so a capture, a void, the policy timer and the expiry timer
never interleave; each re-checks the status once it holds the lock, so the second of two
captures, or a capture after a void, changes nothing and says why.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from temporalio import workflow

from . import ids
from .compensation import compensate
from .payment_core import PaymentCore
from .provider import ProviderError

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import CreateChargeRequest, Operation
    from ayoconnect.models import PaymentStatus as Wire

    from .models import (
        MAX_CAPTURE_RATIO,
        ActionResult,
        CaptureCommand,
        PaymentFlow,
        PaymentStatus,
        VoidCommand,
    )

CENT = Decimal("0.01")


def capture_refusal(core: PaymentCore, command: CaptureCommand) -> str | None:
    """Why this capture cannot happen now, or None. Used by the update validator too."""
    if core.state.flow is PaymentFlow.DIRECT:
        return "a direct payment is paid at once: there is nothing to capture"
    if core.status is not PaymentStatus.AUTHORIZED:
        return f"payment is {core.status.value}: only an AUTHORIZED payment can be captured"
    if command.amount is None:
        return None
    amount = command.amount
    try:
        valid = amount.is_finite() and amount > 0 and amount.quantize(CENT) == amount
    except (InvalidOperation, AttributeError):
        valid = False
    if not valid:
        return "capture amount must be a positive amount with at most two decimal places"
    authorized = core.state.authorized_amount or core.state.amount
    if amount > authorized * MAX_CAPTURE_RATIO:
        return f"capture amount {amount} is above 120 % of the authorized {authorized}"
    return None


def void_refusal(core: PaymentCore) -> str | None:
    if core.state.flow is PaymentFlow.DIRECT:
        return "a direct payment cannot be voided: refund it instead"
    if core.status is not PaymentStatus.AUTHORIZED:
        return f"payment is {core.status.value}: only an AUTHORIZED payment can be voided"
    return None


async def capture(core: PaymentCore, command: CaptureCommand, source: str) -> ActionResult:
    async with core.lock:
        refusal = capture_refusal(core, command)
        if refusal:
            core.ignore(source, refusal)
            return _refused(core, refusal)
        s = core.state
        amount = command.amount or s.authorized_amount or s.amount
        assert s.invoice_number is not None
        request = CreateChargeRequest(
            transactionId=core.provider.tid(ids.Step.CAPTURE),
            customerId=s.customer_id,
            operation=Operation.CAPTURE,
            invoiceNumber=s.invoice_number,
            amount=amount,
        )
        by = f" by {command.requested_by}" if command.requested_by else ""
        try:
            response = await core.provider.charge(request)
        except ProviderError as err:
            return await _after_failed_action(core, source, f"capture failed: {err}")
        s.captured_amount = response.amount if response.status is Wire.CAPTURED else None
        s.captured_amount = s.captured_amount or amount
        core.transition(PaymentStatus.CAPTURED, f"captured {s.captured_amount}{by} ({source})")
        return ActionResult(outcome="captured", status=core.status, amount=s.captured_amount)


async def void(core: PaymentCore, command: VoidCommand, source: str) -> ActionResult:
    async with core.lock:
        refusal = void_refusal(core)
        if refusal:
            core.ignore(source, refusal)
            return _refused(core, refusal)
        assert core.state.invoice_number is not None
        by = f" by {command.requested_by}" if command.requested_by else ""
        try:
            await core.provider.void(core.state.invoice_number, command.reason, ids.Step.VOID)
        except ProviderError as err:
            return await _after_failed_action(core, source, f"void failed: {err}")
        core.transition(PaymentStatus.VOIDED, f"voided{by}: {command.reason} ({source})")
        return ActionResult(outcome="voided", status=core.status)


async def expire(core: PaymentCore) -> None:
    """The authorization window ended: confirm, release a hold the provider still shows."""
    async with core.lock:
        if core.status is not PaymentStatus.AUTHORIZED:
            return
        detail = await core.confirm()
        if detail is not None and detail.status is not Wire.AUTHORIZED:
            if detail.status is Wire.VOIDED:
                core.transition(PaymentStatus.EXPIRED, "authorization window ended (provider)")
            else:
                core.apply_status(detail)
            return
        await compensate(core, "authorization window ended: hold released", PaymentStatus.EXPIRED)


async def _after_failed_action(core: PaymentCore, source: str, why: str) -> ActionResult:
    """A capture or void failed: the status API says whether something happened anyway."""
    detail = await core.confirm()
    if detail is not None and detail.status is not Wire.AUTHORIZED:
        core.apply_status(detail)
        if core.status is PaymentStatus.CAPTURED:
            return ActionResult(
                outcome="captured", status=core.status, amount=core.state.captured_amount
            )
        if core.status is PaymentStatus.VOIDED:
            return ActionResult(outcome="voided", status=core.status)
    core.ignore(source, why)
    return _refused(core, why)


def _refused(core: PaymentCore, reason: str) -> ActionResult:
    return ActionResult(outcome="refused", reason=reason, status=core.status)
