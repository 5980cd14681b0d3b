"""Every ``kartu`` command end to end against ``kartu up``: real dev server, sandbox, gateway
and worker; the customer's part played with ``kartu sandbox``. Outputs parsed from ``--json``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cli_stack import REDIRECT_URL, RegisteredCard, Up, new_id


def eventually(read: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 10) -> Any:
    """Visibility (payments, cards lists) is eventually consistent."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def pay_args(command: str, payment: str, card: RegisteredCard, amount: str) -> list[str]:
    customer = ["--customer", card.customer_id]
    return [command, payment, *customer, "--amount", amount, "--card-token", card.token]


def test_pay_then_status(kartu_up: Up, card: RegisteredCard) -> None:
    payment = new_id("pay")
    args = pay_args("pay", payment, card, "150000.00")
    outcome = kartu_up.kartu(*args, "--json").json()
    assert outcome["status"] == "PAID"
    assert outcome["payment_id"] == payment
    assert outcome["workflow_id"] == f"payment-{payment}"
    assert outcome["invoice_number"]

    state = kartu_up.kartu("status", payment, "--json").json()
    assert state["status"] == "PAID"
    assert state["flow"] == "DIRECT"
    assert state["amount"] == "150000.00"
    assert state["customer_id"] == card.customer_id
    assert [t["to_status"] for t in state["history"]] == ["PAID"]

    # The payment id is the idempotency key: the same request answers the same payment...
    again = kartu_up.kartu(*args, "--json").json()
    assert again["invoice_number"] == outcome["invoice_number"]
    # ...and another amount under the same id is refused, in one line.
    other = pay_args("pay", payment, card, "9000")
    refused = kartu_up.kartu(*other)
    assert refused.code == 1
    assert refused.err.count("\n") == 1
    assert "already exists with another amount" in refused.err

    human = kartu_up.kartu("status", payment)
    assert human.code == 0
    assert "PAID" in human.out
    assert f"payment-{payment}" in human.out


def test_pay_with_3ds(kartu_up: Up, challenge_card: RegisteredCard) -> None:
    payment = new_id("tds")
    args = pay_args("pay", payment, challenge_card, "75000.50")
    outcome = kartu_up.kartu(*args, "--json").json()
    assert outcome["status"] == "CHALLENGE"
    url = outcome["authentication_url"]
    assert url.startswith(kartu_up.env["KARTU_SANDBOX_URL"] + "/3ds/")

    page = kartu_up.kartu("sandbox", "3ds", url, "--otp", "123456", "--json").json()
    assert page == {"status_code": 303, "redirected_to": REDIRECT_URL}

    state = kartu_up.kartu("status", payment, "--wait", "30", "--json").json()
    assert state["status"] == "PAID"
    assert state["amount"] == "75000.50"
    assert [t["to_status"] for t in state["history"]] == ["CHALLENGE", "PAID"]


def test_authorize_capture(kartu_up: Up, card: RegisteredCard) -> None:
    payment = new_id("cap")
    args = pay_args("authorize", payment, card, "200000")
    outcome = kartu_up.kartu(*args, "--json").json()
    assert outcome["status"] == "AUTHORIZED"

    captured = kartu_up.kartu(
        "capture", payment, "--amount", "180000.25", "--requested-by", "ops", "--json"
    ).json()
    assert captured == {
        "outcome": "captured",
        "reason": None,
        "status": "CAPTURED",
        "amount": "180000.25",
    }
    state = kartu_up.kartu("status", payment, "--json").json()
    assert state["status"] == "CAPTURED"
    assert state["flow"] == "AUTH_CAPTURE"
    assert state["captured_amount"] == "180000.25"

    twice = kartu_up.kartu("capture", payment)
    assert twice.code == 1
    assert twice.err.startswith("kartu capture: error: refused: ")
    assert "CAPTURED" in twice.err
    assert twice.err.count("\n") == 1


def test_authorize_void(kartu_up: Up, card: RegisteredCard) -> None:
    payment = new_id("void")
    args = pay_args("authorize", payment, card, "50000")
    outcome = kartu_up.kartu(*args, "--json").json()
    assert outcome["status"] == "AUTHORIZED"

    voided = kartu_up.kartu("void", payment, "--reason", "customer cancelled", "--json").json()
    assert voided["outcome"] == "voided"
    assert voided["status"] == "VOIDED"
    assert kartu_up.kartu("status", payment, "--json").json()["status"] == "VOIDED"

    after = kartu_up.kartu("capture", payment)
    assert after.code == 1
    assert "VOIDED" in after.err


def test_refund(kartu_up: Up, card: RegisteredCard) -> None:
    payment = new_id("rfd")
    args = pay_args("pay", payment, card, "99000")
    assert kartu_up.kartu(*args, "--json").json()["status"] == "PAID"

    refund = kartu_up.kartu("refund", payment, "--reason", "returned", "--json").json()
    assert refund["status"] == "REFUNDED"
    assert refund["amount"] == "99000.00"
    assert refund["workflow_id"] == f"refund-{payment}"
    assert refund["reason"] == "returned"

    both = kartu_up.kartu("status", payment, "--refund", "--json").json()
    assert both["payment"]["payment_id"] == payment
    assert both["refund"]["status"] == "REFUNDED"
    # The payment itself reads REFUNDED, with when and why.
    state = kartu_up.kartu("status", payment, "--json").json()
    assert state["status"] == "REFUNDED"
    assert state["refund_reason"] == "returned" and state["refunded_amount"] == "99000.00"
    assert [t["to_status"] for t in state["history"]] == ["PAID", "REFUNDED"]
    refunded = eventually(
        lambda: kartu_up.kartu("payments", "--status", "REFUNDED", "--json").json(),
        lambda rows: payment in {r["payment_id"] for r in rows},
    )
    assert {r["status"] for r in refunded if r["payment_id"] == payment} == {"REFUNDED"}
    paid = kartu_up.kartu("payments", "--status", "PAID", "--json").json()
    assert payment not in {r["payment_id"] for r in paid}
    # Asking again answers the same refund; a refund of an unknown payment is not found.
    assert kartu_up.kartu("refund", payment, "--json").json()["status"] == "REFUNDED"
    missing = kartu_up.kartu("refund", new_id("none"))
    assert missing.code == 1
    assert "no payment" in missing.err


