"""Fixtures of the sandbox's own tests: one sandbox per module, raw HTTP against it.

A module may set ``SANDBOX_SETTINGS = {...}`` to change its sandbox's settings.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from ayoconnect import AyoconnectSettings, wire_timestamp
from ayoconnect.tls import tls_context
from sandbox import SandboxServer, SandboxSettings
from sandbox.control_client import SandboxControl
from sandbox.customer import register_card
from sandbox.receiver import CallbackReceiver


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


@pytest.fixture
async def control(sandbox: SandboxServer, receiver: CallbackReceiver) -> AsyncIterator[Any]:
    """Controls of a freshly reset sandbox (and an empty callback receiver)."""
    async with SandboxControl(sandbox.base_url) as controls:
        await controls.reset()
        receiver.clear()
        yield controls


class Wire:
    """Raw HTTP to the sandbox: the requests the real client would refuse to build."""

    def __init__(
        self, http: httpx.AsyncClient, settings: AyoconnectSettings, control: Any = None
    ) -> None:
        self.http = http
        self.settings = settings
        self.control = control
        self._token: str | None = None

    async def token(self) -> str:
        if self._token is None:
            response = await self.http.post(
                self.settings.token_path,
                params={"grant_type": "client_credentials"},
                data={
                    "client_id": self.settings.client_id,
                    "client_secret": self.settings.client_secret.get_secret_value(),
                },
            )
            assert response.status_code == 200, response.text
            self._token = response.json()["accessToken"]
        return self._token

    def forget_token(self) -> None:
        self._token = None

    async def headers(self, **overrides: str | None) -> dict[str, str]:
        s = self.settings
        headers: dict[str, str | None] = {
            "Authorization": f"Bearer {await self.token()}",
            s.correlation_id_header: uuid.uuid4().hex,
            s.merchant_code_header: s.merchant_code,
            s.timestamp_header: wire_timestamp(),
            "Content-Type": "application/json",
        }
        headers.update(overrides)
        return {k: v for k, v in headers.items() if v is not None}

    def path(self, name: str) -> str:
        return self.settings.card_path(name)

    async def post(
        self, name: str, body: Any, *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        kwargs: dict[str, Any] = (
            {"content": body} if isinstance(body, str | bytes) else {"json": body}
        )
        return await self.http.post(
            self.path(name), headers=headers or await self.headers(), **kwargs
        )

    async def get(
        self, name: str, params: dict[str, str], *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.get(
            self.path(name), params=params, headers=headers or await self.headers()
        )

    async def register(
        self, receiver: CallbackReceiver, card_number: str = "4111111111111111", **customer: Any
    ) -> dict[str, Any]:
        """Generate a webview, act as the customer, return the binding callback's body."""
        body = {
            "transactionId": new_id(),
            "customer": {
                "name": "Test Customer",
                "email": "customer@example.com",
                "phoneNumber": "6281234567890",
                **customer,
            },
            "redirectUrl": "https://merchant.example/done",
            "failedRedirectUrl": "https://merchant.example/failed",
        }
        webview = await self.post("generate_webview_path", body)
        assert webview.status_code == 201, webview.text
        reference = webview.json()["referenceNumber"]
        await register_card(webview.json()["webview"]["url"], card_number=card_number)
        callback = await receiver.wait_for(lambda c: c.body.get("referenceNumber") == reference)
        await self.callbacks_settled(reference)
        return callback.body

    async def callbacks_settled(self, reference: str, timeout: float = 10.0) -> None:
        """Until the sandbox has recorded how its callbacks for ``reference`` went: the receiver
        has a callback before the sandbox marks it delivered, and a test comparing two ledger
        snapshots must not see that late write as its own doing."""
        if self.control is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            callbacks = [
                c for c in (await self.control.ledger())["callbacks"] if c["reference"] == reference
            ]
            if callbacks and all(c["state"] != "pending" for c in callbacks):
                return
            assert time.monotonic() < deadline, f"callbacks of {reference} still pending"
            await asyncio.sleep(0.02)


def new_id() -> str:
    return uuid.uuid4().hex[:20]


@pytest.fixture
async def wire(sandbox: SandboxServer, control: Any) -> AsyncIterator[Wire]:
    async with httpx.AsyncClient(
        base_url=sandbox.base_url, timeout=10.0, verify=tls_context()
    ) as http:
        yield Wire(http, sandbox.client_settings(), control)


@pytest.fixture
def ids() -> Any:
    """A fresh transactionId per call."""
    return new_id
