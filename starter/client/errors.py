"""Errors ``KartuClient`` raises: each says what happened and, for bad input, which field."""

from __future__ import annotations

from workflows.models import ActionResult, PaymentStatus


class KartuError(Exception):
    """Base of every error ``KartuClient`` raises; ``str()`` says what happened."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(KartuError):
    """Bad input, refused before anything was started: fix the call. ``field`` names it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(KartuError):
    """No such payment, registration, refund or unbind in Temporal."""


class PaymentNotFound(NotFound):
    pass


class RegistrationNotFound(NotFound):
    pass


class RefundNotFound(NotFound):
    pass


class UnbindNotFound(NotFound):
    pass


class ReviewNotFound(NotFound):
    pass


class ActionRefused(KartuError):
    """The payment cannot do this now (a capture of a VOIDED payment, a second void...).
    ``status`` is the payment's status when known; ``result`` the workflow's answer, if any."""

    def __init__(
        self,
        reason: str,
        status: PaymentStatus | None = None,
        result: ActionResult | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.result = result


class IdempotencyConflict(KartuError):
    """The id is already used by a different request (another amount, customer or flow)."""

    def __init__(self, message: str, field: str = "payment_id") -> None:
        super().__init__(message)
        self.field = field


class KartuTimeout(KartuError):
    """Waiting ran out; the operation itself carries on durably in its workflow."""


class KartuUnavailable(KartuError):
    """Temporal could not be reached or refused the call for a reason of its own: retry."""