def test_status_beside_the_provider(kartu_up: Up, card: RegisteredCard) -> None:
    payment = new_id("prv")
    assert kartu_up.kartu(*pay_args("pay", payment, card, "12500"), "--json").json()["status"]
    both = kartu_up.kartu("status", payment, "--provider", "--json").json()
    assert both["payment"]["status"] == "PAID"
    provider = both["provider"]
    assert provider["outcome"] == "found"
    assert provider["payment"]["status"] == "SUCCESS"
    assert provider["payment"]["amount"] == "12500.00"
    assert provider["payment"]["invoiceNumber"] == both["payment"]["invoice_number"]

    human = kartu_up.kartu("status", payment, "--provider")
    assert human.code == 0, human.err
    assert "Kartu beside Ayoconnect" in human.out
    assert "FIELD" in human.out and "AYOCONNECT" in human.out
    assert "SUCCESS" in human.out


def test_payments_search(kartu_up: Up, card: RegisteredCard) -> None:
    paid, held = new_id("spay"), new_id("sauth")
    assert kartu_up.kartu(*pay_args("pay", paid, card, "1000"), "--json").json()["status"] == "PAID"
    assert (
        kartu_up.kartu(*pay_args("authorize", held, card, "2000"), "--json").json()["status"]
        == "AUTHORIZED"
    )

    def search(*criteria: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = kartu_up.kartu(
            "payments", "--customer", card.customer_id, *criteria, "--json"
        ).json()
        return found

    mine = eventually(search, lambda rows: {paid, held} <= {r["payment_id"] for r in rows})
    assert {paid, held} <= {r["payment_id"] for r in mine}

    authorized = eventually(
        lambda: search("--status", "authorized"),
        lambda rows: held in {r["payment_id"] for r in rows},
    )
    assert held in {r["payment_id"] for r in authorized}
    assert {r["status"] for r in authorized} == {"AUTHORIZED"}
    row = next(r for r in authorized if r["payment_id"] == held)
    assert row["flow"] == "AUTH_CAPTURE"
    assert row["amount"] == 2000
    assert row["authorization_expires_at"]

    expiring = search("--expiring-before", "+1h", "--flow", "auth_capture")
    assert held in {r["payment_id"] for r in expiring}
    assert paid not in {r["payment_id"] for r in expiring}

    query = kartu_up.kartu("payments", "--status", "PAID", "--query", "--json").json()
    assert "KartuPaymentStatus = 'PAID'" in query["query"]
    query = kartu_up.kartu("payments", "--status", "REFUNDED", "--query", "--json").json()
    assert "KartuFlow = 'REFUND'" in query["refunds_query"]

    kartu_up.kartu("void", held, "--json").json()


def test_cards_and_unbind(
    kartu_up: Up, card: RegisteredCard, challenge_card: RegisteredCard
) -> None:
    def cards() -> dict[str, str]:
        listed = kartu_up.kartu("cards", card.customer_id, "--json").json()
        assert listed["provider"] == "found", listed
        return {r["card_token"]: r["status"] for r in listed["cards"]}

    listed = eventually(cards, lambda c: {card.token, challenge_card.token} <= set(c))
    assert listed[card.token] == "ACTIVE"
    assert listed[challenge_card.token] == "ACTIVE"
    rows = kartu_up.kartu("cards", card.customer_id, "--json").json()["cards"]
    assert all(r["registration_id"] and r["expiry_year"] for r in rows)

    human = kartu_up.kartu("cards", card.customer_id)
    assert "Ayoconnect's cards" in human.out
    for header in ("CARD TOKEN", "EXPIRY", "AYOCONNECT", "KARTU", "REGISTRATION ID"):
        assert header in human.out
    assert "ACTIVE" in human.out

    unbound = kartu_up.kartu(
        "unbind", challenge_card.token, "--customer", challenge_card.customer_id, "--json"
    ).json()
    assert unbound["status"] == "UNBOUND"
    assert unbound["customer_id"] == challenge_card.customer_id

    after = cards()
    assert after[challenge_card.token] == "DISABLED"
    assert after[card.token] == "ACTIVE"


def test_sandbox_clock_and_ledger(kartu_up: Up) -> None:
    before = kartu_up.kartu("sandbox", "clock", "--json").json()
    moved = kartu_up.kartu("sandbox", "advance", "1", "--json").json()
    assert moved["offsetSeconds"] == before["offsetSeconds"] + 1
    assert "expired" in moved

    ledger = kartu_up.kartu("sandbox", "ledger", "--json").json()
    assert {"payments", "cards", "callbacks"} <= set(ledger)
    assert ledger["payments"], "the other tests' payments are in the sandbox's ledger"

    human = kartu_up.kartu("sandbox", "ledger")
    assert human.code == 0
    assert "sandbox clock:" in human.out
