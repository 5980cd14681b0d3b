"""A sandbox restarted on the same SQLite file loses nothing: tokens, cards, payments,
idempotency records, sessions, the clock and the dev key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from ayoconnect import AyoconnectClient, new_correlation_id, wire_timestamp
from ayoconnect.models import CreateChargeRequest, GenerateWebviewRequest, Order
from sandbox import SandboxServer, SandboxSettings
from sandbox.control_client import SandboxControl
from sandbox.customer import register_card
from sandbox.receiver import CallbackReceiver


def _webview_request(tid: str) -> GenerateWebviewRequest:
    return GenerateWebviewRequest.model_validate(
        {
            "transactionId": tid,
            "customer": {"name": "P", "email": "p@example.com", "phoneNumber": "6281234567"},
            "redirectUrl": "https://merchant.example/ok",
        }
    )


async def test_restart_on_the_same_file_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.sqlite"
    receiver = CallbackReceiver()
    cid = new_correlation_id()
    with receiver.serve():
        settings = SandboxSettings(db_path=str(db), callback_url=receiver.url)

        async with SandboxServer(settings) as first:
            first_url = first.base_url
            async with AyoconnectClient(first.client_settings()) as client:
                webview = await client.generate_webview(
                    _webview_request("p-wv-1"), correlation_id=cid
                )
                await register_card(webview.webview.url, card_number="4111111111111111")
                binding = (await receiver.wait_for(lambda c: True)).body
                charge = CreateChargeRequest(
                    transactionId="p-pay-1",
                    customerId=binding["customerId"],
                    operation="PAY",
                    cardToken=binding["cardToken"],
                    order=Order(id="o-1", amount="50000.00"),
                )
                paid = await client.create_charge(charge, correlation_id=cid)
                open_webview = await client.generate_webview(
                    _webview_request("p-wv-2"), correlation_id=cid
                )
                token = await client.access_token()
            async with SandboxControl(first_url) as control:
                # The payment's callback may still be on its way: a snapshot taken before its
                # delivery is stored would differ from the ledger after the restart (seen once
                # on a loaded machine) though nothing was lost.
                await control.callbacks_settled()
                await control.advance_clock(120)
                ledger_before = await control.ledger()
                key_before = await control.public_key()

        assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"

        async with SandboxServer(settings) as second:
            async with SandboxControl(second.base_url) as control:
                ledger_after = await control.ledger()
                assert await control.public_key() == key_before
                assert (await control.clock())["offsetSeconds"] == 120
            for part in ("payments", "cards", "customers", "callbacks", "sessions"):
                assert ledger_after[part] == ledger_before[part], part

            client_settings = second.client_settings()
            async with httpx.AsyncClient(base_url=second.base_url) as raw:
                # The token issued before the restart is still good.
                cards = await raw.get(
                    client_settings.card_path("cards_list_path"),
                    params={"transactionId": "p-list", "customerId": binding["customerId"]},
                    headers={
                        "Authorization": f"Bearer {token}",
                        "X-Correlation-ID": cid,
                        "X-Merchant-Code": client_settings.merchant_code,
                        "X-Timestamp": wire_timestamp(),
                    },
                )
                assert cards.status_code == 200, cards.text
                # A webview opened before the restart can still be completed.
                page = await raw.get(open_webview.webview.url.replace(first_url, ""))
                assert page.status_code == 200
                assert 'name="cardNumber"' in page.text

            async with AyoconnectClient(client_settings) as client:
                # The idempotency record answers a replay with the first answer.
                replay = await client.create_charge(charge, correlation_id=cid)
                assert replay == paid
            async with SandboxControl(second.base_url) as control:
                (payment,) = (await control.ledger())["payments"]
                assert len(payment["operations"]) == 1
