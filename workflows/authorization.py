"""What can happen to an authorization: capture (full or partial, at most 120 %), void, expiry.

Every move runs under ``core.lock`` so a capture, a void, the policy timer and the expiry timer
never interleave; each re-checks the status once it holds the lock, so the second of two
captures, or a capture after a void, changes nothing and says why.

Ayoconnect refuses a transactionId resent with another body (409), and replays its first answer
to the same body. So while a capture's outcome is unresolved (no answer, look-up failed) its
amount is kept: a capture for another amount is refused with the reason, the same amount resends
the same request. Only a definite "no" with the look-up still showing AUTHORIZED spends the step:
the next capture is a new request (``cap2``, ``cap3``...). Void keeps its first reason likewise.
A 2xx whose status is not CAPTURED / VOIDED is not a success: the look-up decides.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Literal

from temporalio import workflow

from . import ids, versions
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
WINDOW_ENDED = "authorization window ended: hold released"


def capture_refusal(core: PaymentCore, command: CaptureCommand) -> str | None:
    """Why this capture cannot happen now, or None. Used by the update validator too."""
    if core.state.flow is PaymentFlow.DIRECT:
        return "a direct payment is paid at once: there is nothing to capture"
    if core.status is not PaymentStatus.AUTHORIZED:
        return f"payment is {core.status.value}: only an AUTHORIZED payment can be captured"
    if core.progress.capture.attempt > ids.MAX_STEP_ATTEMPTS:
        return f"Ayoconnect refused {ids.MAX_STEP_ATTEMPTS} captures: no attempt left"
    if command.amount is None:
        return _unresolved_capture(core, capture_amount(core, command))
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
    return _unresolved_capture(core, amount)


def _unresolved_capture(core: PaymentCore, amount: Decimal) -> str | None:
    pending = core.progress.capture.sent_amount
    if pending is not None and amount != pending:
        return (
            f"a capture of {pending} is still unresolved: retry it with the same amount "
            "(another amount would reuse its transactionId with another body)"
        )
    return None


def capture_amount(core: PaymentCore, command: CaptureCommand) -> Decimal:
    """The amount a capture sends: the command's, else the unresolved one, else the full."""
    s = core.state
    return command.amount or core.progress.capture.sent_amount or s.authorized_amount or s.amount


def void_refusal(core: PaymentCore) -> str | None:
    if core.state.flow is PaymentFlow.DIRECT:
        return "a direct payment cannot be voided: refund it instead"
    if core.status is not PaymentStatus.AUTHORIZED:
        return f"payment is {core.status.value}: only an AUTHORIZED payment can be voided"
    if core.progress.void.attempt > ids.MAX_STEP_ATTEMPTS:
        return f"Ayoconnect refused {ids.MAX_STEP_ATTEMPTS} voids: no attempt left"
    return None


async def charge_decided(core: PaymentCore) -> None:
    """Handlers act only once the charge is decided. Waiting (even when it already is) also
    lets the workflow take in an activity result that came in the same workflow task first,
    whatever order the SDK hands the two over in."""
    await workflow.wait_condition(lambda: not core.awaiting_answer)


async def capture(core: PaymentCore, command: CaptureCommand, source: str) -> ActionResult:
    await charge_decided(core)
    async with core.lock:
        refusal = capture_refusal(core, command)
        if refusal:
            core.ignore(source, refusal)
            return _refused(core, refusal)
        s = core.state
        amount = capture_amount(core, command)
        assert s.invoice_number is not None
        request = CreateChargeRequest(
            transactionId=core.provider.tid(
                ids.attempt_step(ids.Step.CAPTURE, core.progress.capture.attempt)
            ),
            customerId=s.customer_id,
            operation=Operation.CAPTURE,
            invoiceNumber=s.invoice_number,
            amount=amount,
        )
        by = f" by {command.requested_by}" if command.requested_by else ""
        core.progress.capture.sent_amount = amount  # sent: fixed until its outcome is known
        try:
            response = await core.provider.charge(request)
        except ProviderError as err:
            return await _after_failed_capture(
                core, source, f"capture failed: {err}", err.failure.final
            )
        if response.status is not Wire.CAPTURED:
            why = f"capture answered {response.status.value}"
            return await _after_failed_capture(core, source, why, definite=True)
        core.progress.capture.sent_amount = None
        s.captured_amount = response.amount or amount
        core.transition(PaymentStatus.CAPTURED, f"captured {s.captured_amount}{by} ({source})")
        return ActionResult(outcome="captured", status=core.status, amount=s.captured_amount)


