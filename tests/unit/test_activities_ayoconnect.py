"""activities: Ayoconnect errors → ApplicationError, and the look-up before a money resend.

The AyoconnectClient is replaced by a stub recording calls; activities run in Temporal's
ActivityEnvironment so ``activity.info().attempt`` can be set."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import (
    AyoconnectActivities,
    ChargeCall,
    MerchantConfirmation,
    RefundCall,
    StatusCall,
    VoidCall,
    to_application_error,
)
from ayoconnect.codes import GatewayCode
from ayoconnect.errors import (
    AmbiguousError,
    AuthenticationError,
    ConflictError,
    DeclinedError,
    InvalidRequestError,
    NotFoundError,
    RuleViolationError,
    TransientError,
)
from ayoconnect.models import (
    CreateChargeRequest,
    CreateChargeResponse,
    Operation,
    Order,
    PaymentActionResponse,
    PaymentDetail,
    PaymentStatus,
    PaymentStatusResponse,
    RefundRequest,
    VoidRequest,
)

CORRELATION = "0123456789abcdef0123456789abcdef"
TOKEN = "T" * 40


class StubClient:
    """Answers each operation from a queue of results or exceptions; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.answers: dict[str, list[Any]] = {}

    def answer(self, name: str, *outcomes: Any) -> None:
        self.answers.setdefault(name, []).extend(outcomes)

    async def _next(self, name: str, arg: Any) -> Any:
        self.calls.append((name, arg))
        outcome = self.answers[name].pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def create_charge(self, request, *, correlation_id):
        return await self._next("create_charge", request)

    async def void(self, request, *, correlation_id):
        return await self._next("void", request)

    async def refund(self, request, *, correlation_id):
        return await self._next("refund", request)

    async def payment_status(self, **kwargs):
        return await self._next("payment_status", kwargs)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def envelope(code: str = "2015401") -> dict[str, Any]:
    return {"code": int(code[:3]), "responseCode": code, "message": "ok"}


def charge_call(operation: Operation = Operation.PAY) -> ChargeCall:
    if operation is Operation.CAPTURE:
        request = CreateChargeRequest(
            transactionId="p1-cap",
            customerId="CUST000123",
            operation=operation,
            invoiceNumber="INV-1",
            amount=Decimal("100.00"),
        )
    else:
        request = CreateChargeRequest(
            transactionId="p1-pay",
            customerId="CUST000123",
            operation=operation,
            cardToken=TOKEN,
            order=Order(id="p1", amount=Decimal("100.00")),
        )
    return ChargeCall(request=request, correlation_id=CORRELATION, lookup_transaction_id="p1-s1")


def charged(status: PaymentStatus = PaymentStatus.SUCCESS) -> CreateChargeResponse:
    return CreateChargeResponse(
        **envelope(), invoiceNumber="INV-1", status=status, amount=Decimal("100.00")
    )


def found(status: PaymentStatus, operation: Operation = Operation.PAY) -> PaymentStatusResponse:
    return PaymentStatusResponse(
        **envelope("2005501"),
        payment=PaymentDetail(
            invoiceNumber="INV-1",
            originalTransactionId="p1-pay",
            operation=operation,
            status=status,
            amount=Decimal("100.00"),
            capturedAmount=Decimal("100.00") if status is PaymentStatus.CAPTURED else None,
        ),
    )


def not_found() -> NotFoundError:
    return NotFoundError("unknown payment", http_status=404, response_code="4045535")


def environment(attempt: int = 1) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return env


# --- error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (TransientError("503"), True),
        (AmbiguousError("read timeout"), True),
        # Retryable since issue 8: a 401/403 during a credential rotation must delay the call
        # (activity backoff), not end a refund or unbind as FAILED.
        (AuthenticationError("bad secret"), True),
        (DeclinedError("no", gateway_code=GatewayCode.INSUFFICIENT_FUNDS), False),
        (RuleViolationError("void after capture"), False),
        (NotFoundError("unknown"), False),
        (ConflictError("reused id"), False),
        (InvalidRequestError("bad field"), False),
    ],
)
def test_error_mapping(error, retryable):
    mapped = to_application_error(error)
    assert isinstance(mapped, ApplicationError)
    assert mapped.type == type(error).__name__
    assert mapped.non_retryable is (not retryable)


def test_decline_details_carry_codes():
    error = DeclinedError(
        "Insufficient funds",
        http_status=400,
        response_code="4005422",
        gateway_code=GatewayCode.INSUFFICIENT_FUNDS,
        transaction_id="p1-pay",
        operation="create_charge",
    )
    mapped = to_application_error(error)
    [details] = mapped.details
    assert details["response_code"] == "4005422"
    assert details["gateway_code"] == "INSUFFICIENT_FUNDS"
    assert details["http_status"] == 400
    assert "p1-pay" in mapped.message


