"""Access tokens through the real client: one token for many concurrent calls, one refresh
after the sandbox expires it, credentials refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ayoconnect import AuthenticationError, AyoconnectClient, NotFoundError


async def _list(client: AyoconnectClient, cid: str, ids: Any) -> None:
    with pytest.raises(NotFoundError):  # any authenticated call will do
        await client.list_cards(
            transaction_id=ids("list"), customer_id="NOBODY1234", correlation_id=cid
        )


async def test_fifty_concurrent_calls_share_one_token(sandbox: Any, cid: str, ids: Any) -> None:
    async with AyoconnectClient(sandbox.client_settings()) as client:
        await asyncio.gather(*(_list(client, cid, ids) for _ in range(50)))
        assert client.token_requests == 1


async def test_an_expired_token_is_refreshed_once(
    sandbox: Any, control: Any, cid: str, ids: Any
) -> None:
    async with AyoconnectClient(sandbox.client_settings()) as client:
        await _list(client, cid, ids)
        assert client.token_requests == 1
        await control.advance_clock(3601)  # the sandbox now refuses the cached token: 401
        await _list(client, cid, ids)
        assert client.token_requests == 2
        await _list(client, cid, ids)
        assert client.token_requests == 2


@pytest.mark.parametrize(
    "override",
    [{"client_secret": "not-the-secret"}, {"client_id": "someone-else"}],
)
async def test_wrong_credentials(sandbox: Any, cid: str, ids: Any, override: Any) -> None:
    async with AyoconnectClient(sandbox.client_settings(**override)) as client:
        with pytest.raises(AuthenticationError) as refused:
            await client.list_cards(
                transaction_id=ids("l"), customer_id="NOBODY1234", correlation_id=cid
            )
        assert refused.value.http_status == 401


async def test_wrong_merchant_code(sandbox: Any, cid: str, ids: Any) -> None:
    async with AyoconnectClient(sandbox.client_settings(merchant_code="OTH999")) as client:
        with pytest.raises(AuthenticationError):
            await client.list_cards(
                transaction_id=ids("l"), customer_id="NOBODY1234", correlation_id=cid
            )
        assert client.token_requests == 2  # refreshed once on the 401, then gave up
