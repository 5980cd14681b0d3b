"""Card registration, cards list and unbind through KartuClient, the customer played by the
sandbox's ``customer`` helper and the binding callback going through the gateway."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.customer import register_card
from starter.client import KartuClient, RegistrationNotFound
from tests.kartu_stack import FRICTIONLESS_CARD, Stack
from workflows.models import RegistrationStatus, UnbindStatus

CUSTOMER = {
    "name": "Siti Rahma",
    "email": "siti@example.com",
    "phone_number": "6281298765432",
    "redirect_url": "https://merchant.example/cards/done",
}


async def test_register_card(stack: Stack, kartu: KartuClient, key: str):
    started = await kartu.register_card(key, **CUSTOMER)
    assert started.workflow_id == f"registration-{key}"
    assert started.webview.url.startswith("http")
    # Asking again returns the same registration, not a second webview.
    assert await kartu.register_card(key, **CUSTOMER) == started
    assert (await kartu.registration_status(key)).status is RegistrationStatus.PENDING

    await register_card(started.webview.url, card_number=FRICTIONLESS_CARD)
    state = await kartu.wait_registration(key, timeout=10)
    assert state.status is RegistrationStatus.REGISTERED
    assert state.card_token and len(state.card_token) == 40 and state.customer_id
    assert state.masked_card == "411111******1111"
    # Finished: the same id still answers the same registration.
    assert (await kartu.register_card(key, **CUSTOMER)).webview == started.webview


async def test_unknown_registration(kartu: KartuClient, key: str):
    with pytest.raises(RegistrationNotFound):
        await kartu.registration_status(key)


async def test_list_cards_and_unbind(stack: Stack, kartu: KartuClient):
    card = await stack.register(FRICTIONLESS_CARD)  # its own card: the shared one stays usable
    for _ in range(50):  # the cards list reads visibility: eventually consistent
        cards = await kartu.list_cards(card.customer_id)
        if cards:
            break
        await asyncio.sleep(0.1)
    assert [(c.card_token, c.status) for c in cards] == [(card.card_token, "ACTIVE")]

    first = await kartu.unbind_card(card.card_token, customer_id=card.customer_id)
    assert first.status is UnbindStatus.UNBOUND
    # Asked again: Ayoconnect lists the token DISABLED, so the same unbind answers.
    again = await kartu.unbind_card(card.card_token, customer_id=card.customer_id)
    assert again == first
    cards = await kartu.list_cards(card.customer_id)
    assert [(c.card_token, c.status) for c in cards] == [(card.card_token, "DISABLED")]