async def test_activity_raises_the_mapped_error():
    client = StubClient()
    client.answer("create_charge", DeclinedError("no", gateway_code=GatewayCode.DECLINED))
    activities = AyoconnectActivities(client)  # type: ignore[arg-type]
    with pytest.raises(ApplicationError) as raised:
        await environment().run(activities.create_charge, charge_call())
    assert raised.value.type == "DeclinedError"
    assert raised.value.non_retryable


async def test_transient_error_is_retryable():
    client = StubClient()
    client.answer("payment_status", TransientError("502"))
    activities = AyoconnectActivities(client)  # type: ignore[arg-type]
    call = StatusCall(
        transaction_id="p1-s1",
        customer_id="CUST000123",
        correlation_id=CORRELATION,
        invoice_number="INV-1",
    )
    with pytest.raises(ApplicationError) as raised:
        await environment().run(activities.payment_status, call)
    assert raised.value.type == "TransientError"
    assert not raised.value.non_retryable


async def test_client_side_validation_is_final():
    client = StubClient()
    client.answer("payment_status", ValueError("customerId must be 6 to 16 letters or digits"))
    activities = AyoconnectActivities(client)  # type: ignore[arg-type]
    call = StatusCall(
        transaction_id="p1-s1", customer_id="x", correlation_id=CORRELATION, invoice_number="I"
    )
    with pytest.raises(ApplicationError) as raised:
        await environment().run(activities.payment_status, call)
    assert (raised.value.type, raised.value.non_retryable) == ("InvalidRequestError", True)


# --- money-moving calls after an ambiguous failure ------------------------------------------


async def test_first_attempt_sends_without_look_up():
    client = StubClient()
    client.answer("create_charge", charged())
    result = await environment(1).run(AyoconnectActivities(client).create_charge, charge_call())
    assert result.status is PaymentStatus.SUCCESS
    assert client.names() == ["create_charge"]


async def test_ambiguous_charge_is_retryable_and_not_resent_on_the_spot():
    client = StubClient()
    client.answer("create_charge", AmbiguousError("read timeout"))
    with pytest.raises(ApplicationError) as raised:
        await environment(1).run(AyoconnectActivities(client).create_charge, charge_call())
    assert (raised.value.type, raised.value.non_retryable) == ("AmbiguousError", False)
    assert client.names() == ["create_charge"]


async def test_retry_finds_the_charge_and_does_not_charge_again():
    client = StubClient()
    client.answer("payment_status", found(PaymentStatus.SUCCESS))
    result = await environment(2).run(AyoconnectActivities(client).create_charge, charge_call())
    assert (result.status, result.invoiceNumber) == (PaymentStatus.SUCCESS, "INV-1")
    assert client.names() == ["payment_status"]
    lookup = client.calls[0][1]
    assert lookup["original_transaction_id"] == "p1-pay"
    assert lookup["transaction_id"] == "p1-s1"
    assert lookup["correlation_id"] == CORRELATION


async def test_retry_resends_with_the_same_id_when_nothing_was_charged():
    client = StubClient()
    client.answer("payment_status", not_found())
    client.answer("create_charge", charged())
    call = charge_call()
    await environment(3).run(AyoconnectActivities(client).create_charge, call)
    assert client.names() == ["payment_status", "create_charge"]
    assert client.calls[1][1].transactionId == "p1-pay"


async def test_retry_recovers_the_3ds_url_from_the_stored_answer():
    client = StubClient()
    client.answer("payment_status", found(PaymentStatus.AUTHENTICATION_IN_PROGRESS))
    stored = charged(PaymentStatus.AUTHENTICATION_IN_PROGRESS).model_copy(
        update={"authenticationUrl": "https://3ds.test/p1"}
    )
    client.answer("create_charge", stored)
    result = await environment(2).run(AyoconnectActivities(client).create_charge, charge_call())
    assert result.authenticationUrl == "https://3ds.test/p1"


async def test_retry_of_capture_looks_up_by_invoice():
    client = StubClient()
    client.answer("payment_status", found(PaymentStatus.CAPTURED, Operation.AUTHORIZE))
    result = await environment(2).run(
        AyoconnectActivities(client).create_charge, charge_call(Operation.CAPTURE)
    )
    assert result.status is PaymentStatus.CAPTURED
    assert client.calls[0][1]["invoice_number"] == "INV-1"
    assert client.names() == ["payment_status"]


async def test_retry_of_capture_sends_when_still_authorized():
    client = StubClient()
    client.answer("payment_status", found(PaymentStatus.AUTHORIZED, Operation.AUTHORIZE))
    client.answer("create_charge", charged(PaymentStatus.CAPTURED))
    await environment(2).run(
        AyoconnectActivities(client).create_charge, charge_call(Operation.CAPTURE)
    )
    assert client.names() == ["payment_status", "create_charge"]


