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
  starts ``unbind-<digest of the token>``; asked while it runs, each joins it; asked after a
  refund ended without the money back (an unbind ended at all), each runs it again (refund:
  the next ``attempt`` only after a definite "no" to the last one).
- ``resolve``: ops' answer to NEEDS_ATTENTION (``resolve_payment`` update, or the ``resolve``
  signal of a refund).
- Reads go through the workflows' ``state`` query (read-your-writes), never visibility; a
  payment refunded by ``refund-<paymentId>`` reads REFUNDED. Only ``find_payments`` and
  ``list_cards`` search visibility (eventually consistent, for lists).
- ``provider_status``, ``provider_cards``, ``customer_cards``: Ayoconnect's own view, through
  short look-up workflows (``workflows/lookups.py``), since only activities call Ayoconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
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

from ayoconnect.models import BindingCallback, CardStatus, Customer, PaymentCallback
from workflows import (
    AuthCapturePaymentWorkflow,
    CardRegistrationWorkflow,
    CardUnbindWorkflow,
    DirectPaymentWorkflow,
    RefundWorkflow,
)
from workflows import search_attributes as sa
from workflows.ids import (
    MAX_STEP_ATTEMPTS,
    Step,
    UnroutableCallbackError,
    parse_callback_transaction_id,
    payment_workflow_id,
    refund_workflow_id,
    registration_workflow_id,
    transaction_id,
    unbind_workflow_id,
)
from workflows.lookups import (
    LOOKUP_PREFIX,
    ProviderCardsLookupWorkflow,
    ProviderCardsQuery,
    ProviderCardsView,
    ProviderPaymentLookupWorkflow,
    ProviderPaymentQuery,
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
    ResolveCommand,
    UnbindInput,
    UnbindState,
    UnbindStatus,
    VoidCommand,
)
from workflows.reconcile_rules import callback_agrees

from . import refunds
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
    CustomerCards,
    PaymentSummary,
    ProviderStatus,
    RegistrationStarted,
    _CustomerIdOnly,
)
from .refunds import REFUNDABLE, with_refund
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
SETTLED_REGISTRATION = frozenset(set(RegistrationStatus) - {RegistrationStatus.PENDING})

__all__ = [
    "ActionRefused",
    "CallbackDelivery",
    "CardSummary",
    "CustomerCards",
    "IdempotencyConflict",
    "InvalidRequest",
    "KartuClient",
    "KartuError",
    "KartuTimeout",
    "KartuUnavailable",
    "NotFound",
    "PaymentNotFound",
    "PaymentSummary",
    "ProviderStatus",
    "RefundNotFound",
    "RegistrationNotFound",
    "RegistrationStarted",
    "UnbindNotFound",
]


MAX_NOTE = 1000
REFUND_CLOSE_STATUSES = frozenset({PaymentStatus.REFUNDED, PaymentStatus.FAILED})
# A look-up's READ activity gives up after 2 minutes; its workflow a little later.
LOOKUP_EXECUTION_TIMEOUT = timedelta(minutes=3)
_EPOCH = datetime.min.replace(tzinfo=UTC)

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


class _NoSuchUpdate(Exception):
    """The workflow has no handler of this update (a worker older than the client)."""


def _unknown_update(cause: ApplicationError, update: str) -> bool:
    # The SDK rejects an update nobody handles with this RuntimeError (workflow side).
    return cause.type == "RuntimeError" and f"'{update}' expected but not found" in cause.message


async def _read_start_error(start: WithStartWorkflowOperation) -> None:
    """The start operation keeps its outcome for ``workflow_handle()``; after a failed
    update-with-start it holds the start's error, which asyncio would log as "exception never
    retrieved" unless read. It is set by the time the call raised; the zero timeout only
    guards against an SDK that left it unset (nothing to read then)."""
    with contextlib.suppress(Exception, asyncio.CancelledError):
        async with asyncio.timeout(0):
            await start.workflow_handle()


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
        """The payment workflow's ``state`` query: fresh, never visibility. A PAID or CAPTURED
        payment that ``refund-<paymentId>`` refunded reads REFUNDED (with the refund's amount,
        time, reason and transition): one more query, for those two statuses only."""
        workflow_id = _key(payment_workflow_id, payment_id, "payment_id")
        state = await self._payment_state(workflow_id)
        if state is None:
            raise PaymentNotFound(f"no payment {payment_id}")
        return state

    async def _payment_state(self, workflow_id: str) -> PaymentState | None:
        """The payment's state, its refund by ``refund-<paymentId>`` merged in."""
        state = await self._query(workflow_id, PaymentState)
        if state is not None and state.status in REFUNDABLE:
            refund = await self._query(refund_workflow_id(state.payment_id), RefundState)
            if refund is not None:
                return with_refund(state, refund)
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
        idempotency_key: str | None = None,
    ) -> ActionResult | None:
        """Ops' answer to a NEEDS_ATTENTION payment (or, with ``refund``, to its refund):
        ``retry``, or ``close`` with the ``status`` they established by hand. A payment answers
        through its ``resolve_payment`` update: the ``resolved`` result, or ActionRefused with
        the workflow's reason (a close the provider's status contradicts is refused unless
        ``force``, which needs a ``note``: it is recorded). A refund (and a payment worker too
        old for the update) takes the ``resolve`` signal: None once it is sent."""
        command = self._resolve_command(action, status, note, resolved_by, force)
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
        wanted = None if status is None else _enum(PaymentStatus, status, "status")
        try:
            # A payment the Refund workflow refunded still says PAID / CAPTURED on its own
            # workflow: every page is checked against the refunds (one more search per page).
            found = await self._search_payments(query, limit, drop_refunded=wanted in REFUNDABLE)
            if wanted is PaymentStatus.REFUNDED:
                also = self.payments_query(
                    customer_id=customer_id, expiring_before=expiring_before, flow=flow
                )
                found = await self._refunded_by_refund_workflow(
                    found, limit, self.refunds_query(customer_id=customer_id), also
                )
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT:
                raise InvalidRequest(f"search refused: {err.message}") from None
            raise _unavailable(err) from None
        return found

    async def _search_payments(
        self, query: str, limit: int, *, drop_refunded: bool
    ) -> list[PaymentSummary]:
        out: list[PaymentSummary] = []
        page: list[PaymentSummary] = []
        size = min(max(limit, 100), 1000)
        async for execution in self._client.list_workflows(query, page_size=size):
            page.append(_summary(execution))
            if len(page) == size:
                out += await self._refunds_marked(page, drop_refunded)
                page = []
                if len(out) >= limit:
                    break
        if page:
            out += await self._refunds_marked(page, drop_refunded)
        return out[:limit]

    async def _refunds_marked(self, page: list[PaymentSummary], drop: bool) -> list[PaymentSummary]:
        candidates = refunds.payment_ids_of(page)
        if not candidates:
            return page
        query = refunds.refunded_among_query(candidates)
        refunded = {
            refunds.refunded_payment_id(e.id)
            async for e in self._client.list_workflows(query, page_size=len(candidates))
        }
        return refunds.marked(page, {p for p in refunded if p}, drop)

    async def _refunded_by_refund_workflow(
        self, found: list[PaymentSummary], limit: int, refunds_query: str, payments_query: str
    ) -> list[PaymentSummary]:
        """``found`` (payments whose own workflow says REFUNDED) and the payments a Refund
        workflow refunded that match ``payments_query`` (the same criteria but the status,
        which their own workflow still gives as PAID / CAPTURED), newest first."""
        known = {s.payment_id for s in found}
        refunded: list[str] = []
        async for e in self._client.list_workflows(refunds_query, page_size=limit):
            payment_id = refunds.refunded_payment_id(e.id)
            if payment_id and payment_id not in known:
                refunded.append(payment_id)
            if len(refunded) >= limit:
                break
        # Flow, amount and expiry come from the payment workflows themselves.
        out = list(found)
        for start in range(0, len(refunded), 100):
            ids = [payment_workflow_id(p) for p in refunded[start : start + 100]]
            async for e in self._client.list_workflows(refunds.with_ids(payments_query, ids)):
                out.append(_summary(e).model_copy(update={"status": PaymentStatus.REFUNDED.value}))
        out.sort(key=lambda s: s.started_at or _EPOCH, reverse=True)
        return out[:limit]

    @staticmethod
    def payments_query(
        *,
        status: PaymentStatus | str | None = None,
        customer_id: str | None = None,
        expiring_before: datetime | None = None,
        flow: PaymentFlow | str | None = None,
    ) -> str:
        """The visibility query ``find_payments`` runs (also usable in the Temporal UI); for
        REFUNDED it also runs ``refunds_query``. Every value is validated against its type
        first, so nothing can be injected."""
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

    @staticmethod
    def refunds_query(*, customer_id: str | None = None) -> str:
        """The visibility query of the Refund workflows that ended REFUNDED (``find_payments``
        with status REFUNDED adds their payments to the ``payments_query`` hits)."""
        if customer_id is not None:
            customer_id = _validated(_CustomerIdOnly, {"customer_id": customer_id}).customer_id
        return refunds.refunds_query(customer_id)

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
        returns the same refund (joins it while it runs); after one ended without the money back,
        asking again runs it again (the next ``attempt``, at most ``MAX_STEP_ATTEMPTS``, when
        the last request got a definite "no"; else the same), and that run looks the
        payment up first, so the money goes back at most once. With ``wait``, returns once the
        refund is decided (or its state so far after ``timeout``)."""
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

        async def again(previous: RefundState) -> bool:
            # Closed without the money back: FAILED, or a run that was terminated or timed out
            # (its last state still PENDING / NEEDS_ATTENTION). The new run looks first.
            return previous.status is not RefundStatus.REFUNDED

        await self._start_or_retry(
            RefundWorkflow.run,
            refund,
            workflow_id,
            RefundState,
            again,
            f"the refund of {payment_id}",
        )
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
        """Disable a card token: ``unbind-<token digest>``. Asking while it runs joins it; after
        it ended FAILED, or UNBOUND while Ayoconnect lists the token ACTIVE again (the card was
        registered again), asking again runs it again with ``attempt`` + 1; otherwise the same
        unbind answers."""
        unbind = _validated(UnbindInput, {"card_token": card_token, "customer_id": customer_id})
        workflow_id = unbind_workflow_id(unbind.card_token)

        async def again(previous: UnbindState) -> bool:
            if previous.status is UnbindStatus.FAILED:
                return True
            if previous.status is not UnbindStatus.UNBOUND:
                return False
            # The same card registered again has the same token: unbound again only if the
            # provider lists it ACTIVE, so asking twice still answers the same unbind.
            listed = await self.provider_cards(unbind.customer_id)
            return any(
                c.cardToken == unbind.card_token and c.status is CardStatus.ACTIVE
                for c in listed.cards
            )

        await self._start_or_retry(
            CardUnbindWorkflow.run,
            unbind,
            workflow_id,
            UnbindState,
            again,
            "the unbind of this card",
        )
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

    # --- the provider's own view (read-only look-up workflows) ---------------------------

    async def provider_status(
        self, payment_id: str, *, timeout: float | None = None
    ) -> ProviderStatus:
        """Kartu's state of the payment beside Ayoconnect's Get Payment Status for it (by
        invoice number, or by the charge's transactionId while Kartu has no invoice yet). The
        provider not knowing the payment is an answer (``outcome`` ``unknown``), not an error."""
        state = await self.payment_status(payment_id)
        step = Step.PAY if state.flow is PaymentFlow.DIRECT else Step.AUTHORIZE
        query = ProviderPaymentQuery(
            payment_id=payment_id,
            customer_id=state.customer_id,
            invoice_number=state.invoice_number,
            original_transaction_id=(
                None if state.invoice_number else transaction_id(payment_id, step)
            ),
        )
        view = await self._lookup(
            ProviderPaymentLookupWorkflow.run, query, timeout, f"payment {payment_id}"
        )
        return ProviderStatus(kartu=state, provider=view)

    async def provider_cards(
        self, customer_id: str, *, timeout: float | None = None
    ) -> ProviderCardsView:
        """Ayoconnect's Get Cards List for the customer, as the provider answers it."""
        checked = _validated(_CustomerIdOnly, {"customer_id": customer_id}).customer_id
        query = ProviderCardsQuery(customer_id=checked)
        return await self._lookup(
            ProviderCardsLookupWorkflow.run, query, timeout, f"cards of {checked}"
        )

    async def customer_cards(
        self, customer_id: str, *, timeout: float | None = None
    ) -> CustomerCards:
        """The customer's cards as Ayoconnect lists them (cards bound or disabled elsewhere
        included), each with Kartu's registration id where Kartu registered it (from
        ``list_cards``); cards Kartu registered that the provider does not list come last,
        with no provider status."""
        provider, registered = await asyncio.gather(
            self.provider_cards(customer_id, timeout=timeout), self.list_cards(customer_id)
        )
        return CustomerCards.merged(provider, registered)

    async def _lookup(self, run: Any, query: BaseModel, timeout: float | None, what: str) -> Any:
        workflow_id = f"{LOOKUP_PREFIX}{uuid.uuid4().hex}"
        wait = self.outcome_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(wait):
                return await self._client.execute_workflow(
                    run,
                    query,
                    id=workflow_id,
                    task_queue=self.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    # Nobody waits longer: a look-up left behind must not linger.
                    execution_timeout=LOOKUP_EXECUTION_TIMEOUT,
                )
        except TimeoutError:
            raise KartuTimeout(
                f"the provider's answer on {what} did not come within {wait:g} s ({workflow_id})"
            ) from None
        except WorkflowFailureError as err:
            raise KartuError(f"look-up of {what} failed: {err.cause or err}") from None
        except RPCError as err:
            raise _unavailable(err) from None

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
            closed_as = await self._closed_status(handle)
            agrees = closed_as is not None and callback_agrees(callback, closed_as)
            why = f"workflow not running: {err.message}"
            if closed_as is not None:
                why = f"workflow closed as {closed_as}"
            return CallbackDelivery(
                delivered=False,
                workflow_id=route.workflow_id,
                signal=route.signal,
                reason=why,
                agrees_with_closed=agrees,
            )
        return CallbackDelivery(delivered=True, workflow_id=route.workflow_id, signal=route.signal)

    async def _closed_status(self, handle: WorkflowHandle) -> str | None:
        """The status a closed workflow ended in (its search attribute: no replay), if any."""
        try:
            described = await handle.describe()
        except RPCError as err:
            if _not_found(err):
                return None
            raise _unavailable(err) from None
        if described.status is WorkflowExecutionStatus.RUNNING:
            return None
        return described.typed_search_attributes.get(sa.PAYMENT_STATUS)

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
            await _read_start_error(start)
            raise _unavailable(err) from None
        except (WorkflowAlreadyStartedError, WorkflowUpdateRPCTimeoutOrCancelledError):
            await _read_start_error(start)
            raise

    async def _start_or_retry(
        self,
        run: Any,
        arg: RefundInput | UnbindInput,
        workflow_id: str,
        result_type: type[RefundState] | type[UnbindState],
        retry: Callable[[Any], Awaitable[bool]],
        what: str,
    ) -> None:
        """Start ``workflow_id``, or join its running execution. If its latest run has closed
        and ``retry(its state)`` says so, start a new run with ``attempt`` + 1: reuse policy
        ALLOW_DUPLICATE for that start only, conflict policy USE_EXISTING so that two callers
        asking at once join one run."""
        if await self._start(run, arg, workflow_id, WorkflowIDReusePolicy.REJECT_DUPLICATE):
            return
        # Closed: a closed run's result is in its history (no wait, no replay).
        previous = await self._wait_result(workflow_id, result_type, True, self.outcome_timeout)
        if previous is None or not await retry(previous):
            return
        # A new transactionId only when the last one was spent on a definite "no" (the
        # provider replays that answer); one that got no answer, or never sent its request, is
        # asked again under the same id, so the refund of a payment stays one request.
        spent = getattr(previous, "step_spent", True)
        attempt = previous.attempt + 1 if spent else previous.attempt
        if attempt > MAX_STEP_ATTEMPTS:
            raise ActionRefused(
                f"{what} was tried {MAX_STEP_ATTEMPTS} times and last ended "
                f"{previous.status.value}: it cannot be asked again; see {workflow_id}"
            )
        again = arg.model_copy(update={"attempt": attempt})
        await self._start(run, again, workflow_id, WorkflowIDReusePolicy.ALLOW_DUPLICATE)

    async def _start(
        self, run: Any, arg: BaseModel, workflow_id: str, reuse: WorkflowIDReusePolicy
    ) -> bool:
        """Start (or join the running) ``workflow_id``; False if refused because it closed."""
        try:
            await self._client.start_workflow(
                run,
                arg,
                id=workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=reuse,
            )
        except WorkflowAlreadyStartedError:
            return False
        except RPCError as err:
            raise _unavailable(err) from None
        return True

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
            if cause is not None and _unknown_update(cause, update):
                raise _NoSuchUpdate(update) from None
            reason = cause.message if cause else f"{verb} failed"
            state = await self._payment_state(workflow_id)
            raise ActionRefused(reason, status=state.status if state else None) from None
        except RPCError as err:
            if not _not_found(err):
                raise _unavailable(err) from None
            state = await self._payment_state(workflow_id)
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
            state = await self._payment_state(workflow_id)
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
