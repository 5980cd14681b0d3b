"""Registration, cards list and unbinding through the real client."""

from __future__ import annotations

from typing import Any

import pytest

from ayoconnect import NotFoundError, RuleViolationError
from ayoconnect.models import CardStatus, UnbindRequest
from sandbox import TEST_CARDS


@pytest.mark.parametrize("card", TEST_CARDS, ids=lambda c: f"{c.outcome.value}-{c.number}")
async def test_every_test_card_registers_as_documented(register: Any, card: Any) -> None:
    binding = await register(card.number)
    if card.binds:
        assert binding.status == "ACTIVE"
        assert binding.responseCode == "2000101"
        assert binding.cardToken is not None and len(binding.cardToken) == 40
        assert binding.maskedCard == card.number[:6] + "******" + card.number[-4:]
        assert binding.brand == card.brand
    else:
        assert binding.status == "FAILED"
        assert binding.cardToken is None
        assert binding.responseCode == f"40001{card.decline_code.value}"


async def test_wrong_otp_fails_registration(register: Any) -> None:
    binding = await register(otp="654321")
    assert binding.status == "FAILED"
    assert binding.responseCode == "4000104"


async def test_cards_list_shows_every_card_of_the_customer(
    register: Any, client: Any, cid: str, ids: Any
) -> None:
    first = await register("4111111111111111")
    second = await register("5555555555554444", customer_id=first.customerId)
    listed = await client.list_cards(
        transaction_id=ids("list"), customer_id=first.customerId, correlation_id=cid
    )
    assert listed.responseCode == "2000301"
    assert listed.customerId == first.customerId
    assert [(c.cardToken, c.brand, c.status) for c in listed.cards] == [
        (first.cardToken, "VISA", CardStatus.ACTIVE),
        (second.cardToken, "MASTERCARD", CardStatus.ACTIVE),
    ]
    assert listed.cards[1].maskedCard == "555555******4444"


async def test_unbind_disables_the_token_for_good(
    register: Any, client: Any, charge: Any, cid: str, ids: Any
) -> None:
    card = await register()
    request = UnbindRequest(
        transactionId=ids("unbind"), customerId=card.customerId, cardToken=card.cardToken
    )
    answer = await client.unbind(request, correlation_id=cid)
    assert (answer.status, answer.cardToken, answer.responseCode) == (
        CardStatus.DISABLED,
        card.cardToken,
        "2000401",
    )
    listed = await client.list_cards(
        transaction_id=ids("list"), customer_id=card.customerId, correlation_id=cid
    )
    assert listed.cards[0].status is CardStatus.DISABLED

    with pytest.raises(RuleViolationError) as paying:
        await charge(card)
    assert paying.value.response_code == "4005426"
    with pytest.raises(RuleViolationError):
        await client.unbind(
            request.model_copy(update={"transactionId": ids("unbind")}), correlation_id=cid
        )


async def test_unknown_customer_and_foreign_token(
    register: Any, client: Any, cid: str, ids: Any
) -> None:
    with pytest.raises(NotFoundError):
        await client.list_cards(transaction_id=ids(), customer_id="NOBODY1234", correlation_id=cid)
    mine, theirs = await register(), await register()
    with pytest.raises(NotFoundError):
        await client.unbind(
            UnbindRequest(
                transactionId=ids("unbind"), customerId=mine.customerId, cardToken=theirs.cardToken
            ),
            correlation_id=cid,
        )
