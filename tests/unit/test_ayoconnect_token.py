"""Access token: cache, expiry, single flight, refresh on 401, token endpoint failures."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import TYPE_CHECKING

import httpx
import pytest

import ayoconnect.client as client_module
from ayoconnect import (
    AuthenticationError,
    AyoconnectClient,
    InvalidRequestError,
    TransientError,
)
from ayoconnect.models import CreateChargeRequest

if TYPE_CHECKING:
    from conftest import FakeAyoconnect, MakeClient

CID = "0123456789abcdef0123456789abcdef"


class Clock:
    """Stands in for the ``time`` module inside ayoconnect.client only (not asyncio's)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(client_module, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def pay() -> CreateChargeRequest:
    return CreateChargeRequest(
        transactionId="wf-1-pay",
        customerId="CUST000001",
        operation="PAY",
        cardToken="T" * 40,
        order={"id": "ORD-1", "amount": "1000.00"},
    )


def bearer(request: httpx.Request) -> str:
    return request.headers["Authorization"].removeprefix("Bearer ")


async def test_token_is_cached_across_calls(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    for _ in range(3):
        await ayo_client.create_charge(pay(), correlation_id=CID)
    assert await ayo_client.access_token() == ayo_fake.token_value(1)
    assert ayo_client.token_requests == 1
    assert len(ayo_fake.token_calls) == 1
    assert [bearer(r) for r in ayo_fake.api_calls] == [ayo_fake.token_value(1)] * 3


async def test_token_is_refreshed_after_expiry_minus_margin(
    make_client: MakeClient, ayo_fake: FakeAyoconnect, clock: Clock
) -> None:
    client = make_client(token_refresh_margin_seconds=60)
    ayo_fake.expires_in = "3599"
    assert await client.access_token() == ayo_fake.token_value(1)
    clock.now += 3599 - 60 - 1  # still inside the lifetime less the margin
    assert await client.access_token() == ayo_fake.token_value(1)
    assert client.token_requests == 1
    clock.now += 1  # the margin starts: refresh before Ayoconnect's own expiry
    assert await client.access_token() == ayo_fake.token_value(2)
    assert client.token_requests == 2
    await client.create_charge(pay(), correlation_id=CID)
    assert bearer(ayo_fake.api_calls[-1]) == ayo_fake.token_value(2)
    assert len(ayo_fake.token_calls) == 2


async def test_tiny_lifetime_without_margin_expires(
    make_client: MakeClient, ayo_fake: FakeAyoconnect, clock: Clock
) -> None:
    client = make_client(token_refresh_margin_seconds=0)
    ayo_fake.expires_in = "5"
    await client.access_token()
    clock.now += 4.9
    await client.access_token()
    clock.now += 0.1
    assert await client.access_token() == ayo_fake.token_value(2)
    assert client.token_requests == 2


async def test_concurrent_callers_share_one_token_request(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    ayo_fake.token_delay = 0.05
    results = await asyncio.gather(
        *(ayo_client.create_charge(pay(), correlation_id=CID) for _ in range(50))
    )
    assert len(results) == 50
    assert ayo_client.token_requests == 1
    assert len(ayo_fake.token_calls) == 1
    assert len(ayo_fake.api_calls) == 50
    assert {bearer(r) for r in ayo_fake.api_calls} == {ayo_fake.token_value(1)}


async def test_concurrent_refresh_after_expiry_is_single_flight(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect, clock: Clock
) -> None:
    await ayo_client.access_token()
    clock.now += 10_000
    ayo_fake.token_delay = 0.02
    tokens = await asyncio.gather(*(ayo_client.access_token() for _ in range(50)))
    assert set(tokens) == {ayo_fake.token_value(2)}
    assert ayo_client.token_requests == 2
    assert len(ayo_fake.token_calls) == 2


async def test_a_401_refreshes_the_token_once_and_retries_once(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    first = ayo_fake.token_value(1)

    def revoke_first_token(request: httpx.Request) -> httpx.Response:
        if bearer(request) == first:
            return ayo_fake.json(401, ayo_fake.envelope(401, "54", "35", message="expired"))
        return ayo_fake.json(201, ayo_fake.envelope(201, invoiceNumber="INV-9", status="SUCCESS"))

    ayo_fake.api = revoke_first_token
    answer = await ayo_client.create_charge(pay(), correlation_id=CID)
    assert answer.invoiceNumber == "INV-9"
    assert ayo_client.token_requests == 2
    assert len(ayo_fake.token_calls) == 2
    assert [bearer(r) for r in ayo_fake.api_calls] == [first, ayo_fake.token_value(2)]
    assert ayo_fake.api_calls[0].content == ayo_fake.api_calls[1].content


async def test_a_second_401_raises_authentication_error(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    ayo_fake.api = lambda request: ayo_fake.json(
        401, ayo_fake.envelope(401, "54", "35", message="Unauthorized")
    )
    with pytest.raises(AuthenticationError) as info:
        await ayo_client.create_charge(pay(), correlation_id=CID)
    assert info.value.http_status == 401
    assert info.value.correlation_id == CID
    assert info.value.transaction_id == "wf-1-pay"
    assert len(ayo_fake.api_calls) == 2  # retried exactly once
    assert ayo_client.token_requests == 2


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_token_endpoint_refusal_is_authentication_error(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect, status: int
) -> None:
    ayo_fake.token_status = status
    with pytest.raises(AuthenticationError) as info:
        await ayo_client.access_token()
    assert info.value.http_status == status
    assert info.value.operation == "access_token"
    assert ayo_fake.api_calls == []


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_token_endpoint_outage_is_transient(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect, status: int
) -> None:
    ayo_fake.token_status = status
    with pytest.raises(TransientError) as info:
        await ayo_client.create_charge(pay(), correlation_id=CID)
    assert info.value.http_status == status
    assert ayo_fake.api_calls == []
    ayo_fake.token_status = 200  # the failure is not cached: the next call fetches again
    await ayo_client.create_charge(pay(), correlation_id=CID)
    assert ayo_client.token_requests == 2


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
async def test_token_endpoint_transport_failure_is_transient(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect, exc: type[httpx.TransportError]
) -> None:
    ayo_fake.token_raises = exc  # a token request changes nothing: always safe to repeat
    with pytest.raises(TransientError) as info:
        await ayo_client.access_token()
    assert exc.__name__ in str(info.value)
    assert info.value.__cause__ is None


async def test_malformed_token_answer(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    ayo_fake.expires_in = "soon"
    with pytest.raises(InvalidRequestError, match="access token response is malformed"):
        await ayo_client.access_token()


async def test_token_failure_during_an_operation_carries_the_call_context(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect
) -> None:
    ayo_fake.token_status = 503
    with pytest.raises(TransientError) as info:
        await ayo_client.create_charge(pay(), correlation_id=CID)
    assert info.value.correlation_id == CID
    assert info.value.transaction_id == "wf-1-pay"
    assert CID in str(info.value)
