"""``resolve``: ops' answer to a NEEDS_ATTENTION payment (``resolve_payment`` update) or refund
(``resolve`` signal): retry, or close with the status established by hand."""

from __future__ import annotations

import logging
from typing import Any

from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from workflows.ids import payment_workflow_id, refund_workflow_id
from workflows.models import (
    ActionResult,
    PaymentStatus,
    RefundState,
    RefundStatus,
    ResolveCommand,
)
from workflows.reconciliation_models import review_workflow_id

from .core import ClientCore, _application_error, _NoSuchUpdate, _not_found, _unavailable
from .errors import ActionRefused, InvalidRequest, RefundNotFound, ReviewNotFound
from .validation import _enum, _idempotency_key, _key, _validated

log = logging.getLogger("kartu.client")

MAX_NOTE = 1000
REFUND_CLOSE_STATUSES = frozenset({PaymentStatus.REFUNDED, PaymentStatus.FAILED})


class ResolveMixin(ClientCore):
    async def resolve(
        self,
        payment_id: str,
        action: str,
        *,
        status: PaymentStatus | str | None = None,
        note: str = "",
        resolved_by: str | None = None,
        force: bool = False,
        refund: bool = False,
        review: bool = False,
        idempotency_key: str | None = None,
    ) -> ActionResult | None:
        """Ops' answer to a NEEDS_ATTENTION payment (or, with ``refund``, to its refund):
        ``retry``, or ``close`` with the ``status`` they established by hand. A payment answers
        through its ``resolve_payment`` update: the ``resolved`` result, or ActionRefused with
        the workflow's reason (a close the provider's status contradicts is refused unless
        ``force``, which needs a ``note``: it is recorded). A refund (and a payment worker too
        old for the update) takes the ``resolve`` signal: None once it is sent. With ``review``,
        the payment's reconciliation review (``review-<id>``) is closed, checked the same way."""
        command = self._resolve_command(action, status, note, resolved_by, force)
        if refund and review:
            raise InvalidRequest("resolve a refund or a review, not both", "review")
        if review:
            return await self._resolve_review(payment_id, command, idempotency_key)
        if refund:
            await self._resolve_refund(payment_id, command)
            return None
        workflow_id = _key(payment_workflow_id, payment_id, "payment_id")
        key = _idempotency_key(idempotency_key)
        try:
            return await self._action(workflow_id, "resolve_payment", command, key, "resolve")
        except _NoSuchUpdate:
            log.info("payment %s has no resolve_payment update: resolve signal", payment_id)
        await self._signal_payment(workflow_id, "resolve", command)
        return None

    def _resolve_command(
        self,
        action: str,
        status: PaymentStatus | str | None,
        note: str,
        resolved_by: str | None,
        force: bool,
    ) -> ResolveCommand:
        if action not in ("retry", "close"):
            raise InvalidRequest("action must be retry or close", "action")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise InvalidRequest(f"note must be at most {MAX_NOTE} characters", "note")
        data: dict[str, Any] = {
            "action": action,
            "status": None if status is None else _enum(PaymentStatus, status, "status"),
            "note": note,
            "resolved_by": self._requested_by(resolved_by),
            "force": force is True,
        }
        return _validated(ResolveCommand, data)

    async def _resolve_review(
        self, payment_id: str, command: ResolveCommand, idempotency_key: str | None
    ) -> ActionResult:
        if command.action != "close":
            raise InvalidRequest(
                "a review is closed with the status ops established: nothing to retry", "action"
            )
        workflow_id = _key(review_workflow_id, payment_id, "payment_id")
        key = _idempotency_key(idempotency_key)
        try:
            return await self._run_update(
                workflow_id,
                "resolve_review",
                command,
                key,
                "resolve",
                timeout_hint=(
                    "retry with the same idempotency key"
                    if key
                    else "read the review before retrying (no idempotency key was given)"
                ),
            )
        except WorkflowUpdateFailedError as err:
            cause = _application_error(err)
            raise ActionRefused(cause.message if cause else "resolve refused") from None
        except RPCError as err:
            if not _not_found(err):
                raise _unavailable(err) from None
            raise ReviewNotFound(f"no open review for payment {payment_id}") from None

    async def _resolve_refund(self, payment_id: str, command: ResolveCommand) -> None:
        workflow_id = _key(refund_workflow_id, payment_id, "payment_id")
        state = await self._query(workflow_id, RefundState)
        if state is None:
            raise RefundNotFound(f"no refund for payment {payment_id}")
        if state.status is not RefundStatus.NEEDS_ATTENTION:
            raise ActionRefused(f"refund is {state.status.value}: nothing to resolve")
        if command.action == "close" and command.status not in REFUND_CLOSE_STATUSES:
            raise InvalidRequest("a refund closes as REFUNDED or FAILED", "status")
        try:
            await self._client.get_workflow_handle(workflow_id).signal("resolve", command)
        except RPCError as err:
            if not _not_found(err):
                raise _unavailable(err) from None
            raise ActionRefused("the refund has finished: nothing to resolve") from None
