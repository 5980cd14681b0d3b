"""Callbacks: signed, retried after 1, 2 and 5 minutes (scaled by time_factor=0.001 here),
every attempt in the ledger, and the mischief a merchant must survive."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sandbox.callbacks import REORDER_HOLD_SECONDS
from sandbox.customer import register_card


async def _callbacks(control: Any) -> list[dict[str, Any]]:
    return (await control.ledger())["callbacks"]


async def _settled(control: Any, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The ledger's callbacks once ``count`` of them have left the pending state."""
    deadline = time.monotonic() + timeout
    while True:
        callbacks = await _callbacks(control)
        if len([c for c in callbacks if c["state"] != "pending"]) >= count:
            return callbacks
        assert time.monotonic() < deadline, callbacks
        await asyncio.sleep(0.02)


async def _register_without_waiting(wire: Any, pan: str = "4111111111111111") -> str:
    webview = await wire.post(
        "generate_webview_path",
        {
            "transactionId": "fault-" + pan[-4:] + str(time.monotonic_ns())[-8:],
            "customer": {"name": "A", "email": "a@example.com", "phoneNumber": "6281234567"},
            "redirectUrl": "https://merchant.example/ok",
        },
    )
    await register_card(webview.json()["webview"]["url"], card_number=pan)
    return str(webview.json()["referenceNumber"])


async def test_signature_is_bcrypt_of_secret_and_merchant_code(
    wire: Any, receiver: Any, control: Any
) -> None:
    await wire.register(receiver)
    (callback,) = receiver.received
    assert callback.signature_valid
    (record,) = await _settled(control, 1)
    assert record["state"] == "delivered"
    assert record["deliveries"][0]["httpStatus"] == 200


async def test_retries_after_non_2xx_on_the_schedule(
    wire: Any, receiver: Any, control: Any
) -> None:
    receiver.fail_next(2, status=503)
    binding = await wire.register(receiver)
    arrivals = [c.at for c in receiver.received]
    assert [c.answered for c in receiver.received] == [503, 503, 200]
    # 1 and 2 minutes, times 0.001
    assert arrivals[1] - arrivals[0] >= 0.055
    assert arrivals[2] - arrivals[1] >= 0.115
    (record,) = await _settled(control, 1)
    assert record["state"] == "delivered" and record["attempts"] == 3
    assert [d["httpStatus"] for d in record["deliveries"]] == [503, 503, 200]
    assert record["body"]["cardToken"] == binding["cardToken"]


async def test_gives_up_after_the_last_retry(wire: Any, receiver: Any, control: Any) -> None:
    receiver.fail_next(10)
    await _register_without_waiting(wire)
    (record,) = await _settled(control, 1)
    assert record["state"] == "failed"
    assert record["attempts"] == 4
    assert [d["httpStatus"] for d in record["deliveries"]] == [500, 500, 500, 500]


async def test_connection_errors_are_recorded_and_retried(
    wire: Any, receiver: Any, control: Any
) -> None:
    await control.set_callback_url("http://127.0.0.1:9/callbacks")  # discard port: refused
    await _register_without_waiting(wire)
    (record,) = await _settled(control, 1)
    assert record["state"] == "failed"
    assert {d["error"] for d in record["deliveries"]} == {"ConnectError"}


async def test_without_a_url_callbacks_are_recorded_not_sent(
    wire: Any, receiver: Any, control: Any
) -> None:
    await control.set_callback_url(None)
    await _register_without_waiting(wire)
    (record,) = await _callbacks(control)
    assert record["state"] == "recorded"
    assert record["body"]["status"] == "ACTIVE"
    await asyncio.sleep(0.05)
    assert receiver.received == []


async def test_dropped_callback_never_arrives(wire: Any, receiver: Any, control: Any) -> None:
    await control.set_faults({"callback": {"drop_next": 1}})
    await _register_without_waiting(wire)
    await asyncio.sleep(0.1)
    assert receiver.received == []
    (record,) = await _callbacks(control)
    assert record["state"] == "dropped"
    assert record["deliveries"][0]["fault"] == "drop"
    assert (await control.faults())["counts"]["callback"]["drops"] == 1


async def test_duplicated_callback_arrives_twice(wire: Any, receiver: Any, control: Any) -> None:
    await control.set_faults({"callback": {"duplicate_next": 1}})
    reference = await _register_without_waiting(wire)
    bodies = [c.body for c in await receiver.wait_for_count(2)]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert bodies[0]["referenceNumber"] == reference


async def test_delayed_callback_arrives_late(wire: Any, receiver: Any, control: Any) -> None:
    await control.set_faults({"callback": {"delay_next": 1, "delay_ms": 300}})
    started = time.monotonic()
    reference = await _register_without_waiting(wire)
    callback = await receiver.wait_for(lambda c: c.body["referenceNumber"] == reference)
    assert callback.at - started >= 0.3


async def test_reordered_callback_arrives_after_the_next_one(
    wire: Any, receiver: Any, control: Any
) -> None:
    await control.set_faults({"callback": {"reorder_next": 1}})
    first = await _register_without_waiting(wire)
    second = await _register_without_waiting(wire, "5555555555554444")
    await receiver.wait_for(lambda c: c.body["referenceNumber"] == first)
    order = [c.body["referenceNumber"] for c in receiver.received]
    assert order == [second, first]
    assert REORDER_HOLD_SECONDS > 1  # a lone reordered callback still goes out eventually
