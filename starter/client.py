"""``KartuClient``: the Python API of Kartu for backend services and ops.

Every call validates its input first (one ``InvalidRequest`` naming the field, nothing started),
then talks to Temporal only: the payment workflow is the state, Ayoconnect is reached by
activities alone.

- ``pay`` / ``authorize``: update-with-start of ``payment-<paymentId>`` (conflict policy
  USE_EXISTING, reuse policy REJECT_DUPLICATE) with the early-return update ``first_outcome``.
  The merchant's payment id is the idempotency key: asking twice returns the same payment.
- ``capture`` / ``void``: the ``capture_payment`` / ``void_payment`` updates; an idempotency key
  becomes the update id, so a retried call gets the first answer even after the workflow closed.
  ``signal_capture`` / ``signal_void`` are the fire-and-forget variants.
- ``refund`` starts ``refund-<paymentId>`` (full amount, from the payment's state); ``unbind_card``
  starts ``unbind-<digest of the token>``; both answer the same workflow when asked twice.
- Reads go through the workflows' ``state`` query (read-your-writes), never visibility; only
  ``find_payments`` and ``list_cards`` search visibility (eventually consistent, for lists).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ayoconnect.models import BindingCallback, Customer, PaymentCallback
from workflows import (
    AuthCapturePaymentWorkflow,
    CardRegistrationWorkflow,
    CardUnbindWorkflow,
    DirectPaymentWorkflow,
    RefundWorkflow,
)
from workflows import search_attributes as sa
from workflows.ids import (
    UnroutableCallbackError,
    parse_callback_transaction_id,
    payment_workflow_id,
    refund_workflow_id,
    registration_workflow_id,
    unbind_workflow_id,
)
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
    RefundInput,
    RefundState,
    RefundStatus,
    RegistrationInput,
    RegistrationState,
    RegistrationStatus,
    UnbindInput,
    UnbindState,
    UnbindStatus,
    VoidCommand,
)

from .errors import (
    ActionRefused,
    IdempotencyConflict,
    InvalidRequest,
    KartuError,
    KartuTimeout,
    KartuUnavailable,
    NotFound,
    PaymentNotFound,
    RefundNotFound,
    RegistrationNotFound,
    UnbindNotFound,
)
from .models import (
    CallbackDelivery,
    CardSummary,
    PaymentSummary,
    RegistrationStarted,
    _CustomerIdOnly,
)
from .settings import DEFAULT_TASK_QUEUE, TemporalSettings, connect_temporal
from .validation import (
    _amount,
    _enum,
    _idempotency_key,
    _key,
    _text,
    _validated,
)

log = logging.getLogger("kartu.client")

M = TypeVar("M", bound=BaseModel)

PAYMENT_WORKFLOW_TYPES = ("DirectPayment", "AuthCapturePayment")
REGISTRATION_WORKFLOW_TYPE = "CardRegistration"
REFUNDABLE = frozenset({PaymentStatus.PAID, PaymentStatus.CAPTURED})
SETTLED_REGISTRATION = frozenset(set(RegistrationStatus) - {RegistrationStatus.PENDING})

__all__ = [
    "ActionRefused",
    "CallbackDelivery",
    "CardSummary",
    "IdempotencyConflict",
    "InvalidRequest",
    "KartuClient",
    "KartuError",
    "KartuTimeout",
    "KartuUnavailable",
    "NotFound",
    "PaymentNotFound",
    "PaymentSummary",
    "RefundNotFound",
    "RegistrationNotFound",
    "RegistrationStarted",
    "UnbindNotFound",
]


# A shorter wait could cancel the update-with-start call before the start itself is through.
MIN_OUTCOME_WAIT = 1.0


def _outcome_wait(default: float, asked: float | None) -> float:
    return max(default if asked is None else asked, MIN_OUTCOME_WAIT)


def _not_found(err: BaseException) -> bool:
    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


def _unavailable(err: RPCError) -> KartuUnavailable:
    return KartuUnavailable(f"Temporal refused the call ({err.status.name}): {err.message}")


def _application_error(err: WorkflowUpdateFailedError) -> ApplicationError | None:
    cause: BaseException | None = err.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    return cause


class KartuClient:
    """Kartu's Python API. Build with ``await KartuClient.connect()`` (environment settings) or
    around an existing ``temporalio`` Client that uses the pydantic data converter."""

    def __init__(
        self,
        client: Client,
        *,
        task_queue: str = DEFAULT_TASK_QUEUE,
        outcome_timeout: float = 30.0,
    ) -> None:
        converter = client.data_converter.payload_converter_class
        if converter is not pydantic_data_converter.payload_converter_class:
            raise ValueError("KartuClient needs a Temporal client with the pydantic converter")
        self._client = client
        self.task_queue = task_queue
        self.outcome_timeout = outcome_timeout

    @classmethod
    async def connect(
        cls, settings: TemporalSettings | None = None, *, outcome_timeout: float = 30.0
    ) -> KartuClient:
        """Connect as the worker does (same settings, TLS, API key and data converter)."""
        settings = settings or TemporalSettings()
        client = await connect_temporal(settings)
        return cls(client, task_queue=settings.task_queue, outcome_timeout=outcome_timeout)

    @property
    def temporal(self) -> Client:
        return self._client

    async def check_health(self, timeout: float = 3.0) -> bool:
        """True when the Temporal frontend answers its health check."""
        try:
            async with asyncio.timeout(timeout):
                return await self._client.service_client.check_health()
        except Exception:  # refused, unreachable, timed out: all mean "not healthy" here
            return False

    # --- registration ----------------------------------------------------------------------

    async def register_card(
        self,
        registration_id: str,
        *,
        name: str,
        email: str,
        phone_number: str,
        redirect_url: str,
        customer_id: str | None = None,
        failed_redirect_url: str | None = None,
        callback_margin: timedelta | None = None,
        timeout: float | None = None,
    ) -> RegistrationStarted:
        """Start ``registration-<registrationId>`` and return its webview URL at once.
        Asking again with the same id returns the same registration's webview. KartuTimeout
        if the webview is not there within ``timeout`` (the registration carries on)."""
        workflow_id = _key(registration_workflow_id, registration_id, "registration_id")
        customer = _validated(
            Customer,
            {"customerId": customer_id, "name": name, "email": email, "phoneNumber": phone_number},
            rename={"customerId": "customer_id", "phoneNumber": "phone_number"},
        )
        data: dict[str, Any] = {
            "registration_id": registration_id,
            "customer": customer,
            "redirect_url": redirect_url,
            "failed_redirect_url": failed_redirect_url,
        }
        if callback_margin is not None:
            data["callback_margin"] = callback_margin
        registration = _validated(RegistrationInput, data)
        attributes = [SearchAttributePair(sa.FLOW, "REGISTRATION")]
        if customer_id:
            attributes.append(SearchAttributePair(sa.CUSTOMER_ID, customer_id))
        start = WithStartWorkflowOperation(
            CardRegistrationWorkflow.run,
            registration,
            id=workflow_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(attributes),
        )
        try:
            async with asyncio.timeout(_outcome_wait(self.outcome_timeout, timeout)):
                webview = await self._update_with_start(CardRegistrationWorkflow.webview, start)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise KartuTimeout(
                f"registration {registration_id}: no webview in time; read registration_status"
            ) from None
        except WorkflowAlreadyStartedError:
            # Finished already: its webview (perhaps expired) is still in its state.
            state = await self.registration_status(registration_id)
            if state.webview is None:
                raise ActionRefused(
                    f"registration is {state.status.value}: {state.reason or 'no webview'}"
                ) from None
            webview = state.webview
        except WorkflowUpdateFailedError as err:
            cause = _application_error(err)
            raise ActionRefused(cause.message if cause else "webview not generated") from None
        return RegistrationStarted(
            registration_id=registration_id, workflow_id=workflow_id, webview=webview
        )

    async def registration_status(self, registration_id: str) -> RegistrationState:
        workflow_id = _key(registration_workflow_id, registration_id, "registration_id")
        state = await self._query(workflow_id, RegistrationState)
        if state is None:
            raise RegistrationNotFound(f"no registration {registration_id}")
        return state

    async def wait_registration(
        self,
        registration_id: str,
        statuses: Iterable[RegistrationStatus | str] | None = None,
        timeout: float = 30.0,
    ) -> RegistrationState:
        """Poll the registration's state until its status is one of ``statuses`` (default:
        any result, REGISTERED / FAILED / EXPIRED); KartuTimeout after ``timeout`` seconds."""
        wanted = (
            {_enum(RegistrationStatus, s, "statuses") for s in statuses}
            if statuses is not None
            else SETTLED_REGISTRATION
        )
        return await self._poll(
            lambda: self.registration_status(registration_id),
            lambda s: s.status in wanted,
            timeout,
            f"registration {registration_id}",
        )

    # --- payments --------------------------------------------------------------------------

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
        """The payment workflow's ``state`` query: fresh, never visibility."""
        workflow_id = _key(payment_workflow_id, payment_id, "payment_id")
        state = await self._query(workflow_id, PaymentState)
        if state is None:
            raise PaymentNotFound(f"no payment {payment_id}")
        return state

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

    async def find_payments(
        self,
        *,
        status: PaymentStatus | str | None = None,
        customer_id: str | None = None,
        expiring_before: datetime | None = None,
        flow: PaymentFlow | str | None = None,
        limit: int = 100,
    ) -> list[PaymentSummary]:
        """Payments by Kartu's search attributes, newest first (visibility: eventually
        consistent; read one payment with ``payment_status``)."""
        query = self.payments_query(
            status=status, customer_id=customer_id, expiring_before=expiring_before, flow=flow
        )
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000", "limit")
        out: list[PaymentSummary] = []
        try:
            async for execution in self._client.list_workflows(query, limit=limit):
                out.append(_summary(execution))
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT:
                raise InvalidRequest(f"search refused: {err.message}") from None
            raise _unavailable(err) from None
        return out

    @staticmethod
    def payments_query(
        *,
        status: PaymentStatus | str | None = None,
        customer_id: str | None = None,
        expiring_before: datetime | None = None,
        flow: PaymentFlow | str | None = None,
    ) -> str:
        """The visibility query ``find_payments`` runs (also usable in the Temporal UI). Every
        value is validated against its type first, so nothing can be injected."""
        types = ", ".join(f"'{t}'" for t in PAYMENT_WORKFLOW_TYPES)
        clauses = [f"WorkflowType IN ({types})"]
        if status is not None:
            clauses.append(f"{sa.PAYMENT_STATUS.name} = '{_enum(PaymentStatus, status, 'status')}'")
        if customer_id is not None:
            checked = _validated(_CustomerIdOnly, {"customer_id": customer_id}).customer_id
            clauses.append(f"{sa.CUSTOMER_ID.name} = '{checked}'")
        if expiring_before is not None:
            if not isinstance(expiring_before, datetime) or expiring_before.tzinfo is None:
                raise InvalidRequest(
                    "expiring_before must be a datetime with a time zone", "expiring_before"
                )
            try:
                # isoformat keeps 4-digit years (strftime writes year 824 as "824").
                moment = expiring_before.astimezone(UTC).isoformat(timespec="microseconds")
            except (OverflowError, ValueError):
                raise InvalidRequest(
                    "expiring_before is outside the supported dates", "expiring_before"
                ) from None
            moment = moment.replace("+00:00", "Z")
            clauses.append(f"{sa.AUTH_EXPIRES_AT.name} < '{moment}'")
        if flow is not None:
            clauses.append(f"{sa.FLOW.name} = '{_enum(PaymentFlow, flow, 'flow')}'")
        return " AND ".join(clauses)

    # --- refund and unbind -----------------------------------------------------------------

    async def refund(
        self,
        payment_id: str,
        reason: str = "refund requested",
        *,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> RefundState:
        """Refund a PAID or CAPTURED payment in full, once: ``refund-<paymentId>``. Asking again
        returns the same refund. With ``wait``, returns once the refund is decided (or its state
        so far after ``timeout``)."""
        _text(reason, "reason")
        state = await self.payment_status(payment_id)
        workflow_id = refund_workflow_id(payment_id)
        if state.status not in REFUNDABLE or state.invoice_number is None:
            existing = await self._query(workflow_id, RefundState)
            if existing is not None:
                return await self._refund_result(workflow_id, existing, wait, timeout)
            raise ActionRefused(
                f"payment is {state.status.value}: only a PAID or CAPTURED payment can be refunded",
                status=state.status,
            )
        full = state.captured_amount if state.status is PaymentStatus.CAPTURED else state.amount
        refund = _validated(
            RefundInput,
            {
                "payment_id": payment_id,
                "customer_id": state.customer_id,
                "invoice_number": state.invoice_number,
                "amount": full,
                "reason": reason,
            },
        )
        try:
            await self._client.start_workflow(
                RefundWorkflow.run,
                refund,
                id=workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass  # finished earlier: the same refund answers
        except RPCError as err:
            raise _unavailable(err) from None
        return await self._refund_result(workflow_id, None, wait, timeout)

    async def refund_status(self, payment_id: str) -> RefundState:
        workflow_id = _key(refund_workflow_id, payment_id, "payment_id")
        state = await self._query(workflow_id, RefundState)
        if state is None:
            raise RefundNotFound(f"no refund for payment {payment_id}")
        return state

    async def unbind_card(
        self, card_token: str, *, customer_id: str, wait: bool = True, timeout: float = 30.0
    ) -> UnbindState:
        """Disable a card token: ``unbind-<token digest>``; asking again returns the same unbind."""
        unbind = _validated(UnbindInput, {"card_token": card_token, "customer_id": customer_id})
        workflow_id = unbind_workflow_id(unbind.card_token)
        try:
            await self._client.start_workflow(
                CardUnbindWorkflow.run,
                unbind,
                id=workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass
        except RPCError as err:
            raise _unavailable(err) from None
        state = await self._wait_result(workflow_id, UnbindState, wait, timeout)
        if state is None:
            raise UnbindNotFound("unbind workflow vanished")  # retention ran out meanwhile
        return state

    async def list_cards(self, customer_id: str, limit: int = 100) -> list[CardSummary]:
        """Cards registered through Kartu for this customer (registration workflows found by
        ``KartuCustomerId``, read through their ``state`` query), DISABLED once unbound through
        Kartu. Not the provider's list: cards bound or disabled elsewhere are not seen."""
        checked = _validated(_CustomerIdOnly, {"customer_id": customer_id}).customer_id
        query = (
            f"WorkflowType = '{REGISTRATION_WORKFLOW_TYPE}' AND {sa.CUSTOMER_ID.name} = '{checked}'"
        )
        try:
            ids = [e.id async for e in self._client.list_workflows(query, limit=limit)]
        except RPCError as err:
            raise _unavailable(err) from None
        states = await asyncio.gather(*(self._query(i, RegistrationState) for i in ids))
        cards: dict[str, CardSummary] = {}
        registered = [
            s
            for s in states
            if s is not None and s.status is RegistrationStatus.REGISTERED and s.card_token
        ]
        unbinds = await asyncio.gather(
            *(self._query(unbind_workflow_id(s.card_token or ""), UnbindState) for s in registered)
        )
        for s, unbind in zip(registered, unbinds, strict=True):
            assert s.card_token is not None
            unbound = unbind is not None and unbind.status is UnbindStatus.UNBOUND
            cards[s.card_token] = CardSummary(
                card_token=s.card_token,
                masked_card=s.masked_card,
                brand=s.brand,
                status="DISABLED" if unbound else "ACTIVE",
                registration_id=s.registration_id,
            )
        return list(cards.values())

    # --- callbacks -------------------------------------------------------------------------

    async def deliver_callback(
        self, callback: BindingCallback | PaymentCallback
    ) -> CallbackDelivery:
        """Signal an Ayoconnect callback to its workflow. An unroutable transactionId or an
        unknown or finished workflow is not an error: the delivery says why it was not sent."""
        try:
            route = parse_callback_transaction_id(callback.transactionId)
        except UnroutableCallbackError as exc:
            return CallbackDelivery(delivered=False, reason=str(exc))
        expected = (
            "binding_callback" if isinstance(callback, BindingCallback) else "payment_callback"
        )
        if route.signal != expected:
            return CallbackDelivery(
                delivered=False,
                workflow_id=route.workflow_id,
                reason=f"{callback.type} callback with a {route.step!r} transactionId",
            )
        handle = self._client.get_workflow_handle(route.workflow_id)
        try:
            await handle.signal(route.signal, callback)
        except RPCError as err:
            if not _not_found(err):
                raise _unavailable(err) from None
            return CallbackDelivery(
                delivered=False,
                workflow_id=route.workflow_id,
                signal=route.signal,
                reason=f"workflow not running: {err.message}",
            )
        return CallbackDelivery(delivered=True, workflow_id=route.workflow_id, signal=route.signal)

    # --- mechanics -------------------------------------------------------------------------

    def _payment_input(self, payment_id: str, **fields: Any) -> PaymentInput:
        _key(payment_workflow_id, payment_id, "payment_id")
        if (fields["card_token"] is None) == (fields["encrypted_card"] is None):
            raise InvalidRequest("give exactly one of card_token or encrypted_card", "card_token")
        fields["amount"] = _amount(fields["amount"])
        data = {k: v for k, v in fields.items() if v is not None}
        return _validated(PaymentInput, {"payment_id": payment_id, **data})

    @staticmethod
    def _requested_by(value: str | None) -> str | None:
        return None if value is None else _text(value, "requested_by", 200)

    async def _start_payment(
        self, payment: PaymentInput, flow: PaymentFlow, timeout: float | None
    ) -> PaymentOutcome:
        workflow = (
            DirectPaymentWorkflow if flow is PaymentFlow.DIRECT else AuthCapturePaymentWorkflow
        )
        workflow_id = payment_workflow_id(payment.payment_id)
        # Set at start too, so find_payments sees the payment before its first workflow task.
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

    async def _update_with_start(
        self, update: Any, start: WithStartWorkflowOperation, *args: Any
    ) -> Any:
        try:
            return await self._client.execute_update_with_start_workflow(
                update, *args, start_workflow_operation=start
            )
        except RPCError as err:
            raise _unavailable(err) from None
        finally:
            # The operation's handle future holds the start error too; read it so asyncio does
            # not log "exception never retrieved".
            with contextlib.suppress(BaseException):
                if start._workflow_handle.done():
                    start._workflow_handle.exception()

    async def _action(
        self, workflow_id: str, update: str, command: BaseModel, key: str | None, verb: str
    ) -> ActionResult:
        handle = self._client.get_workflow_handle(workflow_id)
        try:
            async with asyncio.timeout(self.outcome_timeout):
                result = await handle.execute_update(
                    update,
                    command,
                    id=f"{verb}-{key}" if key else None,  # Temporal dedups updates by id
                    result_type=ActionResult,
                )
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise KartuTimeout(
                f"{verb} not answered within {self.outcome_timeout:g} s: it may still happen, "
                "read payment_status (or retry with the same idempotency key)"
            ) from None
        except WorkflowUpdateFailedError as err:
            cause = _application_error(err)
            reason = cause.message if cause else f"{verb} failed"
            state = await self._query(workflow_id, PaymentState)
            raise ActionRefused(reason, status=state.status if state else None) from None
        except RPCError as err:
            if not _not_found(err):
                raise _unavailable(err) from None
            state = await self._query(workflow_id, PaymentState)
            if state is None:
                raise PaymentNotFound(
                    f"no payment {workflow_id.removeprefix('payment-')}"
                ) from None
            raise ActionRefused(
                f"payment is {state.status.value} and finished: nothing to {verb}",
                status=state.status,
            ) from None
        if result.outcome == "refused":
            raise ActionRefused(result.reason or f"{verb} refused", result.status, result)
        return result

    async def _signal_payment(self, workflow_id: str, signal: str, command: BaseModel) -> None:
        try:
            await self._client.get_workflow_handle(workflow_id).signal(signal, command)
        except RPCError as err:
            if not _not_found(err):
                raise _unavailable(err) from None
            state = await self._query(workflow_id, PaymentState)
            if state is None:
                raise PaymentNotFound(
                    f"no payment {workflow_id.removeprefix('payment-')}"
                ) from None
            raise ActionRefused(
                f"payment is {state.status.value} and finished: nothing to {signal}",
                status=state.status,
            ) from None

    async def _query(self, workflow_id: str, result_type: type[M]) -> M | None:
        """The workflow's ``state`` query; None if there is no such workflow."""
        handle = self._client.get_workflow_handle(workflow_id)
        try:
            return await handle.query("state", result_type=result_type)
        except RPCError as err:
            if _not_found(err):
                return None
            raise _unavailable(err) from None
        except WorkflowQueryFailedError as err:
            # A closed workflow's result is its final state and needs no replay: a query that
            # failed (e.g. a history this SDK cannot replay) must not hide a finished payment.
            with contextlib.suppress(RPCError):
                if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                    with contextlib.suppress(WorkflowFailureError):
                        return await self._client.get_workflow_handle(
                            workflow_id, result_type=result_type
                        ).result()
            raise KartuError(f"state of {workflow_id} could not be read: {err}") from None

    async def _refund_result(
        self, workflow_id: str, known: RefundState | None, wait: bool, timeout: float
    ) -> RefundState:
        if known is not None and (known.status is not RefundStatus.PENDING or not wait):
            return known
        state = await self._wait_result(workflow_id, RefundState, wait, timeout)
        if state is None:
            raise RefundNotFound("refund workflow vanished")
        return state

    async def _wait_result(
        self, workflow_id: str, result_type: type[M], wait: bool, timeout: float
    ) -> M | None:
        """The workflow's result (its final state) within ``timeout``, else its state so far."""
        if wait:
            handle: WorkflowHandle[Any, M] = self._client.get_workflow_handle(
                workflow_id, result_type=result_type
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    try:
                        return await handle.result()
                    except WorkflowFailureError:
                        pass  # failed or terminated: its state still tells what happened
                    except RPCError as err:
                        if not _not_found(err):
                            raise _unavailable(err) from None
                        return None
        return await self._query(workflow_id, result_type)

    @staticmethod
    async def _poll(
        read: Callable[[], Awaitable[M]], done: Callable[[M], bool], timeout: float, what: str
    ) -> M:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            value = await read()
            if done(value):
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                status = getattr(value, "status", "?")
                raise KartuTimeout(f"{what} still {status} after {timeout:g} s")
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 1.0)


def _summary(execution: WorkflowExecution) -> PaymentSummary:
    attrs = execution.typed_search_attributes
    workflow_id = execution.id
    return PaymentSummary(
        payment_id=workflow_id.removeprefix("payment-"),
        workflow_id=workflow_id,
        workflow_type=execution.workflow_type,
        running=execution.status == WorkflowExecutionStatus.RUNNING,
        flow=attrs.get(sa.FLOW),
        status=attrs.get(sa.PAYMENT_STATUS),
        customer_id=attrs.get(sa.CUSTOMER_ID),
        amount=attrs.get(sa.AMOUNT),
        invoice_number=attrs.get(sa.INVOICE_NUMBER),
        authorization_expires_at=attrs.get(sa.AUTH_EXPIRES_AT),
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )
