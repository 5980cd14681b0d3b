"""A stateful fake Ayoconnect at the activity boundary: the same activity names and types as
``activities.AyoconnectActivities``, a small ledger of payments, scripted failures, and a record
of every call. Times come from the activity's scheduled time (the test server's skipped clock).

Like Ayoconnect (and ``sandbox/idempotency.py``), every POST is idempotent by ``transactionId``:
the same body gets the stored first answer (refusals included), another body gets a 409
``ConflictError``. Scripted faults happen "on the network", before the request arrives, so they
are not stored; ``lose_answer`` scripts a fault after the request took effect. Every body sent
under a transactionId is also compared with the first one sent, arrived or not: ``body_drift``
lists the transactionIds reused with another body (the conftest fails a test that has any).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities import (
    CardsListCall,
    ChargeCall,
    MerchantConfirmation,
    MerchantConfirmationResult,
    RefundCall,
    StatusCall,
    UnbindCall,
    VoidCall,
    WebviewCall,
)
from ayoconnect.codes import GatewayCode, ServiceCode, response_code
from ayoconnect.models import (
    Card,
    CardsListResponse,
    CardStatus,
    CreateChargeResponse,
    GenerateWebviewResponse,
    Operation,
    PaymentActionResponse,
    PaymentCallback,
    PaymentDetail,
    PaymentStatus,
    PaymentStatusResponse,
    UnbindResponse,
    Webview,
)

CARD_TOKEN = "tok" + "A" * 37
JAKARTA = timezone(timedelta(hours=7))
OTHER_TOKEN = "tok" + "B" * 37


def final_error(
    error_type: str = "DeclinedError",
    gateway: GatewayCode | None = GatewayCode.DECLINED,
    service: ServiceCode = ServiceCode.CREATE_CHARGE,
    http: int = 400,
) -> ApplicationError:
    code = response_code(http, service, gateway) if gateway else None
    return ApplicationError(
        f"{error_type} from fake",
        {
            "response_code": code,
            "gateway_code": gateway.name if gateway else None,
            "http_status": http,
            "operation": "fake",
            "message": f"{error_type} from fake",
        },
        type=error_type,
        non_retryable=True,
    )


def transient_error() -> ApplicationError:
    return ApplicationError("TransientError from fake", type="TransientError")


@dataclass
class FakePayment:
    invoice: str
    transaction_id: str
    customer_id: str
    operation: Operation
    status: PaymentStatus
    amount: Decimal
    authorized: Decimal | None = None
    captured: Decimal | None = None
    refunded: Decimal | None = None
    expires_at: datetime | None = None
    # A 3DS challenge the customer never finishes fails at the provider when its session ends.
    challenge_ends_at: datetime | None = None


@dataclass
class FakeAyoconnect:
    calls: list[tuple[str, Any]] = field(default_factory=list)
    payments: dict[str, FakePayment] = field(default_factory=dict)
    # Scripted outcomes, consumed in order: key "<activity>" or "<activity>:<transactionId>".
    scripts: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    challenge: set[str] = field(default_factory=set)  # charge transactionIds that go 3DS
    callback_first: set[str] = field(default_factory=set)  # ... whose callback beats the answer
    cards: dict[str, list[Card]] = field(default_factory=dict)
    auth_window: timedelta | None = timedelta(days=7)
    webview_session: timedelta = timedelta(seconds=300)
    # How long the provider keeps an unfinished 3DS challenge open (None: forever).
    challenge_session: timedelta | None = timedelta(seconds=300)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)  # hold an activity open
    # Faults raised after the request took effect (the answer is lost on the way back).
    lost: dict[str, list[BaseException]] = field(default_factory=lambda: defaultdict(list))
    # Ayoconnect's idempotency store: transactionId -> (body, first answer or refusal).
    stored: dict[str, tuple[str, Any]] = field(default_factory=dict)
    sent_bodies: dict[str, str] = field(default_factory=dict)
    body_drift: list[str] = field(default_factory=list)
    # Send datetimes without an offset (Jakarta wall-clock time), as a sloppy provider might.
    naive_times: bool = False
    client: Client | None = None
    # Activities (by name) in an outage: every call fails before it reaches the provider.
    down: set[str] = field(default_factory=set)

    def all(self) -> list:
        return [
            self.generate_webview,
            self.create_charge,
            self.payment_status,
            self.list_cards,
            self.unbind,
            self.void,
            self.refund,
            self.confirm_with_merchant,
        ]

    # --- test helpers -----------------------------------------------------------------------

    def script(self, key: str, *outcomes: Any) -> None:
        """Outcomes for the next calls of ``key``: an exception is raised before the request
        arrives; a callable gets the call and, if it returns something, that is the answer."""
        self.scripts[key].extend(outcomes)

    def lose_answer(self, key: str, *errors: BaseException) -> None:
        """The next calls of ``key`` take effect, then fail with ``errors`` (answer lost)."""
        self.lost[key].extend(errors)

    def commit_late(self, call: ChargeCall) -> CreateChargeResponse:
        """A charge whose request was lost on the way takes effect now (stored as Ayoconnect
        would store it); returns its answer."""
        answer = self.apply_charge(call)
        self.stored[call.request.transactionId] = (_body(call.request), answer)
        return answer

    def refuse(self, call: Any, error: ApplicationError) -> None:
        """Ayoconnect answers ``error`` and stores it: the same request gets it forever."""
        self.stored[call.request.transactionId] = (_body(call.request), error)
        raise error

    def calls_of(self, name: str, key: str | None = None) -> list[Any]:
        return [arg for n, arg in self.calls if n == name and (key is None or key in _tid_of(arg))]

    def call_names(self, key: str, *names: str) -> list[str]:
        """The calls named ``names`` for ``key``, in the order they came."""
        return [n for n, arg in self.calls if n in names and key in _tid_of(arg)]

    def payment_by_tid(self, tid: str) -> FakePayment:
        return next(p for p in self.payments.values() if p.transaction_id == tid)

    def complete_challenge(self, tid: str, ok: bool = True) -> FakePayment:
        """The customer passed (or failed) 3DS: the ledger moves, as Ayoconnect's would."""
        p = self.payment_by_tid(tid)
        if ok:
            authorize = p.operation is Operation.AUTHORIZE
            p.status = PaymentStatus.AUTHORIZED if authorize else PaymentStatus.SUCCESS
        else:
            p.status = PaymentStatus.FAILED
        return p

    @staticmethod
    def callback_for(
        p: FakePayment, gateway: GatewayCode = GatewayCode.APPROVED
    ) -> PaymentCallback:
        http = 200 if gateway is GatewayCode.APPROVED else 400
        return PaymentCallback(
            type="PAYMENT",
            transactionId=p.transaction_id,
            invoiceNumber=p.invoice,
            operation=p.operation,
            status=p.status,
            amount=p.amount,
            responseCode=response_code(http, ServiceCode.CREATE_CHARGE, gateway),
        )

    # --- mechanics --------------------------------------------------------------------------

    async def _enter(self, name: str, arg: Any, tid: str) -> Any:
        self.calls.append((name, arg))
        request = getattr(arg, "request", None)
        if request is not None:
            body = _body(request)
            first = self.sent_bodies.setdefault(tid, body)
            if first != body and tid not in self.body_drift:
                self.body_drift.append(tid)
        if name in self.down:
            raise transient_error()
        for key in (f"{name}:{tid}", name):
            gate = self.gates.get(key)
            if gate is not None:
                await gate.wait()
            queue = self.scripts.get(key)
            if queue:
                outcome = queue.pop(0)
                if isinstance(outcome, BaseException):
                    raise outcome
                if callable(outcome):
                    answer = outcome(arg)
                    if isinstance(answer, Awaitable):
                        answer = await answer
                    if answer is not None:
                        return answer
        return None

    async def _idempotent(self, name: str, request: Any, apply: Callable[[], Any]) -> Any:
        """Ayoconnect's rule: the stored first answer for the same body, 409 for another."""
        tid = request.transactionId
        body = _body(request)
        if tid in self.stored:
            first_body, answer = self.stored[tid]
            if first_body != body:
                raise final_error("ConflictError", GatewayCode.UNSPECIFIED_FAILURE, http=409)
        else:
            try:
                answer = apply()
            except ApplicationError as refused:
                answer = refused
            self.stored[tid] = (body, answer)
        for key in (f"{name}:{tid}", name):
            queue = self.lost.get(key)
            if queue:
                raise queue.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    @staticmethod
    def _now() -> datetime:
        return activity.info().current_attempt_scheduled_time

    def _envelope(self, service: ServiceCode, http: int = 200) -> dict[str, Any]:
        return {
            "code": http,
            "responseCode": response_code(http, service, GatewayCode.APPROVED),
            "message": "ok",
        }

    def _find(self, invoice: str | None, original: str | None) -> FakePayment:
        for p in self.payments.values():
            if p.invoice == invoice or (original is not None and p.transaction_id == original):
                return p
        raise final_error("NotFoundError", GatewayCode.UNSPECIFIED_FAILURE, http=404)

    # --- activities -------------------------------------------------------------------------

    @activity.defn(name="generate_webview")
    async def generate_webview(self, call: WebviewCall) -> GenerateWebviewResponse:
        await self._enter("generate_webview", call, call.request.transactionId)
        return await self._idempotent(
            "generate_webview",
            call.request,
            lambda: GenerateWebviewResponse(
                **self._envelope(ServiceCode.GENERATE_WEBVIEW, 201),
                webview=Webview(
                    url=f"https://webview.test/{call.request.transactionId}",
                    expiresAt=self._time(self._now() + self.webview_session),
                ),
                referenceNumber=f"REF-{call.request.transactionId}",
            ),
        )

    @activity.defn(name="create_charge")
    async def create_charge(self, call: ChargeCall) -> CreateChargeResponse:
        req = call.request
        answer = await self._enter("create_charge", call, req.transactionId)
        if answer is not None:
            return answer
        answer = await self._idempotent("create_charge", req, lambda: self.apply_charge(call))
        if req.transactionId in self.callback_first:
            p = self.payment_by_tid(req.transactionId)
            p.status = PaymentStatus.AUTHORIZED if p.authorized else PaymentStatus.SUCCESS
            assert self.client is not None
            workflow_id = "payment-" + req.transactionId.rsplit("-", 1)[0]
            await self.client.get_workflow_handle(workflow_id).signal(
                "payment_callback", self.callback_for(p)
            )
        return answer

    def apply_charge(self, call: ChargeCall) -> CreateChargeResponse:
        """The charge as Ayoconnect applies it (also usable to commit a charge late)."""
        req = call.request
        if req.operation is Operation.CAPTURE:
            p = self._find(req.invoiceNumber, None)
            assert req.amount is not None and p.authorized is not None
            if p.status is not PaymentStatus.AUTHORIZED or req.amount > p.authorized * Decimal(
                "1.2"
            ):
                raise final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED)
            p.status, p.captured = PaymentStatus.CAPTURED, req.amount
            return self._charge_answer(p, amount=req.amount)
        assert req.order is not None
        p = FakePayment(
            invoice=f"INV-{req.transactionId}",
            transaction_id=req.transactionId,
            customer_id=req.customerId,
            operation=req.operation,
            status=PaymentStatus.SUCCESS,
            amount=req.order.amount,
        )
        if req.operation is Operation.AUTHORIZE:
            p.status, p.authorized = PaymentStatus.AUTHORIZED, req.order.amount
            p.expires_at = self._now() + self.auth_window if self.auth_window else None
        self.payments[p.invoice] = p
        if req.transactionId in self.callback_first:
            return self._charge_answer(p, status=PaymentStatus.AUTHENTICATION_IN_PROGRESS)
        if req.transactionId in self.challenge:
            final = p.status
            p.status = PaymentStatus.AUTHENTICATION_IN_PROGRESS
            answer = self._charge_answer(p, url=f"https://3ds.test/{req.transactionId}")
            p.expires_at = p.expires_at if final is PaymentStatus.AUTHORIZED else None
            if self.challenge_session is not None:
                p.challenge_ends_at = self._now() + self.challenge_session
            return answer
        return self._charge_answer(p)

    def _charge_answer(
        self,
        p: FakePayment,
        *,
        status: PaymentStatus | None = None,
        url: str | None = None,
        amount: Decimal | None = None,
    ) -> CreateChargeResponse:
        return CreateChargeResponse(
            **self._envelope(ServiceCode.CREATE_CHARGE, 201),
            invoiceNumber=p.invoice,
            operation=p.operation,
            status=status or p.status,
            authenticationUrl=url,
            amount=amount or p.amount,
            authorizationExpiresAt=self._time(
                p.expires_at if p.status is PaymentStatus.AUTHORIZED else None
            ),
        )

    def _time(self, value: datetime | None) -> datetime | None:
        if value is None or not self.naive_times:
            return value
        return value.astimezone(JAKARTA).replace(tzinfo=None)

    @activity.defn(name="payment_status")
    async def payment_status(self, call: StatusCall) -> PaymentStatusResponse:
        answer = await self._enter("payment_status", call, call.transaction_id)
        if answer is not None:
            return answer
        p = self._find(call.invoice_number, call.original_transaction_id)
        ends = p.challenge_ends_at
        if p.status is PaymentStatus.AUTHENTICATION_IN_PROGRESS and ends and self._now() >= ends:
            p.status = PaymentStatus.FAILED
        return PaymentStatusResponse(
            **self._envelope(ServiceCode.PAYMENT_STATUS),
            payment=PaymentDetail(
                invoiceNumber=p.invoice,
                originalTransactionId=p.transaction_id,
                operation=p.operation,
                status=p.status,
                amount=p.amount,
                authorizedAmount=p.authorized,
                capturedAmount=p.captured,
                refundedAmount=p.refunded,
                authorizationExpiresAt=self._time(p.expires_at),
            ),
        )

    @activity.defn(name="void")
    async def void(self, call: VoidCall) -> PaymentActionResponse:
        answer = await self._enter("void", call, call.request.transactionId)
        if answer is not None:
            return answer
        return await self._idempotent("void", call.request, lambda: self._void(call))

    def _void(self, call: VoidCall) -> PaymentActionResponse:
        p = self._find(call.request.invoiceNumber, None)
        if p.status is not PaymentStatus.AUTHORIZED:
            raise final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED, ServiceCode.VOID)
        p.status = PaymentStatus.VOIDED
        return PaymentActionResponse(
            **self._envelope(ServiceCode.VOID), invoiceNumber=p.invoice, status=p.status
        )

    @activity.defn(name="refund")
    async def refund(self, call: RefundCall) -> PaymentActionResponse:
        answer = await self._enter("refund", call, call.request.transactionId)
        if answer is not None:
            return answer
        return await self._idempotent("refund", call.request, lambda: self._refund(call))

    def _refund(self, call: RefundCall) -> PaymentActionResponse:
        p = self._find(call.request.invoiceNumber, None)
        if p.status not in (PaymentStatus.SUCCESS, PaymentStatus.CAPTURED):
            raise final_error("RuleViolationError", GatewayCode.NOT_SUPPORTED, ServiceCode.REFUND)
        p.status, p.refunded = PaymentStatus.REFUNDED, call.request.amount
        return PaymentActionResponse(
            **self._envelope(ServiceCode.REFUND), invoiceNumber=p.invoice, status=p.status
        )

    @activity.defn(name="list_cards")
    async def list_cards(self, call: CardsListCall) -> CardsListResponse:
        await self._enter("list_cards", call, call.transaction_id)
        cards = self.cards.get(f"{call.customer_id}:{call.transaction_id.rsplit('-', 1)[1]}")
        if cards is None:
            cards = self.cards.get(call.customer_id, [])
        return CardsListResponse(
            **self._envelope(ServiceCode.CARDS_LIST), customerId=call.customer_id, cards=cards
        )

    @activity.defn(name="unbind")
    async def unbind(self, call: UnbindCall) -> UnbindResponse:
        await self._enter("unbind", call, call.request.transactionId)
        return UnbindResponse(
            **self._envelope(ServiceCode.UNBIND),
            cardToken=call.request.cardToken,
            status=CardStatus.DISABLED,
        )

    @activity.defn(name="confirm_with_merchant")
    async def confirm_with_merchant(
        self, confirmation: MerchantConfirmation
    ) -> MerchantConfirmationResult:
        await self._enter("confirm_with_merchant", confirmation, confirmation.payment_id)
        return MerchantConfirmationResult(http_status=200)


def card(token: str = CARD_TOKEN, status: CardStatus = CardStatus.ACTIVE) -> Card:
    return Card(
        cardToken=token,
        maskedCard="411111******1111",
        brand="VISA",
        expiryMonth="12",
        expiryYear="2030",
        status=status,
    )


def _body(request: Any) -> str:
    return json.dumps(request.model_dump(mode="json", exclude_none=True), sort_keys=True)


def _tid_of(arg: Any) -> str:
    request = getattr(arg, "request", None)
    if request is not None:
        return request.transactionId
    return getattr(arg, "transaction_id", None) or getattr(arg, "payment_id", "")
