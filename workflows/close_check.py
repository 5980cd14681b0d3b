"""Ops closing something with a status the money is in (``resolve`` ``close``): the provider's
status must agree, unless forced with a note. One rule for payments and reviews."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ayoconnect.models import PaymentDetail
    from ayoconnect.models import PaymentStatus as Wire

    from .models import PaymentStatus

# The provider statuses that agree with closing with a Kartu status.
CLOSE_AGREES: dict[PaymentStatus, frozenset[Wire]] = {
    PaymentStatus.REFUNDED: frozenset({Wire.REFUNDED}),
    PaymentStatus.VOIDED: frozenset({Wire.VOIDED}),
    PaymentStatus.EXPIRED: frozenset({Wire.VOIDED}),
    PaymentStatus.FAILED: frozenset({Wire.FAILED}),
    PaymentStatus.PAID: frozenset({Wire.SUCCESS}),
    PaymentStatus.CAPTURED: frozenset({Wire.CAPTURED}),
}

UNREADABLE = (
    "the provider's status cannot be read right now: retry the close later, or force it with "
    "a note saying how the status was established"
)


def close_refusal(
    status: PaymentStatus, detail: PaymentDetail | None, *, not_found: bool
) -> str | None:
    """Why closing with ``status`` is refused given the provider's answer, or None (agrees).

    ``detail`` is the provider's record; ``not_found``: it answered it has none."""
    if not_found:
        if status is PaymentStatus.FAILED:
            return None
        return f"the provider has no record of this payment: it cannot be {status}"
    if detail is None:
        return UNREADABLE
    if detail.status in CLOSE_AGREES.get(status, ()):
        return None
    return (
        f"the provider shows this payment {detail.status.value}, which contradicts closing it "
        f"{status.value}: close with the status the provider shows, or force it with a note"
    )
