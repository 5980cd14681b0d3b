"""The workflow's side of the activities: ids, correlation id, options and error reading.

A ``Provider`` belongs to one workflow run. It hands out the flow's transactionIds (fixed steps
and the ``s<n>`` / ``l<n>`` look-up counters, deterministic on replay), calls activities with the
policies of ``policies.py``, and turns activity failures into ``ProviderError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from . import ids, policies

with workflow.unsafe.imports_passed_through():
    from activities import (
        AyoconnectActivities,
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
    from ayoconnect.models import (
        CardsListResponse,
        CreateChargeRequest,
        CreateChargeResponse,
        GenerateWebviewRequest,
        GenerateWebviewResponse,
        PaymentActionResponse,
        PaymentDetail,
        RefundRequest,
        UnbindRequest,
        UnbindResponse,
        VoidRequest,
    )

T = TypeVar("T")

NOT_FOUND = "NotFoundError"


@dataclass(frozen=True)
class ProviderFailure:
    """Why a call did not succeed. ``final``: Ayoconnect answered no. Otherwise the call could
    not get an answer (retries or time exhausted): the truth must be looked up."""

    error_type: str
    message: str
    final: bool
    response_code: str | None = None
    gateway_code: str | None = None

    @property
    def declined(self) -> bool:
        return self.error_type == "DeclinedError"

    @property
    def not_found(self) -> bool:
        """Ayoconnect answered that it has no such payment (or customer): a definite answer."""
        return self.error_type == NOT_FOUND

    def describe(self) -> str:
        code = f" ({self.gateway_code or self.response_code})" if self._has_code else ""
        return f"{self.error_type}{code}: {self.message}"

    @property
    def _has_code(self) -> bool:
        return bool(self.gateway_code or self.response_code)


class ProviderError(Exception):
    def __init__(self, failure: ProviderFailure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def read_failure(err: ActivityError) -> ProviderFailure:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        details: dict[str, Any] = {}
        if cause.details and isinstance(cause.details[0], dict):
            details = cause.details[0]
        # A 2xx that could not be read is no "no": the provider probably acted, so the
        # outcome is looked up, never taken as a definite refusal.
        answered_2xx = isinstance(details.get("http_status"), int) and (
            200 <= details["http_status"] < 300
        )
        return ProviderFailure(
            error_type=cause.type or "ApplicationError",
            message=details.get("message") or cause.message,
            final=not answered_2xx
            and (cause.non_retryable or cause.type in policies.FINAL_ERROR_TYPES),
            response_code=details.get("response_code"),
            gateway_code=details.get("gateway_code"),
        )
    # Timeouts, cancellation, retries exhausted by time: no answer from Ayoconnect.
    return ProviderFailure(
        error_type=type(cause).__name__ if cause else "ActivityError",
        message=str(cause or err),
        final=False,
    )


class Provider:
    def __init__(
        self,
        key: str,
        customer_id: str | None,
        correlation_id: str,
        status_step: Callable[[int], str] = ids.status_step,
        max_lookups: int = ids.MAX_LOOKUPS,
    ) -> None:
        self.key = key
        self.customer_id = customer_id
        self.correlation_id = correlation_id
        # How the n-th look-up's transactionId step is named (one series per workflow).
        self._status_step = status_step
        self._max_lookups = max_lookups
        self._status_count = 0
        self._list_count = 0
        # Set when a cancellation arrived during a shielded money call: the workflow raises
        # CancelledError itself once it has recorded the call's result.
        self.cancel_requested = False

    def tid(self, step: str) -> str:
        return ids.transaction_id(self.key, step)

    def lookups_left(self) -> int:
        """Status look-ups this workflow may still make: each has its own transactionId."""
        return self._max_lookups - self._status_count

    def next_status_tid(self) -> str:
        self._status_count += 1
        return self.tid(self._status_step(self._status_count))

    def next_list_tid(self) -> str:
        self._list_count += 1
        return self.tid(ids.list_step(self._list_count))

    # --- calls ------------------------------------------------------------------------------

    async def generate_webview(self, request: GenerateWebviewRequest) -> GenerateWebviewResponse:
        call = WebviewCall(request=request, correlation_id=self.correlation_id)
        return await self._run(
            AyoconnectActivities.generate_webview, call, policies.WEBVIEW, "generate_webview"
        )

    async def charge(
        self, request: CreateChargeRequest, options: policies.ActivityOptions = policies.MONEY
    ) -> CreateChargeResponse:
        call = ChargeCall(
            request=request,
            correlation_id=self.correlation_id,
            lookup_transaction_id=self.next_status_tid(),
        )
        return await self._shielded(
            self._run(AyoconnectActivities.create_charge, call, options, request.operation.value)
        )

    async def status(
        self, *, invoice_number: str | None = None, original_transaction_id: str | None = None
    ) -> PaymentDetail:
        call = StatusCall(
            transaction_id=self.next_status_tid(),
            customer_id=self._customer(),
            correlation_id=self.correlation_id,
            invoice_number=invoice_number,
            original_transaction_id=original_transaction_id,
        )
        response = await self._run(
            AyoconnectActivities.payment_status, call, policies.READ, "payment_status"
        )
        return response.payment

    async def void(
        self,
        invoice_number: str,
        reason: str,
        step: str,
        options: policies.ActivityOptions = policies.MONEY,
    ) -> PaymentActionResponse:
        request = VoidRequest(
            transactionId=self.tid(step),
            customerId=self._customer(),
            invoiceNumber=invoice_number,
            reason=reason[:255],
        )
        call = VoidCall(
            request=request,
            correlation_id=self.correlation_id,
            lookup_transaction_id=self.next_status_tid(),
        )
        return await self._shielded(self._run(AyoconnectActivities.void, call, options, "void"))

    async def refund(
        self,
        invoice_number: str,
        amount: Decimal,
        reason: str,
        step: str,
        options: policies.ActivityOptions = policies.MONEY,
    ) -> PaymentActionResponse:
        request = RefundRequest(
            transactionId=self.tid(step),
            customerId=self._customer(),
            invoiceNumber=invoice_number,
            amount=amount,
            reason=reason[:255],
        )
        call = RefundCall(
            request=request,
            correlation_id=self.correlation_id,
            lookup_transaction_id=self.next_status_tid(),
        )
        return await self._shielded(self._run(AyoconnectActivities.refund, call, options, "refund"))

    async def list_cards(self, customer_id: str | None = None) -> CardsListResponse:
        """The cards of ``customer_id`` (default: the flow's customer). A registration for a new
        customer learns the id from a binding callback: it checks that callback's claim."""
        call = CardsListCall(
            transaction_id=self.next_list_tid(),
            customer_id=customer_id or self._customer(),
            correlation_id=self.correlation_id,
        )
        return await self._run(AyoconnectActivities.list_cards, call, policies.READ, "list_cards")

    async def unbind(self, card_token: str, step: str = ids.Step.UNBIND) -> UnbindResponse:
        request = UnbindRequest(
            transactionId=self.tid(step),
            customerId=self._customer(),
            cardToken=card_token,
        )
        call = UnbindCall(request=request, correlation_id=self.correlation_id)
        return await self._run(AyoconnectActivities.unbind, call, policies.UNBIND, "unbind")

    async def confirm_with_merchant(
        self, confirmation: MerchantConfirmation
    ) -> MerchantConfirmationResult:
        return await self._run(
            AyoconnectActivities.confirm_with_merchant,
            confirmation,
            policies.MERCHANT,
            "confirm_with_merchant",
        )

    # --- mechanics --------------------------------------------------------------------------

    def _customer(self) -> str:
        if not self.customer_id:
            raise ValueError("this call needs the customer id")
        return self.customer_id

    async def _run(
        self, method: Any, arg: Any, options: policies.ActivityOptions, summary: str
    ) -> Any:
        try:
            return await workflow.execute_activity_method(
                method, arg, summary=summary, **options.kwargs()
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                # The workflow was cancelled while this (unshielded) call ran.
                raise asyncio.CancelledError("workflow cancelled") from err
            raise ProviderError(read_failure(err)) from err

    async def _shielded(self, call: Awaitable[T]) -> T:
        """Money moves at most once and is always recorded: a cancellation arriving mid-call
        lets the call finish (its activity is not cancelled) and is noted for the workflow."""
        task = asyncio.ensure_future(call)
        try:
            await workflow.wait([task])
        except asyncio.CancelledError:
            self.cancel_requested = True
            await workflow.wait([task])
        return task.result()