async def void(core: PaymentCore, command: VoidCommand, source: str) -> ActionResult:
    await charge_decided(core)
    async with core.lock:
        refusal = void_refusal(core)
        if refusal:
            core.ignore(source, refusal)
            return _refused(core, refusal)
        assert core.state.invoice_number is not None
        by = f" by {command.requested_by}" if command.requested_by else ""
        # A void resent after no answer must be the same request: the first reason stays.
        wire_reason = core.progress.void.sent_reason or command.reason
        core.progress.void.sent_reason = wire_reason
        step = ids.attempt_step(ids.Step.VOID, core.progress.void.attempt)
        try:
            response = await core.provider.void(core.state.invoice_number, wire_reason, step)
        except ProviderError as err:
            return await _after_failed_void(core, source, f"void failed: {err}", err.failure.final)
        if response.status is not Wire.VOIDED:
            why = f"void answered {response.status.value}"
            return await _after_failed_void(core, source, why, definite=True)
        core.progress.void.sent_reason = None
        core.transition(PaymentStatus.VOIDED, f"voided{by}: {command.reason} ({source})")
        return ActionResult(outcome="voided", status=core.status)


async def expire(core: PaymentCore) -> None:
    """The authorization window ended: release the hold, then EXPIRED.

    The void goes first; only a void that did not succeed (refused, or out of retries) is looked
    up (the provider's own expiry came first: EXPIRED; the hold was captured after all:
    CAPTURED, kept). Looking up first cost a call more per expiry, and another after the void
    whenever the provider's expiry won meanwhile (``bench/parked.py``: 2.6 provider calls per
    expiry). Executions that reached their expiry before this change replay the look-up-first
    steps."""
    async with core.lock:
        if core.status is not PaymentStatus.AUTHORIZED:
            return
        if versions.changed(versions.AUTH_CAPTURE_VOID_FIRST_EXPIRY_202612):
            await compensate(core, WINDOW_ENDED, PaymentStatus.EXPIRED, apply_if_moved=True)
            return
        detail = await core.confirm()
        if detail is not None and detail.status is not Wire.AUTHORIZED:
            if detail.status is Wire.VOIDED:
                core.transition(PaymentStatus.EXPIRED, "authorization window ended (provider)")
            else:
                core.apply_status(detail)
            return
        await compensate(core, WINDOW_ENDED, PaymentStatus.EXPIRED)


async def confirm_provider_void(core: PaymentCore) -> None:
    """A callback (or reconciliation) said the provider moved the hold: the status API decides
    (VOIDED: EXPIRED; another status is applied as it is)."""
    async with core.lock:
        core.progress.provider_void_hint = False
        if core.status is not PaymentStatus.AUTHORIZED:
            return
        detail = await core.confirm()
        if detail is None or detail.status is Wire.AUTHORIZED:
            shown = detail.status.value if detail else "nothing"
            core.ignore(
                "provider hint",
                f"a callback or reconciliation said the hold moved; the status API says {shown}",
            )
            return
        if detail.status is Wire.VOIDED:
            core.transition(PaymentStatus.EXPIRED, "authorization voided by the provider")
        else:
            core.apply_status(detail)


async def _after_failed_capture(
    core: PaymentCore, source: str, why: str, definite: bool
) -> ActionResult:
    result, still_authorized = await _after_failed_action(core, source, why, "capture")
    if result.outcome != "refused" or (still_authorized and definite):
        # Resolved: it happened after all, or Ayoconnect said no and the hold is intact, so
        # the next capture is a new request under the next step.
        core.progress.capture.sent_amount = None
        if still_authorized:
            core.progress.capture.attempt += 1
    return result


async def _after_failed_void(
    core: PaymentCore, source: str, why: str, definite: bool
) -> ActionResult:
    result, still_authorized = await _after_failed_action(core, source, why, "void")
    if result.outcome != "refused" or (still_authorized and definite):
        core.progress.void.sent_reason = None
        if still_authorized:
            core.progress.void.attempt += 1
    return result


async def _after_failed_action(
    core: PaymentCore, source: str, why: str, action: Literal["capture", "void"]
) -> tuple[ActionResult, bool]:
    """A capture or void failed: the status API says whether something happened anyway.
    Also says whether the look-up showed the authorization still AUTHORIZED. Only the action
    asked for is answered as done: a capture that finds the hold voided is refused."""
    detail = await core.confirm()
    if detail is not None and detail.status is not Wire.AUTHORIZED:
        if action == "capture" and detail.status is Wire.VOIDED:
            # The provider released the hold (its window passed first): nothing was captured.
            core.transition(PaymentStatus.EXPIRED, "authorization voided by the provider")
            core.ignore(source, f"{why}; the provider had voided the authorization")
            return _refused(core, "the authorization expired at the provider"), False
        core.apply_status(detail)
        if action == "capture" and core.status is PaymentStatus.CAPTURED:
            amount = core.state.captured_amount
            return ActionResult(outcome="captured", status=core.status, amount=amount), False
        if action == "void" and core.status is PaymentStatus.VOIDED:
            return ActionResult(outcome="voided", status=core.status), False
    core.ignore(source, why)
    still_authorized = detail is not None and detail.status is Wire.AUTHORIZED
    return _refused(core, why), still_authorized


def _refused(core: PaymentCore, reason: str) -> ActionResult:
    return ActionResult(outcome="refused", reason=reason, status=core.status)