def void_call() -> VoidCall:
    request = VoidRequest(
        transactionId="p1-void", customerId="CUST000123", invoiceNumber="INV-1", reason="r"
    )
    return VoidCall(request=request, correlation_id=CORRELATION, lookup_transaction_id="p1-s2")


def refund_call() -> RefundCall:
    request = RefundRequest(
        transactionId="p1-rfd",
        customerId="CUST000123",
        invoiceNumber="INV-1",
        amount=Decimal("100.00"),
        reason="r",
    )
    return RefundCall(request=request, correlation_id=CORRELATION, lookup_transaction_id="p1-s3")


def acted(status: PaymentStatus) -> PaymentActionResponse:
    return PaymentActionResponse(**envelope("2005701"), invoiceNumber="INV-1", status=status)


@pytest.mark.parametrize(
    ("name", "call", "done"),
    [("void", void_call, PaymentStatus.VOIDED), ("refund", refund_call, PaymentStatus.REFUNDED)],
)
async def test_retry_of_void_and_refund_returns_what_happened(name, call, done):
    client = StubClient()
    client.answer("payment_status", found(done))
    activity_fn = getattr(AyoconnectActivities(client), name)
    result = await environment(2).run(activity_fn, call())
    assert result.status is done
    assert client.names() == ["payment_status"]


@pytest.mark.parametrize(
    ("name", "call", "done", "before"),
    [
        ("void", void_call, PaymentStatus.VOIDED, PaymentStatus.AUTHORIZED),
        ("refund", refund_call, PaymentStatus.REFUNDED, PaymentStatus.SUCCESS),
    ],
)
async def test_retry_of_void_and_refund_resends_when_not_done(name, call, done, before):
    client = StubClient()
    client.answer("payment_status", found(before))
    client.answer(name, acted(done))
    activity_fn = getattr(AyoconnectActivities(client), name)
    result = await environment(2).run(activity_fn, call())
    assert result.status is done
    assert client.names() == ["payment_status", name]


# --- merchant confirmation ------------------------------------------------------------------


def confirmation() -> MerchantConfirmation:
    return MerchantConfirmation(
        url="https://merchant.test/confirm",
        payment_id="p1",
        workflow_id="payment-p1",
        status="PAID",
        amount=Decimal("100.00"),
        invoice_number="INV-1",
    )


@pytest.mark.parametrize(
    ("status", "error_type", "non_retryable"),
    [
        (200, None, None),
        (204, None, None),
        (409, "MerchantRejectedError", True),
        (422, "MerchantRejectedError", True),
        (429, "MerchantUnavailable", False),
        (503, "MerchantUnavailable", False),
    ],
)
async def test_merchant_confirmation(status, error_type, non_retryable):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    activities = AyoconnectActivities(StubClient(), merchant_http=http)  # type: ignore[arg-type]
    try:
        if error_type is None:
            result = await environment().run(activities.confirm_with_merchant, confirmation())
            assert result.http_status == status
        else:
            with pytest.raises(ApplicationError) as raised:
                await environment().run(activities.confirm_with_merchant, confirmation())
            assert (raised.value.type, raised.value.non_retryable) == (error_type, non_retryable)
    finally:
        await activities.aclose()
    body = seen[0].read().decode()
    assert '"payment_id":"p1"' in body and "url" not in body and TOKEN not in body


async def test_merchant_unreachable_is_retryable():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    activities = AyoconnectActivities(StubClient(), merchant_http=http)  # type: ignore[arg-type]
    with pytest.raises(ApplicationError) as raised:
        await environment().run(activities.confirm_with_merchant, confirmation())
    assert not raised.value.non_retryable
    await activities.aclose()


def test_all_activities_have_their_names():
    names = [fn.__temporal_activity_definition.name for fn in AyoconnectActivities(None).all()]  # type: ignore[arg-type]
    assert names == [
        "generate_webview",
        "create_charge",
        "payment_status",
        "list_cards",
        "unbind",
        "void",
        "refund",
        "confirm_with_merchant",
    ]


async def test_retry_finding_a_failed_charge_recovers_the_decline_code():
    client = StubClient()
    client.answer("payment_status", found(PaymentStatus.FAILED))
    client.answer(
        "create_charge",
        DeclinedError(
            "Insufficient funds",
            response_code="4005422",
            gateway_code=GatewayCode.INSUFFICIENT_FUNDS,
        ),
    )
    with pytest.raises(ApplicationError) as raised:
        await environment(2).run(AyoconnectActivities(client).create_charge, charge_call())
    assert raised.value.type == "DeclinedError"
    assert raised.value.details[0]["gateway_code"] == "INSUFFICIENT_FUNDS"


async def test_retry_finding_a_failed_charge_keeps_the_look_up_if_replay_fails():
    client = StubClient()
    client.answer("payment_status", found(PaymentStatus.FAILED))
    client.answer("create_charge", TransientError("503"))
    result = await environment(2).run(AyoconnectActivities(client).create_charge, charge_call())
    assert result.status is PaymentStatus.FAILED
