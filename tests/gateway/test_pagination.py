"""Cursor pages: ``page_size`` and the opaque ``next_page_token`` (passed back as
``page_token``) on every list route, over Temporal visibility's own page tokens.

Tokens first (pure), then on the real stack: payments of one customer page by page, a REFUNDED
search across its two parts, a customer's cards, and tokens that do not belong to the search.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest

from sandbox.customer import register_card
from starter.client import InvalidRequest, KartuClient
from starter.client.pages import decode_token, encode_token
from tests.kartu_stack import (
    API_KEY,
    CALLBACK_PATH,
    FRICTIONLESS_CARD,
    Stack,
    new_customer_id,
    new_key,
)

AUTH = {"X-API-Key": API_KEY}
REDIRECT = "https://merchant.example/pay/done"
SECOND_CARD = "5555555555554444"


def test_a_token_belongs_to_its_search_and_part():
    token = encode_token("search A", "payments", b"temporal's own token")
    assert decode_token(token, "search A", ("payments", "refunds")) == (
        "payments",
        b"temporal's own token",
    )
    assert decode_token(None, "search A", ("payments", "refunds")) == ("payments", None)
    start_of_refunds = encode_token("search A", "refunds", None)
    assert decode_token(start_of_refunds, "search A", ("payments", "refunds")) == ("refunds", None)
    raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**raw, "p": "other"}).encode()).decode()
    for bad, search in [
        (token, "search B"),  # another search's
        (forged, "search A"),  # a part the search has not
        ("not a token", "search A"),
        (base64.urlsafe_b64encode(b"[1, 2]").decode(), "search A"),
        ("x" * 5000, "search A"),
    ]:
        with pytest.raises(InvalidRequest) as refused:
            decode_token(bad, search, ("payments", "refunds"))
        assert refused.value.field == "page_token"


async def walk(
    http: httpx.AsyncClient, path: str, items: str, **params: Any
) -> list[list[dict[str, Any]]]:
    """Every page of a list, following next_page_token; the last page has none."""
    pages: list[list[dict[str, Any]]] = []
    token = None
    for _ in range(200):
        query = {**params, **({"page_token": token} if token else {})}
        answer = await http.get(path, params=query, headers=AUTH)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append(body[items])
        token = body.get("next_page_token")
        if token is None:
            return pages
    raise AssertionError("no last page")


async def walk_until(
    http: httpx.AsyncClient, path: str, items: str, count: int, **params: Any
) -> list[list[dict[str, Any]]]:
    """``walk`` again until visibility shows ``count`` items (it trails the writes)."""
    for _ in range(100):
        pages = await walk(http, path, items, **params)
        if sum(len(p) for p in pages) >= count:
            return pages
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never listed {count} items")


@pytest.fixture(scope="module")
async def paid(stack: Stack) -> tuple[str, list[str]]:
    """Five payments of one customer, two of them refunded since."""
    customer = new_customer_id()
    ids = [new_key("pg") for _ in range(5)]
    for payment_id in ids:  # one after the other: their start times order the list
        outcome = await stack.kartu.pay(
            payment_id,
            customer_id=customer,
            amount="10000",
            encrypted_card=await stack.encrypted_card(),
            redirect_url=REDIRECT,
        )
        assert outcome.status.value == "PAID", outcome
    for payment_id in ids[1:3]:
        assert (await stack.kartu.refund(payment_id)).status.value == "REFUNDED"
    return customer, ids


async def test_payments_page_by_page(http: httpx.AsyncClient, paid: tuple[str, list[str]]):
    customer, ids = paid
    pages = await walk_until(http, "/payments", "payments", 5, customer_id=customer, page_size=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    listed = [p["payment_id"] for page in pages for p in page]
    assert listed == list(reversed(ids))  # newest first, each once
    statuses = {p["payment_id"]: p["status"] for page in pages for p in page}
    assert [statuses[i] for i in ids] == ["PAID", "REFUNDED", "REFUNDED", "PAID", "PAID"]
    one_page = await walk(http, "/payments", "payments", customer_id=customer)
    assert [len(p) for p in one_page] == [5]


async def test_a_status_search_pages_through_refunds_too(
    http: httpx.AsyncClient, paid: tuple[str, list[str]]
):
    customer, ids = paid
    refunded = await walk_until(
        http, "/payments", "payments", 2, customer_id=customer, status="REFUNDED", page_size=1
    )
    # No payment of this customer says REFUNDED on its own workflow: an empty first part, then
    # the Refund workflows' payments, one a page.
    assert sorted(p["payment_id"] for page in refunded for p in page) == sorted(ids[1:3])
    assert all(p["status"] == "REFUNDED" for page in refunded for p in page)
    still_paid = await walk(http, "/payments", "payments", customer_id=customer, status="PAID")
    assert sorted(p["payment_id"] for page in still_paid for p in page) == sorted(
        [ids[0], ids[3], ids[4]]
    )


async def test_a_token_of_another_search_is_refused(
    http: httpx.AsyncClient, paid: tuple[str, list[str]]
):
    customer, _ = paid
    params = {"customer_id": customer, "page_size": 1}
    first = (await http.get("/payments", params=params, headers=AUTH)).json()
    token = first["next_page_token"]
    for other in ({"customer_id": new_customer_id()}, {"status": "PAID"}, {}):
        query = {**params, **other, "page_token": token}
        if not other:
            query.pop("customer_id")
        answer = await http.get("/payments", params=query, headers=AUTH)
        assert answer.status_code == 422, answer.text
        assert [(e["field"], e["location"]) for e in answer.json()["errors"]] == [
            ("page_token", "query")
        ]
    # Another page size with the same search is fine.
    again = await http.get(
        "/payments", params={**params, "page_size": 3, "page_token": token}, headers=AUTH
    )
    assert again.status_code == 200 and len(again.json()["payments"]) == 3


async def test_a_customers_cards_page_by_page(
    stack: Stack, http: httpx.AsyncClient, kartu: KartuClient
):
    first = await stack.register(FRICTIONLESS_CARD)
    registration_id = new_key("reg")
    started = await kartu.register_card(
        registration_id,
        name="Kartu Tester",
        email="tester@example.com",
        phone_number="6281234567890",
        redirect_url="https://merchant.example/cards/done",
        customer_id=first.customer_id,
    )
    await register_card(started.webview.url, card_number=SECOND_CARD)
    second = await kartu.wait_registration(registration_id, timeout=15)
    assert second.card_token and second.card_token != first.card_token
    path = f"/customers/{first.customer_id}/cards"
    pages = await walk_until(http, path, "cards", 2, page_size=1)
    # Visibility may hand a token after a full last page: the page after it is empty.
    assert [[c["registration_id"] for c in page] for page in pages if page] == [
        [registration_id],
        [first.registration_id],
    ]
    assert (await walk(http, path, "cards")) == [pages[0] + pages[1]]


async def test_unmatched_callbacks_page_by_page(stack: Stack, http: httpx.AsyncClient):
    mine: list[str] = []
    for _ in range(3):  # signed callbacks for payments that do not exist: stored, unmatched
        transaction_id = f"{new_key('um')}-auth"
        body = {
            "type": "PAYMENT",
            "transactionId": transaction_id,
            "invoiceNumber": "INV0001",
            "operation": "AUTHORIZE",
            "status": "AUTHORIZED",
            "amount": "1000.00",
            "responseCode": "2005401",
        }
        headers = {"X-Authorization": stack.signature()}
        answer = await http.post(CALLBACK_PATH, json=body, headers=headers)
        assert answer.status_code == 202, answer.text
        mine.append(transaction_id)
    for _ in range(100):
        pages = await walk(http, "/callbacks/unmatched", "callbacks", page_size=2)
        entries = [e for page in pages for e in page]
        listed = [e["transaction_id"] for e in entries if e["transaction_id"] in mine]
        if len(listed) == 3:
            break
        await asyncio.sleep(0.1)
    assert listed == list(reversed(mine))  # newest first
    stored = [e["callback_workflow_id"] for e in entries]
    assert len(stored) == len(set(stored))  # each once across the pages
    assert all(len(page) <= 2 for page in pages[1:])
    bad = await http.get("/callbacks/unmatched", params={"page_token": "nonsense"}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["field"] == "page_token"
