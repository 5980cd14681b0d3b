"""A payment's state and the moves every payment lifecycle shares.

``PaymentCore`` is not a workflow: the direct and auth-capture workflows each hold one. It keeps
the ``PaymentState`` (what the ``state`` query returns), records every transition with its reason,
upserts the search attributes at each transition, and reads provider answers into Kartu statuses.
Compensation lives in ``compensation.py``, the charge and 3DS wait in ``charging.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from . import details, ids, journal, payment_metrics, policies
from . import search_attributes as sa
from .close_check import close_refusal
from .provider import Provider, ProviderError, ProviderFailure
from .provider_time import aware_or_none

if TYPE_CHECKING:
    from .compensation import PendingCompensation

with workflow.unsafe.imports_passed_through():
    from ayoconnect.codes import DECLINE_CODES, GatewayCode, parse_response_code
    from ayoconnect.models import (
        CreateChargeResponse,
        PaymentCallback,
        PaymentDetail,
    )
    from ayoconnect.models import PaymentStatus as Wire

    from .models import (
        AWAITING_PROVIDER,
        UNDECIDED,
        URL_UNAVAILABLE,
        ActionResult,
        PaymentFlow,
        PaymentInput,
        PaymentOutcome,
        PaymentProgress,
        PaymentState,
        PaymentStatus,
        ResolveCommand,
    )


class PaymentCore:
    """One payment's state (``state``: ``PaymentState`` with its ``progress``, one model, what
    the ``state`` query shows) and the moves on it. Besides the state it holds only what is not
    the payment's: the provider, the lock, and the messages handlers queue for the main
    coroutine."""

    def __init__(self, payment: PaymentInput, flow: PaymentFlow) -> None:
        info = workflow.info()
        self.input = payment
        self.state = PaymentState(
            payment_id=payment.payment_id,
            workflow_id=info.workflow_id,
            flow=flow,
            amount=payment.amount,
            customer_id=payment.customer_id,
        )
        self.provider = Provider(
            key=payment.payment_id,
            customer_id=payment.customer_id,
            correlation_id=ids.correlation_id(info.workflow_id),
        )
        self.charge_step = ids.Step.PAY if flow is PaymentFlow.DIRECT else ids.Step.AUTHORIZE
        self.charge_transaction_id = self.provider.tid(self.charge_step)
        # Serializes capture, void, expiry and compensation (safe message handlers).
        self.lock = asyncio.Lock()
        # Messages the main coroutine acts on (handlers only record them): a callback arrived
        # since the last status look-up (look again now), and ops' queued resolves.
        self.wake = False
        self.last_callback: PaymentCallback | None = None
        self.resolutions: list[Resolution] = []
        # Money still to put back (survives NEEDS_ATTENTION and a cancel), see compensation.py.
        self.pending: PendingCompensation | None = None

    # --- bookkeeping ------------------------------------------------------------------------

    @property
    def status(self) -> PaymentStatus:
        return self.state.status

    @property
    def progress(self) -> PaymentProgress:
        return self.state.progress

    @property
    def decided(self) -> bool:
        """``first_outcome`` may answer: the charge is decided and Kartu will not undo it (a
        success past the deadline is released first), or the customer must act (CHALLENGE)."""
        status = self.state.status
        if status is PaymentStatus.PENDING:
            return False
        if status in (PaymentStatus.PAID, PaymentStatus.AUTHORIZED):
            return self.progress.money_kept
        return True

    @property
    def awaiting_answer(self) -> bool:
        """The charge's outcome is not known yet: the issuer or the provider has still to say
        (PENDING, CHALLENGE, PENDING_PROVIDER, and NEEDS_ATTENTION raised while asking)."""
        return (
            self.state.status in AWAITING_PROVIDER
            or self.state.provider_answer_awaited_since is not None
        )

    def start(self) -> None:
        updates = self._attribute_updates()
        if self.input.search_attributes_at_start:
            # The start's attributes are in the history: the same on every replay.
            at_start = workflow.info().typed_search_attributes
            updates = [u for u in updates if at_start.get(u.key) != u.value]
        if updates:
            workflow.upsert_search_attributes(updates)
        details.show(self.state)
        payment_metrics.started(self.state)

    def transition(self, to: PaymentStatus, reason: str) -> None:
        left_attention = self.state.status is PaymentStatus.NEEDS_ATTENTION
        if journal.transition(self.state, to, reason):
            workflow.logger.info("payment %s -> %s: %s", self.state.payment_id, to, reason)
            self.upsert_search_attributes()
            payment_metrics.transitioned(self.state)
            if left_attention:
                self._answer_stale_resolutions()

    def _answer_stale_resolutions(self) -> None:
        """Resolves still queued when the payment leaves NEEDS_ATTENTION (a duplicate, one
        that came while another was acted on) are answered now: never applied to a later
        NEEDS_ATTENTION, and no update left waiting (the workflow could never close)."""
        for resolution in self.resolutions:
            why = f"payment is {self.status.value} now: nothing to resolve"
            self.ignore("resolve", why)
            resolution.result = ActionResult(outcome="refused", reason=why, status=self.status)
        self.resolutions.clear()

    def upsert_search_attributes(self) -> None:
        workflow.upsert_search_attributes(self._attribute_updates())

    def _attribute_updates(self) -> list[SearchAttributeUpdate]:
        s = self.state
        return sa.updates(
            status=s.status.value,
            flow=s.flow.value,
            customer_id=s.customer_id,
            amount=s.captured_amount or s.amount,
            auth_expires_at=s.authorization_expires_at,
            invoice_number=s.invoice_number,
        )

    def record_difference(self, difference: str) -> None:
        differences = self.state.reconcile_differences
        if len(differences) >= journal.MAX_IGNORED:
            del differences[0]
        differences.append(f"{workflow.now().isoformat()} {difference}")
        workflow.logger.warning("payment %s: %s", self.state.payment_id, difference)

    def ignore(self, name: str, reason: str) -> None:
        journal.ignore(self.state.ignored, name, reason)

    def outcome(self) -> PaymentOutcome:
        return self.state.outcome()

    def woken(self) -> bool:
        """A callback asked for a look-up, within the budget (bounds look-ups and history)."""
        return self.wake and self.progress.callback_lookups < policies.MAX_CALLBACK_LOOKUPS

    def take_wake(self) -> None:
        """About to look the payment up: a pending callback wake is served by it."""
        if self.woken():
            self.progress.callback_lookups += 1
        self.wake = False

    async def next_resolution(self) -> ResolveCommand:
        """Ops' next ``resolve`` (NEEDS_ATTENTION waits here, as long as it takes)."""
        while True:
            await workflow.wait_condition(lambda: bool(self.resolutions))
            command = await self.take_resolution()
            if command is not None:
                return command

    async def take_resolution(self) -> ResolveCommand | None:
        """The first queued ``resolve`` Kartu acts on, or None once the queue is empty.

        A ``close`` claims a status the money is in: unless forced, it is checked against the
        provider's status first and refused, with the reason, when the provider contradicts it
        (or cannot be asked now). Refused ones are answered and dropped."""
        while self.resolutions:
            resolution = self.resolutions[0]  # stays queued (answerable) while it is checked
            command = resolution.command
            refusal = None
            if command.action == "close" and not command.force:
                refusal = await self._close_refusal(command)
            self.resolutions.remove(resolution)
            if refusal is None:
                resolution.result = ActionResult(outcome="resolved", status=self.status)
                return command
            self.ignore("resolve", refusal)
            resolution.result = ActionResult(outcome="refused", reason=refusal, status=self.status)
        return None

    async def _close_refusal(self, command: ResolveCommand) -> str | None:
        assert command.status is not None
        found = await self.look_up()
        return close_refusal(command.status, found.detail, not_found=found.not_found)

    def close_by_ops(self, command: ResolveCommand) -> None:
        assert command.status is not None
        who = command.resolved_by or "ops"
        s = self.state
        s.attention_reason = None
        s.provider_answer_awaited_since = None  # ops established the outcome
        self.progress.held_status = None
        reason = f"resolved by {who}: {command.note or 'closed'}"
        if command.status is PaymentStatus.REFUNDED:
            s.refunded_amount = s.captured_amount or s.amount
            s.refunded_at = workflow.now()
            s.refund_reason = reason
        self.transition(command.status, reason)

    def raise_if_cancelled(self) -> None:
        if self.provider.cancel_requested:
            self.progress.cancel_requested = True
            raise asyncio.CancelledError("payment cancelled")

    def past_deadline(self) -> bool:
        deadline = self.input.deadline
        return deadline is not None and workflow.now() > deadline

    # --- reading provider answers -----------------------------------------------------------

    def apply_charge_response(self, response: CreateChargeResponse) -> None:
        self.state.invoice_number = response.invoiceNumber
        if response.status is Wire.AUTHENTICATION_IN_PROGRESS:
            # Without a URL (a retried charge found only by look-up) the customer cannot be
            # sent to 3DS, yet the issuer may still decide: follow it as a challenge anyway.
            self.state.authentication_url = response.authenticationUrl
            why = "" if response.authenticationUrl else f" ({URL_UNAVAILABLE})"
            self.transition(PaymentStatus.CHALLENGE, f"issuer asked for 3DS authentication{why}")
            return
        self._apply_wire_status(
            response.status,
            amount=response.amount,
            expires_at=response.authorizationExpiresAt,
            response_code=response.responseCode,
            source="charge response",
        )

    def apply_status(self, detail: PaymentDetail, source: str = "status API") -> bool:
        """Apply the status API's answer; True once the charge is decided."""
        if detail.invoiceNumber:
            self.state.invoice_number = detail.invoiceNumber
        code = self.last_callback.responseCode if self.last_callback else None
        # The provider's own figures for what moved: a capture or refund Kartu never heard
        # of (its answer lost, or made outside Kartu) must read as the provider's amount.
        if detail.status is Wire.REFUNDED and self.state.captured_amount is None:
            # Kartu's captured figure, when it has one, stays: it is what Kartu captured, and a
            # different provider figure is reconciliation's to raise, not this look-up's.
            self.state.captured_amount = detail.capturedAmount
        self._apply_wire_status(
            detail.status,
            amount=detail.moved_amount,
            expires_at=detail.authorizationExpiresAt,
            response_code=code,
            source=source,
        )
        return self.status not in UNDECIDED

    def _apply_wire_status(
        self,
        status: Wire,
        *,
        amount: Decimal | None,
        expires_at: datetime | None,
        response_code: str | None,
        source: str,
    ) -> None:
        """``amount``: the provider's figure for what ``status`` says moved (authorized,
        captured, refunded), None when it gave none: Kartu's own figure stands in."""
        s = self.state
        if status is Wire.SUCCESS:
            self.transition(PaymentStatus.PAID, f"paid ({source})")
        elif status is Wire.AUTHORIZED:
            s.authorized_amount = amount or s.amount
            s.authorization_expires_at = aware_or_none(expires_at) or (
                workflow.now() + self.input.authorization_window
            )
            self.transition(PaymentStatus.AUTHORIZED, f"authorized ({source})")
        elif status is Wire.CAPTURED:
            s.captured_amount = amount or s.authorized_amount or s.amount
            self.transition(PaymentStatus.CAPTURED, f"captured ({source})")
        elif status is Wire.VOIDED:
            self.transition(PaymentStatus.VOIDED, f"voided ({source})")
        elif status is Wire.REFUNDED:
            s.refunded_amount = amount if amount is not None else s.captured_amount or s.amount
            s.refunded_at = s.refunded_at or workflow.now()
            self.transition(PaymentStatus.REFUNDED, f"refunded ({source})")
        elif status is Wire.FAILED:
            self.fail_from_code(response_code, f"payment failed ({source})")
        elif status is Wire.AUTHENTICATION_IN_PROGRESS and s.status is PaymentStatus.PENDING:
            # Found by look-up (no URL): the customer is in 3DS, so the first outcome is known.
            self.transition(PaymentStatus.CHALLENGE, f"3DS authentication in progress ({source})")
        # INITIATED: not decided yet, nothing to record.

    def fail_from_code(self, response_code: str | None, reason: str) -> None:
        gateway = _gateway(response_code)
        if gateway in _APPROVALS:
            # The envelope of a status look-up, not the payment's own decline code.
            response_code, gateway = None, None
        self.state.decline_code = response_code
        self.state.gateway_code = gateway.name if gateway else None
        self.state.decline_reason = reason
        if gateway in DECLINE_CODES:
            self.transition(PaymentStatus.DECLINED, f"declined: {gateway.name}")
        else:
            self.transition(PaymentStatus.FAILED, reason)

    def fail_from_error(self, failure: ProviderFailure) -> None:
        self.state.decline_code = failure.response_code
        self.state.gateway_code = failure.gateway_code
        self.state.decline_reason = failure.message
        if failure.declined:
            self.transition(
                PaymentStatus.DECLINED, f"declined: {failure.gateway_code or failure.message}"
            )
        else:
            self.transition(PaymentStatus.FAILED, failure.describe())

    async def confirm(self) -> PaymentDetail | None:
        """The status API's view of this payment, or None if it cannot be had right now."""
        return (await self.look_up()).detail

    async def look_up(self) -> LookUp:
        """The status API's view, telling "no record of it" apart from "no answer"."""
        if self.provider.lookups_left() <= 0:
            return LookUp(None)  # every look-up id of this payment is spent: unknown
        try:
            if self.state.invoice_number:
                detail = await self.provider.status(invoice_number=self.state.invoice_number)
            else:
                detail = await self.provider.status(
                    original_transaction_id=self.charge_transaction_id
                )
        except ProviderError as err:
            workflow.logger.warning("status look-up failed: %s", err)
            return LookUp(None, not_found=err.failure.not_found)
        return LookUp(detail)


@dataclass(frozen=True)
class LookUp:
    """A status look-up: the provider's record, or none (``not_found``: it answered that it has
    no such payment; otherwise it could not be asked)."""

    detail: PaymentDetail | None
    not_found: bool = False


@dataclass
class Resolution:
    """Ops' ``resolve``, and once the workflow has acted on it, what it did (for the update)."""

    command: ResolveCommand
    result: ActionResult | None = None


_APPROVALS = frozenset({GatewayCode.APPROVED, GatewayCode.APPROVED_AUTO})


def _gateway(response_code: str | None) -> GatewayCode | None:
    if not response_code:
        return None
    try:
        return parse_response_code(response_code)[2]
    except ValueError:
        return None
