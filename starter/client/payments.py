"""Payments: ``pay`` (direct) and ``authorize`` (auth-capture) by update-with-start of
``payment-<paymentId>``, their reads, and ``capture`` / ``void`` (updates, or fire-and-forget
signals).

The merchant's payment id is the idempotency key: the start uses conflict policy USE_EXISTING
and reuse policy REJECT_DUPLICATE, with the early-return update ``first_outcome``, so asking
twice returns the same payment. An idempotency key of a capture or void becomes its update id,
so a retried call gets the first answer even after the workflow closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows import AuthCapturePaymentWorkflow, DirectPaymentWorkflow
from workflows import search_attributes as sa
from workflows.ids import payment_workflow_id
from workflows.models import (
    UNDECIDED,
    ActionResult,
    CaptureCommand,
    CapturePolicy,
    PaymentFlow,
    PaymentInput,
    PaymentOutcome,
    PaymentRequestSummary,
    PaymentState,
    PaymentStatus,
    VoidCommand,
)

from . import summaries
from .core import ClientCore, _application_error, _outcome_wait
from .errors import IdempotencyConflict, InvalidRequest, KartuError, KartuTimeout
from .validation import _amount, _enum, _idempotency_key, _key, _text, _validated

log = logging.getLogger("kartu.client")


class PaymentsMixin(ClientCore):
    async def pay(
        self,
        payment_id: str,
        *,
        customer_id: str,
        amount: Decimal | str | int,
        redirect_url: str,
        card_token: str | None = None,
        encrypted_card: str | None = None,
        description: str | None = None,
        confirmation_url: str | None = None,
        deadline: datetime | None = None,
        challenge_window: timedelta | None = None,
        timeout: float | None = None,
    ) -> PaymentOutcome:
        """Direct payment (PAY): the first outcome, PAID / DECLINED / FAILED or CHALLENGE with
        the 3DS URL; PENDING if it is not decided within ``timeout`` (it carries on)."""
        payment = self._payment_input(
            payment_id,
            customer_id=customer_id,
            amount=amount,
            redirect_url=redirect_url,
            card_token=card_token,
            encrypted_card=encrypted_card,
            description=description,
            confirmation_url=confirmation_url,
            deadline=deadline,
            challenge_window=challenge_window,
        )
        return await self._start_payment(payment, PaymentFlow.DIRECT, timeout)

    async def authorize(
        self,
        payment_id: str,
        *,
        customer_id: str,
        amount: Decimal | str | int,
        redirect_url: str,
        card_token: str | None = None,
        encrypted_card: str | None = None,
        description: str | None = None,
        capture_policy: CapturePolicy | str = CapturePolicy.NONE,
        capture_policy_margin: timedelta | None = None,
        authorization_window: timedelta | None = None,
        confirmation_url: str | None = None,
        deadline: datetime | None = None,
        challenge_window: timedelta | None = None,
        timeout: float | None = None,
    ) -> PaymentOutcome:
        """Auth-capture payment (AUTHORIZE): first outcome AUTHORIZED / DECLINED / FAILED or
        CHALLENGE; then ``capture`` or ``void`` before the authorization window ends."""
        try:
            policy = CapturePolicy(capture_policy)
        except ValueError:
            allowed = ", ".join(p.value for p in CapturePolicy)
            raise InvalidRequest(
                f"capture_policy must be one of {allowed}", "capture_policy"
            ) from None
        payment = self._payment_input(
            payment_id,
            customer_id=customer_id,
            amount=amount,
            redirect_url=redirect_url,
            card_token=card_token,
            encrypted_card=encrypted_card,
            description=description,
            confirmation_url=confirmation_url,
            deadline=deadline,
            challenge_window=challenge_window,
            capture_policy=policy,
            capture_policy_margin=capture_policy_margin,
            authorization_window=authorization_window,
        )
        return await self._start_payment(payment, PaymentFlow.AUTH_CAPTURE, timeout)

    async def payment_status(self, payment_id: str) -> PaymentState:
        """The payment workflow's ``state`` query: fresh, never visibility. A PAID or CAPTURED
        payment that ``refund-<paymentId>`` refunded reads REFUNDED (with the refund's amount,
        time, reason and transition): one more query, for those two statuses only."""
        return await self._payment(payment_id)

    async def wait_payment(
        self,
        payment_id: str,
        statuses: Iterable[PaymentStatus | str] | None = None,
        timeout: float = 30.0,
    ) -> PaymentState:
        """Poll the payment's state until its status is one of ``statuses`` (default: decided,
        i.e. neither PENDING nor CHALLENGE); KartuTimeout after ``timeout`` seconds."""
        if statuses is not None:
            wanted = {_enum(PaymentStatus, s, "statuses") for s in statuses}
            done: Callable[[PaymentState], bool] = lambda s: s.status in wanted  # noqa: E731
        else:
            done = lambda s: s.status not in UNDECIDED  # noqa: E731
        return await self._poll(
            lambda: self.payment_status(payment_id), done, timeout, f"payment {payment_id}"
        )

    async def capture(
        self,
        payment_id: str,
        amount: Decimal | str | int | None = None,
        *,
        requested_by: str | None = None,
        idempotency_key: str | None = None,
    ) -> ActionResult:
        """Capture an AUTHORIZED payment (all of it, or ``amount`` up to 120 %). Returns the
        ``captured`` result; raises ActionRefused with the reason otherwise."""
        workflow_id = _key(payment_workflow_id, payment_id, "payment_id")
        command = CaptureCommand(
            amount=None if amount is None else _amount(amount),
            requested_by=self._requested_by(requested_by),
        )
        key = _idempotency_key(idempotency_key)
        return await self._action(workflow_id, "capture_payment", command, key, "capture")

    async def void(
        self,
        payment_id: str,
        reason: str = "void requested",
        *,
        requested_by: str | None = None,
        idempotency_key: str | None = None,
    ) -> ActionResult:
        """Void an AUTHORIZED payment; raises ActionRefused with the reason otherwise."""
        workflow_id = _key(payment_workflow_id, payment_id, "payment_id")
        command = VoidCommand(
            reason=_text(reason, "reason"), requested_by=self._requested_by(requested_by)
        )
        key = _idempotency_key(idempotency_key)
        return await self._action(workflow_id, "void_payment", command, key, "void")

    async def signal_capture(
        self,
        payment_id: str,
        amount: Decimal | str | int | None = None,
        *,
        requested_by: str | None = None,
    ) -> None:
        """Fire-and-forget capture: the workflow records a refusal in its state's ``ignored``."""
        workflow_id = _key(payment_workflow_id, payment_id, "payment_id")
        command = CaptureCommand(
            amount=None if amount is None else _amount(amount),
            requested_by=self._requested_by(requested_by),
        )
        await self._signal_payment(workflow_id, "capture", command)

    async def signal_void(
        self, payment_id: str, reason: str = "void requested", *, requested_by: str | None = None
    ) -> None:
        workflow_id = _key(payment_workflow_id, payment_id, "payment_id")
        command = VoidCommand(
            reason=_text(reason, "reason"), requested_by=self._requested_by(requested_by)
        )
        await self._signal_payment(workflow_id, "void", command)

    def _payment_input(self, payment_id: str, **fields: Any) -> PaymentInput:
        _key(payment_workflow_id, payment_id, "payment_id")
        if (fields["card_token"] is None) == (fields["encrypted_card"] is None):
            raise InvalidRequest("give exactly one of card_token or encrypted_card", "card_token")
        fields["amount"] = _amount(fields["amount"])
        data = {k: v for k, v in fields.items() if v is not None}
        return _validated(PaymentInput, {"payment_id": payment_id, **data})

    async def _start_payment(
        self, payment: PaymentInput, flow: PaymentFlow, timeout: float | None
    ) -> PaymentOutcome:
        workflow = (
            DirectPaymentWorkflow if flow is PaymentFlow.DIRECT else AuthCapturePaymentWorkflow
        )
        workflow_id = payment_workflow_id(payment.payment_id)
        # Set at start too, so find_payments sees the payment before its first workflow task;
        # the workflow then upserts only what differs from them.
        payment = payment.model_copy(update={"search_attributes_at_start": True})
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(sa.PAYMENT_STATUS, PaymentStatus.PENDING.value),
                SearchAttributePair(sa.FLOW, flow.value),
                SearchAttributePair(sa.CUSTOMER_ID, payment.customer_id),
                SearchAttributePair(sa.AMOUNT, sa.whole_rupiah(payment.amount)),
            ]
        )
        start = WithStartWorkflowOperation(
            workflow.run,
            payment,
            id=workflow_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=attributes,
            **summaries.payment(payment, flow).start_options(),
        )
        # The running payment compares this with its own input: the same id for another payment
        # is refused by the update's validator, so a matching answer needs no second look.
        summary = PaymentRequestSummary.of(payment, flow)
        try:
            async with asyncio.timeout(_outcome_wait(self.outcome_timeout, timeout)):
                outcome: PaymentOutcome = await self._update_with_start(
                    workflow.first_outcome, start, summary
                )
                return outcome
        except WorkflowAlreadyStartedError:
            pass  # finished already: its state holds the same outcome
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            log.info("payment %s: no first outcome in time, still running", payment.payment_id)
        except WorkflowUpdateFailedError as err:
            cause = _application_error(err)
            if cause is not None and cause.type == "IdempotencyConflict":
                raise IdempotencyConflict(cause.message) from None
            raise KartuError(f"first_outcome failed: {cause or err}") from None
        # Finished already, or no outcome yet: the state is the answer, and tells whether the
        # id names another payment (a closed workflow runs no validator).
        state = await self._query(workflow_id, PaymentState)
        if state is None:
            raise KartuTimeout(f"payment {payment.payment_id} not started in time")
        self._check_same_payment(state, payment, flow)
        return state.outcome()

    @staticmethod
    def _check_same_payment(state: PaymentState, payment: PaymentInput, flow: PaymentFlow) -> None:
        for field, mine, theirs in (
            ("flow", flow, state.flow),
            ("customer_id", payment.customer_id, state.customer_id),
            ("amount", payment.amount, state.amount),
        ):
            if mine != theirs:
                raise IdempotencyConflict(
                    f"payment {payment.payment_id} already exists with another {field}: "
                    "use a new payment id for a new payment"
                )
