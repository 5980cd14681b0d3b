"""Shared fixtures of the unit tests: a fake Ayoconnect behind ``httpx.MockTransport``.

Test modules reach the constants and helpers through the ``ayo_fake`` fixture (its class
attributes and static methods) rather than importing this file.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ayoconnect import AyoconnectClient, AyoconnectSettings

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]
MakeClient = Callable[..., AyoconnectClient]


class FakeAyoconnect:
    """Records every request; answers the token endpoint itself and the rest via ``api``."""

    BASE_URL = "http://ayoconnect.test"
    CLIENT_ID = "kartu-unit-client"
    SECRET = "Unit-Secret-Zq81xW"
    MERCHANT = "KRT001"
    TOKEN_PATH = "/v1/oauth/client_credential/accesstoken"
    CORRELATION_ID = "0123456789abcdef0123456789abcdef"

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.token_delay = 0.0
        self.expires_in = "3599"
        self.token_status = 200
        self.token_raises: type[httpx.TransportError] | None = None
        self.api: Handler = lambda request: self.json(
            201, self.envelope(201, invoiceNumber="INV-1", status="SUCCESS")
        )
        self.issued = 0

    # --- helpers for tests ----------------------------------------------------------------

    @staticmethod
    def token_value(n: int) -> str:
        """The n-th access token the fake hands out: 28 characters, like Ayoconnect's."""
        return f"AccessTok{n:04d}" + "x" * 15

    @staticmethod
    def json(status: int, body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(status, json=body)

    @staticmethod
    def envelope(
        http: int = 200, service: str = "54", case: str = "01", /, **extra: Any
    ) -> dict[str, Any]:
        """The common response envelope; ``extra`` adds (or overrides) body fields."""
        return {
            "code": http,
            "responseCode": f"{http}{service}{case}",
            "message": "Success",
            "responseTime": "20250101120000",
            **extra,
        }

    def settings(self, **overrides: Any) -> AyoconnectSettings:
        values: dict[str, Any] = {
            "base_url": self.BASE_URL,
            "client_id": self.CLIENT_ID,
            "client_secret": self.SECRET,
            "merchant_code": self.MERCHANT,
            **overrides,
        }
        return AyoconnectSettings(**values)

    @property
    def token_calls(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith("/accesstoken")]

    @property
    def api_calls(self) -> list[httpx.Request]:
        return [r for r in self.requests if not r.url.path.endswith("/accesstoken")]

    def last_json(self) -> dict[str, Any]:
        return json.loads(self.api_calls[-1].content)

    # --- the transport's handler ----------------------------------------------------------

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/accesstoken"):
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            if self.token_raises is not None:
                raise self.token_raises("token endpoint unreachable", request=request)
            if self.token_status != 200:
                return self.json(self.token_status, {"message": "refused"})
            self.issued += 1
            return self.json(
                200,
                {
                    "accessToken": self.token_value(self.issued),
                    "tokenType": "BearerToken",
                    "expiresIn": self.expires_in,
                    "clientId": self.CLIENT_ID,
                    "responseTime": "20250101120000",
                },
            )
        response = self.api(request)
        if not isinstance(response, httpx.Response):
            response = await response
        return response


@pytest.fixture
def clean_ayo_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``AYOCONNECT_*`` variable of the developer's shell reaches a settings test."""
    for name in list(os.environ):
        if name.startswith("AYOCONNECT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def ayo_fake(clean_ayo_env: None) -> FakeAyoconnect:
    return FakeAyoconnect()


@pytest.fixture
async def make_client(ayo_fake: FakeAyoconnect) -> AsyncIterator[MakeClient]:
    """``make_client(**settings_overrides)``: a client wired to ``ayo_fake``, no network."""
    https: list[httpx.AsyncClient] = []

    def make(**overrides: Any) -> AyoconnectClient:
        settings = ayo_fake.settings(**overrides)
        http = httpx.AsyncClient(
            base_url=settings.base_url, transport=httpx.MockTransport(ayo_fake.handle)
        )
        https.append(http)
        return AyoconnectClient(settings, http=http)

    yield make
    for http in https:
        await http.aclose()


@pytest.fixture
def ayo_client(make_client: MakeClient) -> AyoconnectClient:
    return make_client()


class RsaPems:
    """A 2048-bit RSA key pair as PEM text (PKCS#8 private, SubjectPublicKeyInfo public)."""

    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


@pytest.fixture(scope="session")
def ayo_keys() -> RsaPems:
    """Ayoconnect's card encryption key pair (generated once: RSA generation is slow)."""
    return RsaPems()


@pytest.fixture(scope="session")
def stranger_keys() -> RsaPems:
    """Someone else's key pair: decrypting with it must fail."""
    return RsaPems()
