"""Putting money back (saga): refund a PAID / CAPTURED payment, void an AUTHORIZED one.

A compensating refund is THE refund of the payment: the same transactionId step (``rfd``) and
the same fixed body (``ids.REFUND_WIRE_REASON``, full amount) as the Refund workflow a merchant
starts, so if both ask at once the provider sees one request and refunds once. A compensating
void has its own step (``cv``) and fixed reason. A retry must resend the very same body
(Ayoconnect answers 409 to the same transactionId with another body); compensations use the long
``COMPENSATION`` retry policy; why the money goes back is recorded in the history, not sent.

What still needs undoing is remembered (``core.pending``, shown as ``pending_compensation``)
until the money is back or ops close the case. One that still fails (a final error, or a day of
retries) is never dropped: the payment goes to NEEDS_ATTENTION, visible in the ``state`` query and
the ``KartuPaymentStatus`` search attribute, and the workflow stays open until ops send the
``resolve`` signal (``retry`` the compensation, or ``close`` with the status they established).
A cancel arriving meanwhile keeps waiting for ops: it never ends the workflow with money out.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

from . import ids, payment_metrics, policies, versions
from .payment_core import PaymentCore
from .provider import ProviderError

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import PaymentStatus as Wire

    from .models import PaymentStatus

REFUNDABLE = frozenset({PaymentStatus.PAID, PaymentStatus.CAPTURED})
# Sent as the body's ``reason``: fixed per step, so every retry is byte-for-byte the same call.
WIRE_REASON = {"refund": ids.REFUND_WIRE_REASON, "void": "Kartu compensation void"}
# The provider shows the hold was captured (or paid): a void cannot release it, a refund can.
_MONEY_TAKEN = frozenset({Wire.CAPTURED, Wire.SUCCESS})
# An expiry's refused void: where the provider shows the hold went, as a status Kartu applies.
# Not INITIATED / AUTHENTICATION_IN_PROGRESS (no status to take: the refusal stands, for ops).
_MOVED_ELSEWHERE = _MONEY_TAKEN | {Wire.REFUNDED, Wire.FAILED}


@dataclass
class PendingCompensation:
    """Money to put back, kept until it is back or ops close the case."""

    kind: str  # "refund" | "void"
    reason: str  # why, for the history
    success_status: PaymentStatus | None  # e.g. EXPIRED for an authorization that ran out
    attempt: int = 1  # of the step: ``cr``, ``cr2``... after a definite "no"
    # An expiry's void: when it is refused and the provider shows the hold went elsewhere
    # (captured by a capture whose answer was lost, say), that status is the payment's, as when
    # Kartu looked before voiding. Otherwise a captured hold would be refunded.
    apply_if_moved: bool = False
    failure: str | None = None
    failure_final: bool = False
    # Another caller that resumed it (a cancel resuming an expiry's void): its reason joins
    # the history's, so the payment's story says why the money finally went back.
    resumed_by: str | None = None
    # In ``kartu_compensations_total`` yet: an expiry's release is the hold's normal end (it
    # shows as EXPIRED), counted only if another caller resumes it (a cancel's saga).
    counted: bool = False

    @property
    def story(self) -> str:
        if self.resumed_by is None:
            return self.reason
        return f"{self.resumed_by}, resuming '{self.reason}'"

    @property
    def step(self) -> str:
        base = ids.Step.REFUND if self.kind == "refund" else ids.Step.COMPENSATION_VOID
        return ids.attempt_step(base, self.attempt)


async def compensate(
    core: PaymentCore,
    reason: str,
    success_status: PaymentStatus | None = None,
    *,
    apply_if_moved: bool = False,
) -> None:
    """Release the money of a payment that cannot complete; no-op if none moved.

    Ends REFUNDED / VOIDED (or ``success_status``), or stays in NEEDS_ATTENTION until ops
    resolve it. Called again while a compensation is pending (a cancel during NEEDS_ATTENTION,
    or one interrupting an attempt), it resumes that compensation rather than dropping it.
    ``apply_if_moved``: see ``PendingCompensation``; a caller resuming a pending compensation
    sets it too (a cancel resuming an expiry's void wants captured money back, the saga's rule).
    """
    pending = core.pending
    if pending is not None:
        pending.apply_if_moved = apply_if_moved
        if reason != pending.reason:
            pending.resumed_by = reason
            _count(core, pending)
    if pending is None:
        kind = _kind_for(core.status)
        if kind is None:
            return
        pending = core.pending = PendingCompensation(
            kind, reason, success_status, apply_if_moved=apply_if_moved
        )
        core.state.pending_compensation = "refund" if kind == "refund" else "void"
        if success_status is not PaymentStatus.EXPIRED:
            _count(core, pending)
        done = await _attempt(core, pending)
    elif core.status is PaymentStatus.NEEDS_ATTENTION:
        workflow.logger.info("%s: a compensation already awaits ops, still waiting", reason)
        done = False
    else:
        done = await _attempt(core, pending)
    while not done:
        why = pending.failure or f"{pending.kind} not done"
        core.state.attention_reason = why
        core.transition(PaymentStatus.NEEDS_ATTENTION, why)
        command = await core.next_resolution()
        if command.action == "close":
            _clear(core)
            core.close_by_ops(command)
            return
        if pending.failure_final and pending.attempt < ids.MAX_STEP_ATTEMPTS:
            # Ayoconnect said no to this transactionId and replays that answer for it
            # forever: ops' retry is a new request.
            pending.attempt += 1
        done = await _attempt(core, pending)


def _count(core: PaymentCore, pending: PendingCompensation) -> None:
    if not pending.counted:
        pending.counted = True
        payment_metrics.compensation_started(core.state, pending.kind)


def _kind_for(status: PaymentStatus) -> str | None:
    if status in REFUNDABLE:
        return "refund"
    if status is PaymentStatus.AUTHORIZED:
        return "void"
    return None


async def _attempt(core: PaymentCore, pending: PendingCompensation) -> bool:
    """One compensation; True once the money is back, else the failure is on ``pending``."""
    s = core.state
    if s.invoice_number is None:
        pending.failure, pending.failure_final = f"cannot {pending.kind}: no invoice number", False
        return False
    expected = Wire.REFUNDED if pending.kind == "refund" else Wire.VOIDED
    if pending.kind == "refund" and versions.changed(versions.COMPENSATION_LOOK_FIRST_202612):
        # Refunded already (the Refund workflow under another attempt's transactionId, or an
        # earlier request whose answer was lost): never a second refund request.
        before = await core.confirm()
        if before is not None and before.status is Wire.REFUNDED:
            _done(core, pending, f"{pending.story} (already refunded at the provider)")
            return True
    try:
        if pending.kind == "refund":
            response = await core.provider.refund(
                s.invoice_number,
                s.captured_amount or s.amount,
                WIRE_REASON["refund"],
                pending.step,
                policies.COMPENSATION,
            )
        else:
            response = await core.provider.void(
                s.invoice_number, WIRE_REASON["void"], pending.step, policies.COMPENSATION
            )
        if response.status is expected:
            _done(core, pending, pending.story)
            return True
        # A 2xx that does not say the money is back is not a success: the status API decides.
        why = f"{pending.kind} answered {response.status.value}"
        final = True
    except ProviderError as err:
        why = f"{pending.kind} failed: {err.failure.describe()}"
        final = err.failure.final
    # A refusal may mean it is already done (by hand, or the provider's own expiry).
    detail = await core.confirm()
    if detail is not None:
        if detail.status is expected:
            by = " by the provider" if pending.apply_if_moved else ""
            _done(core, pending, f"{pending.story}{by} (confirmed)")
            return True
        if pending.apply_if_moved and detail.status in _MOVED_ELSEWHERE:
            _clear(core)
            core.state.attention_reason = None
            core.apply_status(detail)
            return True
        if pending.kind == "void" and detail.status in _MONEY_TAKEN:
            # Kartu thought AUTHORIZED, the provider has it captured: voiding can never
            # succeed; refund instead (a new step with its own fixed body).
            core.apply_status(detail)
            pending.kind, pending.attempt, pending.success_status = "refund", 1, None
            s.pending_compensation = "refund"
            return await _attempt(core, pending)
    pending.failure, pending.failure_final = why, final
    return False


def _done(core: PaymentCore, pending: PendingCompensation, reason: str) -> None:
    s = core.state
    if pending.kind == "refund":
        s.refunded_amount = s.captured_amount or s.amount
        s.refunded_at = workflow.now()
        s.refund_reason = reason
        status = pending.success_status or PaymentStatus.REFUNDED
    else:
        status = pending.success_status or PaymentStatus.VOIDED
    _clear(core)
    s.attention_reason = None
    core.transition(status, reason)


def _clear(core: PaymentCore) -> None:
    core.pending = None
    core.state.pending_compensation = None
