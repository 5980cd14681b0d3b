"""One activity per Ayoconnect operation, over ONE shared ``AyoconnectClient`` per worker.

Money-moving activities (create_charge, void, refund) never send blindly twice: any attempt
after the first (the previous one may have been ambiguous, timed out or died with its worker)
first looks the payment up by ``originalTransactionId`` / ``invoiceNumber`` and returns what it
finds if the operation already took effect; only otherwise does it resend, with the same
transactionId.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ayoconnect.errors import AyoconnectError, FinalError, NotFoundError
from ayoconnect.models import (
    CardsListResponse,
    CreateChargeResponse,
    GenerateWebviewResponse,
    Operation,
    PaymentActionResponse,
    PaymentStatus,
    PaymentStatusResponse,
    UnbindResponse,
)
from telemetry.metrics import ayoconnect_call

from .calls import (
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
from .errors import invalid_request, to_application_error

if TYPE_CHECKING:
    # Not at run time: ``workflows`` imports this module for the activities' names, and every
    # client (the kartu CLI, the gateway) would load httpx (and, through it, click and rich).
    import httpx

    from ayoconnect.client import AyoconnectClient

T = TypeVar("T")

HEARTBEAT_EVERY = timedelta(seconds=1)
# A charge found by look-up in these states lacks what the workflow needs (3DS URL, decline code).
_STORED_ANSWER_NEEDED = frozenset({PaymentStatus.AUTHENTICATION_IN_PROGRESS, PaymentStatus.FAILED})
MERCHANT_TIMEOUT_SECONDS = 10.0
MERCHANT_CONNECT_SECONDS = 5.0


class AyoconnectActivities:
    """Register the bound methods of one instance: ``worker.build_worker`` does."""

    def __init__(
        self,
        client: AyoconnectClient,
        *,
        merchant_http: httpx.AsyncClient | None = None,
    ) -> None:
        self.client = client
        self._merchant_http = merchant_http

    def all(self) -> list[Callable]:
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

    async def aclose(self) -> None:
        if self._merchant_http is not None:
            await self._merchant_http.aclose()

    # --- reads and non-money calls ----------------------------------------------------------

    @activity.defn(name="generate_webview")
    async def generate_webview(self, call: WebviewCall) -> GenerateWebviewResponse:
        webview = self.client.generate_webview(call.request, correlation_id=call.correlation_id)
        return await _mapped(_heartbeating(webview))

    @activity.defn(name="payment_status")
    async def payment_status(self, call: StatusCall) -> PaymentStatusResponse:
        return await _mapped(_heartbeating(self._status(call)))

    @activity.defn(name="list_cards")
    async def list_cards(self, call: CardsListCall) -> CardsListResponse:
        cards = self.client.list_cards(
            transaction_id=call.transaction_id,
            customer_id=call.customer_id,
            correlation_id=call.correlation_id,
        )
        return await _mapped(_heartbeating(cards))

    @activity.defn(name="unbind")
    async def unbind(self, call: UnbindCall) -> UnbindResponse:
        # Not money-moving: a resend after an ambiguous failure is harmless.
        unbind = self.client.unbind(call.request, correlation_id=call.correlation_id)
        return await _mapped(_heartbeating(unbind))

    # --- money-moving calls -----------------------------------------------------------------

    @activity.defn(name="create_charge")
    async def create_charge(self, call: ChargeCall) -> CreateChargeResponse:
        operation = call.request.operation.value.lower()  # pay, authorize, capture
        return await _mapped(_heartbeating(self._create_charge(call)), operation)

    async def _create_charge(self, call: ChargeCall) -> CreateChargeResponse:
        req = call.request
        if _is_retry():
            if req.operation is Operation.CAPTURE:
                lookup = self._lookup(call, invoice_number=req.invoiceNumber)
            else:
                lookup = self._lookup(call, original_transaction_id=req.transactionId)
            found = await lookup
            if found is not None and _charge_took_effect(req.operation, found.payment.status):
                response = _charge_response(found)
                if found.payment.status not in _STORED_ANSWER_NEEDED:
                    return response
                # The look-up has no 3DS URL and no decline code; the same transactionId and
                # body get Ayoconnect's stored first answer, which has them (a decline comes
                # back as the same DeclinedError). Anything else: go on with the look-up.
                try:
                    return await self.client.create_charge(req, correlation_id=call.correlation_id)
                except FinalError:
                    raise
                except AyoconnectError:
                    return response
        return await self.client.create_charge(req, correlation_id=call.correlation_id)

    @activity.defn(name="void")
    async def void(self, call: VoidCall) -> PaymentActionResponse:
        return await _mapped(_heartbeating(self._void(call)))

    async def _void(self, call: VoidCall) -> PaymentActionResponse:
        if _is_retry():
            found = await self._lookup(call, invoice_number=call.request.invoiceNumber)
            if found is not None and found.payment.status is PaymentStatus.VOIDED:
                return _action_response(found)
        return await self.client.void(call.request, correlation_id=call.correlation_id)

    @activity.defn(name="refund")
    async def refund(self, call: RefundCall) -> PaymentActionResponse:
        return await _mapped(_heartbeating(self._refund(call)))

    async def _refund(self, call: RefundCall) -> PaymentActionResponse:
        if _is_retry():
            found = await self._lookup(call, invoice_number=call.request.invoiceNumber)
            if found is not None and found.payment.status is PaymentStatus.REFUNDED:
                return _action_response(found)
        return await self.client.refund(call.request, correlation_id=call.correlation_id)

    # --- merchant confirmation --------------------------------------------------------------

    @activity.defn(name="confirm_with_merchant")
    async def confirm_with_merchant(
        self, confirmation: MerchantConfirmation
    ) -> MerchantConfirmationResult:
        import httpx  # the worker has it loaded already (its AyoconnectClient): no cost here

        if self._merchant_http is None:
            timeout = httpx.Timeout(MERCHANT_TIMEOUT_SECONDS, connect=MERCHANT_CONNECT_SECONDS)
            self._merchant_http = httpx.AsyncClient(timeout=timeout)
        body = confirmation.model_dump(mode="json", exclude={"url"})
        try:
            response = await _heartbeating(self._merchant_http.post(confirmation.url, json=body))
        except httpx.HTTPError as exc:
            raise ApplicationError(
                f"merchant confirmation failed: {type(exc).__name__}", type="MerchantUnreachable"
            ) from None
        status = response.status_code
        if response.is_success:
            return MerchantConfirmationResult(http_status=status)
        if status in (408, 425, 429) or status >= 500:
            raise ApplicationError(
                f"merchant confirmation answered HTTP {status}", type="MerchantUnavailable"
            )
        raise ApplicationError(
            f"merchant refused the payment: HTTP {status}",
            {"http_status": status},
            type="MerchantRejectedError",
            non_retryable=True,
        )

    # --- helpers ----------------------------------------------------------------------------

    async def _status(self, call: StatusCall) -> PaymentStatusResponse:
        return await self.client.payment_status(
            transaction_id=call.transaction_id,
            customer_id=call.customer_id,
            correlation_id=call.correlation_id,
            invoice_number=call.invoice_number,
            original_transaction_id=call.original_transaction_id,
        )

    async def _lookup(
        self,
        call: ChargeCall | VoidCall | RefundCall,
        *,
        invoice_number: str | None = None,
        original_transaction_id: str | None = None,
    ) -> PaymentStatusResponse | None:
        """The payment as Ayoconnect has it, or None if it does not know it."""
        try:
            return await self.client.payment_status(
                transaction_id=call.lookup_transaction_id,
                customer_id=call.request.customerId,
                correlation_id=call.correlation_id,
                invoice_number=invoice_number,
                original_transaction_id=original_transaction_id,
            )
        except NotFoundError:
            return None


def _is_retry() -> bool:
    return activity.info().attempt > 1


def _charge_took_effect(operation: Operation, status: PaymentStatus) -> bool:
    if operation is Operation.CAPTURE:
        return status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED)
    return True  # any PAY/AUTHORIZE Ayoconnect knows by this transactionId was sent before


def _charge_response(found: PaymentStatusResponse) -> CreateChargeResponse:
    p = found.payment
    return CreateChargeResponse(
        code=found.code,
        responseCode=found.responseCode,
        message=found.message,
        responseTime=found.responseTime,
        transactionId=p.originalTransactionId,
        invoiceNumber=p.invoiceNumber,
        operation=p.operation,
        status=p.status,
        # What the status says moved (``PaymentCore._apply_wire_status`` reads it so).
        amount=p.moved_amount,
        authorizationExpiresAt=p.authorizationExpiresAt,
    )


def _action_response(found: PaymentStatusResponse) -> PaymentActionResponse:
    return PaymentActionResponse(
        code=found.code,
        responseCode=found.responseCode,
        message=found.message,
        responseTime=found.responseTime,
        invoiceNumber=found.payment.invoiceNumber,
        status=found.payment.status,
    )


async def _mapped(call: Awaitable[T], operation: str | None = None) -> T:
    """Await ``call`` and turn client errors into the ApplicationError Temporal retries on.
    Counted and timed as ``operation`` (default: the activity's type), see telemetry.metrics."""
    try:
        with ayoconnect_call(operation):
            return await call
    except AyoconnectError as err:
        raise to_application_error(err) from None
    except ValueError as err:
        raise invalid_request(err) from None


async def _heartbeating(call: Awaitable[T]) -> T:
    """Heartbeat while a possibly long call (token fetch, look-up, send) runs: every provider
    call's activity has a heartbeat timeout (``policies.HEARTBEAT``), so a dead worker's call is
    retried elsewhere within seconds; a call answered within a second sends no heartbeat."""
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY.total_seconds())
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
