"""Secrets never leak: client secret, access tokens, PAN and CVV stay out of errors and logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from pydantic import ValidationError

from ayoconnect import AyoconnectClient, TransientError, encrypt_card
from ayoconnect.models import CardData, CreateChargeRequest
from ayoconnect.security import CardEncryptionError, decrypt_card

if TYPE_CHECKING:
    from conftest import FakeAyoconnect, RsaPems

CID = "00112233445566778899aabbccddeeff"
PAN = "4111111111111111"
CVV = "4297"  # four digits: a short value would match timestamps by chance
CARD = {
    "pan": PAN,
    "expiryMonth": "12",
    "expiryYear": "2030",
    "cvv": CVV,
    "cardholderName": "Budi Santoso",
}


def secrets(fake: FakeAyoconnect) -> list[str]:
    tokens = [fake.token_value(n) for n in range(1, 4)]
    return [fake.SECRET, PAN, CVV, *tokens]


def texts_of(exc: BaseException) -> list[str]:
    """str, repr and args of the exception and of every exception chained to it."""
    out: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        out += [str(seen), repr(seen), repr(seen.args)]
        seen = seen.__cause__ or seen.__context__
    return out


def leaked(secret: str, text: str) -> bool:
    """A short secret (the CVV) counts only as a number of its own: log records now carry
    random-looking figures (a call's duration, 0.74297...) that may hold its digits."""
    if len(secret) >= 8:
        return secret in text
    return re.search(rf"(?<![0-9]){re.escape(secret)}(?![0-9])", text) is not None


def assert_clean(texts: list[str], fake: FakeAyoconnect) -> None:
    for text in texts:
        for secret in secrets(fake):
            assert not leaked(secret, text), f"{secret[:3]}… leaked"


def assert_logs_clean(caplog: pytest.LogCaptureFixture, fake: FakeAyoconnect) -> None:
    assert_clean([caplog.text], fake)
    for record in caplog.records:
        assert_clean([record.getMessage(), repr(record.msg), repr(record.args)], fake)
        assert_clean([record.exc_text or "", repr(record.exc_info)], fake)


def pay(encrypted: str) -> CreateChargeRequest:
    return CreateChargeRequest(
        transactionId="wf-9-pay",
        customerId="CUST000009",
        operation="PAY",
        encryptedCard=encrypted,
        order={"id": "ORD-9", "amount": "75000.00"},
    )


def answer(status: int, body: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body)


def fail_with(exc: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("lost", request=request)

    return handler


def error(code: str, message: str = "Refused") -> dict[str, Any]:
    return {"code": int(code[:3]), "responseCode": code, "message": message}


Setup = Callable[["FakeAyoconnect"], None]


def api(handler: Callable[[httpx.Request], httpx.Response]) -> Setup:
    def setup(fake: FakeAyoconnect) -> None:
        fake.api = handler

    return setup


def token(status: int = 200, raises: type[httpx.TransportError] | None = None) -> Setup:
    def setup(fake: FakeAyoconnect) -> None:
        fake.token_status = status
        fake.token_raises = raises

    return setup


SCENARIOS: dict[str, Setup] = {
    "success": api(
        answer(201, {**error("2015401", "ok"), "invoiceNumber": "INV-9", "status": "SUCCESS"})
    ),
    "declined": api(answer(400, error("4005422", "Insufficient funds"))),
    "rule": api(answer(400, error("4005426"))),
    "not-found": api(answer(404, error("4045435"))),
    "conflict": api(answer(409, error("4095435"))),
    "unauthorized-twice": api(answer(401, error("4015435", "Unauthorized"))),
    "server-error": api(answer(500, error("5005432"))),
    "timed-out": api(answer(400, error("4005433"))),
    "malformed": api(answer(201, {"unexpected": True})),
    "read-timeout": api(fail_with(httpx.ReadTimeout)),
    "protocol-error": api(fail_with(httpx.RemoteProtocolError)),
    "connect-error": api(fail_with(httpx.ConnectError)),
    "token-refused": token(401),
    "token-outage": token(503),
    "token-unreachable": token(raises=httpx.ConnectError),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_client_scenarios_leak_nothing(
    ayo_client: AyoconnectClient,
    ayo_fake: FakeAyoconnect,
    ayo_keys: RsaPems,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    SCENARIOS[scenario](ayo_fake)
    encrypted = encrypt_card(CardData(**CARD), ayo_keys.public)
    call: Awaitable[Any] = ayo_client.create_charge(pay(encrypted), correlation_id=CID)
    try:
        await call
    except Exception as exc:
        assert_clean(texts_of(exc), ayo_fake)
    else:
        assert scenario == "success"
    assert_logs_clean(caplog, ayo_fake)
    # The secrets really were in play: the secret in the token form, the token in a header.
    assert ayo_fake.SECRET in ayo_fake.token_calls[0].content.decode()
    for request in ayo_fake.api_calls:
        assert request.headers["Authorization"].startswith("Bearer AccessTok")
        assert PAN not in request.content.decode()  # the clear card never goes on the wire
    if scenario in {"success", "declined", "unauthorized-twice", "server-error"}:
        assert any(r.name == "ayoconnect.client" for r in caplog.records)  # the log was on


async def test_status_lookup_failures_leak_nothing(
    ayo_client: AyoconnectClient, ayo_fake: FakeAyoconnect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for handler in (fail_with(httpx.ReadTimeout), answer(503, error("5035532"))):
        ayo_fake.api = handler
        with pytest.raises(TransientError) as info:
            await ayo_client.payment_status(
                transaction_id="wf-9-status",
                customer_id="CUST000009",
                correlation_id=CID,
                invoice_number="INV-9",
            )
        assert_clean(texts_of(info.value), ayo_fake)
    assert_logs_clean(caplog, ayo_fake)


@pytest.mark.parametrize(
    "build",
    [
        lambda: CardData(**(CARD | {"cvv": "73"})),
        lambda: CardData(**(CARD | {"pan": PAN + "0000"})),
        lambda: CardData(**(CARD | {"expiryMonth": "13"})),
        lambda: CreateChargeRequest(
            transactionId="wf-9-pay",
            customerId="CUST000009",
            operation="PAY",
            cardToken=PAN,
            order={"id": "ORD-9", "amount": "75000.00"},
        ),
        lambda: CreateChargeRequest(
            transactionId="wf-9-pay",
            customerId=PAN,
            operation="PAY",
            cardToken="T" * 40,
            encryptedCard=CVV,
        ),
    ],
)
def test_model_errors_leak_nothing(ayo_fake: FakeAyoconnect, build: Callable[[], Any]) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert_clean(texts_of(info.value), ayo_fake)


def test_decryption_errors_leak_nothing(
    ayo_fake: FakeAyoconnect, ayo_keys: RsaPems, stranger_keys: RsaPems
) -> None:
    encrypted = encrypt_card(CardData(**CARD), ayo_keys.public)
    with pytest.raises(CardEncryptionError) as info:
        decrypt_card(encrypted, stranger_keys.private)
    assert_clean(texts_of(info.value), ayo_fake)
