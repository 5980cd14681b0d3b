"""The real ``AyoconnectClient`` against a running sandbox: one sandbox per module.

A module may set ``SANDBOX_SETTINGS = {...}``. Cards are registered the way a customer does it
(``sandbox.customer``), and their tokens come from the signed binding callback.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from ayoconnect import AyoconnectClient, new_correlation_id
from ayoconnect.models import (
    BindingCallback,
    CreateChargeRequest,
    CreateChargeResponse,
    Customer,
    GenerateWebviewRequest,
    Order,
)
from sandbox import SandboxServer, SandboxSettings
from sandbox.control_client import SandboxControl
from sandbox.customer import register_card
from sandbox.receiver import CallbackReceiver

Register = Callable[..., Awaitable[BindingCallback]]
Charge = Callable[..., Awaitable[CreateChargeResponse]]


def new_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    callbacks = CallbackReceiver()
    with callbacks.serve():
        yield callbacks


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest, receiver: CallbackReceiver) -> Iterator[SandboxServer]:
    options: dict[str, Any] = {
        "callback_url": receiver.url,
        "time_factor": 0.001,
        **getattr(request.module, "SANDBOX_SETTINGS", {}),
    }
    with SandboxServer(SandboxSettings(**options)) as server:
        yield server


@pytest.fixture(scope="module")
async def client(sandbox: SandboxServer) -> AsyncIterator[AyoconnectClient]:
    async with AyoconnectClient(sandbox.client_settings()) as shared:
        yield shared


@pytest.fixture(scope="module")
async def control(sandbox: SandboxServer) -> AsyncIterator[SandboxControl]:
    async with SandboxControl(sandbox.base_url) as controls:
        yield controls


@pytest.fixture
def cid() -> str:
    """One correlation id per test: one flow."""
    return new_correlation_id()


@pytest.fixture
def ids() -> Callable[..., str]:
    return new_id


@pytest.fixture
def register(client: AyoconnectClient, receiver: CallbackReceiver, cid: str) -> Register:
    """Register a card as a customer would; returns the (signed) binding callback."""

    async def registered(
        card_number: str = "4111111111111111",
        *,
        customer_id: str | None = None,
        otp: str = "123456",
    ) -> BindingCallback:
        request = GenerateWebviewRequest(
            transactionId=new_id("reg"),
            customer=Customer(
                customerId=customer_id,
                name="Contract Tester",
                email="contract@example.com",
                phoneNumber="6281234567890",
            ),
            redirectUrl="https://merchant.example/registered",
            failedRedirectUrl="https://merchant.example/failed",
        )
        webview = await client.generate_webview(request, correlation_id=cid)
        await register_card(webview.webview.url, card_number=card_number, otp=otp)
        callback = await receiver.wait_for(
            lambda c: c.body.get("referenceNumber") == webview.referenceNumber
        )
        assert callback.signature_valid
        return BindingCallback.model_validate(callback.body)

    return registered


@pytest.fixture
def charge(client: AyoconnectClient, cid: str) -> Charge:
    """PAY or AUTHORIZE with a bound card; returns the charge answer."""

    async def charged(
        card: BindingCallback,
        amount: str = "100000.00",
        operation: str = "PAY",
        *,
        transaction_id: str | None = None,
        redirect_url: str | None = None,
    ) -> CreateChargeResponse:
        assert card.customerId and card.cardToken
        request = CreateChargeRequest(
            transactionId=transaction_id or new_id(operation.lower()),
            customerId=card.customerId,
            operation=operation,
            cardToken=card.cardToken,
            order=Order(id=new_id("order"), amount=Decimal(amount)),
            redirectUrl=redirect_url,
        )
        return await client.create_charge(request, correlation_id=cid)

    return charged
