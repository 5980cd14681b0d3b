"""The sandbox clock: advancing it applies authorization expiry and token expiry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

DAY = 24 * 3600


async def _authorize(wire: Any, receiver: Any, tid: str = "auth-1") -> dict[str, Any]:
    binding = await wire.register(receiver)
    response = await wire.post(
        "create_charge_path",
        {
            "transactionId": tid,
            "customerId": binding["customerId"],
            "operation": "AUTHORIZE",
            "cardToken": binding["cardToken"],
            "order": {"id": "o-auth", "amount": "100000.00"},
        },
    )
    assert response.status_code == 200, response.text
    return {**response.json(), "customerId": binding["customerId"]}


async def test_clock_reports_and_advances(control: Any) -> None:
    before = await control.clock()
    assert before["offsetSeconds"] == 0
    after = await control.advance_clock(DAY)
    assert after["offsetSeconds"] == DAY
    moved = datetime.fromisoformat(after["utc"]) - datetime.fromisoformat(before["utc"])
    assert timedelta(days=1) <= moved < timedelta(days=1, seconds=5)


async def test_clock_never_goes_back(wire: Any) -> None:
    response = await wire.http.post("/_sandbox/clock/advance", json={"seconds": -1})
    assert response.status_code == 400


async def test_authorization_window_is_seven_days(wire: Any, receiver: Any) -> None:
    answer = await _authorize(wire, receiver)
    expires = datetime.fromisoformat(answer["authorizationExpiresAt"])
    responded = datetime.fromisoformat(answer["responseTime"])
    assert expires - responded == timedelta(days=7)


async def test_authorization_voids_itself_when_the_window_passes(
    wire: Any, receiver: Any, control: Any
) -> None:
    answer = await _authorize(wire, receiver)
    await control.advance_clock(7 * DAY - 60)
    assert (await control.payment("auth-1"))["state"] == "AUTHORIZED"

    advanced = await control.advance_clock(120)
    assert advanced["expired"] == 1
    payment = await control.payment("auth-1")
    assert payment["state"] == "VOIDED"
    expiry = payment["operations"][-1]
    assert expiry["operation"] == "EXPIRE" and expiry["transactionId"] is None
    assert expiry["amount"] == "100000.00"

    callback = await receiver.wait_for(
        lambda c: (
            c.body.get("invoiceNumber") == answer["invoiceNumber"] and c.body["status"] == "VOIDED"
        )
    )
    assert callback.body["operation"] == "AUTHORIZE"
    assert callback.body["responseCode"] == "2005701"

    wire.forget_token()  # a week passed: the old token expired long ago
    capture = await wire.post(
        "create_charge_path",
        {
            "transactionId": "cap-late",
            "customerId": answer["customerId"],
            "operation": "CAPTURE",
            "invoiceNumber": answer["invoiceNumber"],
            "amount": "100000.00",
        },
    )
    assert capture.status_code == 400
    assert capture.json()["responseCode"] == "4005426"


# A minute either side of the hour: the sandbox clock runs in real time between the token's
# issue and the call, and a loaded machine can take more than a second over the two requests.
@pytest.mark.parametrize("seconds", [3540, 3660])
async def test_tokens_live_3600_seconds_of_sandbox_time(
    wire: Any, control: Any, seconds: int
) -> None:
    headers = await wire.headers()
    await control.advance_clock(seconds)
    response = await wire.get(
        "cards_list_path", {"transactionId": "c1", "customerId": "NOBODY123"}, headers=headers
    )
    assert response.status_code == (404 if seconds < 3600 else 401)
