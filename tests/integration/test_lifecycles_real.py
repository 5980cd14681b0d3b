"""Kartu's lifecycles end to end through the REAL activities: every Ayoconnect call goes over
loopback HTTP to the sandbox, the customer's pages are filled in over HTTP, callbacks come back
signed through the real gateway app, and every test reconciles the workflow's end state with
the sandbox's ledger.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from integration_support import (
    CARD_DONE_URL,
    CARD_FAILED_URL,
    FAR_EXPIRY,
    FRICTIONLESS,
    REDIRECT_URL,
    WRONG_OTP,
    Card,
    Harness,
    new_key,
    operation,
    operations,
    record_history,
)
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, CancelledError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from ayoconnect.models import CardData
from ayoconnect.security import encrypt_card
from sandbox.customer import authenticate_3ds, register_card
from tests.history_checks import woken_by_signal
from workflows import CardUnbindWorkflow, RefundWorkflow
from workflows.ids import refund_workflow_id, unbind_workflow_id
from workflows.models import (
    ActionResult,
    CaptureCommand,
    PaymentState,
    PaymentStatus,
    RefundInput,
    RefundState,
    RefundStatus,
    RegistrationState,
    RegistrationStatus,
    ResolveCommand,
    UnbindInput,
    UnbindState,
    UnbindStatus,
    VoidCommand,
)

# --- registration ---------------------------------------------------------------------------


async def test_registration_binds_card_through_webview_and_callback(h: Harness):
    key = new_key("reg")
    webview, handle = await h.open_webview(key)
    assert webview.url.startswith(h.sandbox_url + "/webview/")

    page = await register_card(webview.url, card_number=FRICTIONLESS, expiry=FAR_EXPIRY)
    assert page.location is not None and page.location.startswith(CARD_DONE_URL)
    state: RegistrationState = await h.result(handle)

    assert state.status is RegistrationStatus.REGISTERED
    assert state.card_token is not None and len(state.card_token) == 40
    assert state.masked_card == "411111******1111"
    assert state.brand == "VISA"
    assert state.customer_id is not None and state.customer_id.startswith("CUST")
    assert state.webview == webview
    ledger = await h.control.ledger()
    [card] = [c for c in ledger["cards"] if c["cardToken"] == state.card_token]
    assert card["status"] == "ACTIVE"
    assert card["customerId"] == state.customer_id
    assert card["maskedCard"] == state.masked_card
    assert card["referenceNumber"] == webview.reference_number
    await record_history(handle, "registration_registered")


async def test_registration_with_wrong_otp_fails(h: Harness):
    key = new_key("reg")
    webview, handle = await h.open_webview(key)
    page = await register_card(
        webview.url, card_number=FRICTIONLESS, otp=WRONG_OTP, expiry=FAR_EXPIRY
    )
    assert page.location is not None and page.location.startswith(CARD_FAILED_URL)
    # A FAILED callback is a hint: it is recorded, and the registration decides when the
    # session (and its margin for late callbacks) is over, from the cards list (that end is
    # covered with skipped time in tests/workflows; skipping here would move the test server's
    # clock past every later test's webview session).
    state: RegistrationState = await h.wait_state(
        handle, lambda s: s.response_code is not None, RegistrationState
    )
    await handle.terminate("test done")

    assert state.status is RegistrationStatus.PENDING
    assert state.card_token is None
    assert state.response_code == "4000104"  # 400, webview (01), AUTHENTICATION_FAILED (04)
    ledger = await h.control.ledger()
    [session] = [s for s in ledger["sessions"] if s["reference"] == webview.reference_number]
    assert session["state"] == "done"
    assert not [c for c in ledger["cards"] if c["referenceNumber"] == webview.reference_number]


async def test_second_card_of_a_known_customer_found_in_cards_list_without_callback(
    h: Harness, cards: dict[str, Card]
):
    """The binding callback is lost: after the webview session Kartu compares the customer's
    cards list with the one taken before the webview opened."""
    customer_id = cards["frictionless"].customer_id
    await h.control.set_faults({"callback": {"drop_rate": 1.0}})
    webview, handle = await h.open_webview(new_key("reg"), customer_id=customer_id)
    await register_card(webview.url, card_number="5555555555554444", expiry=FAR_EXPIRY)

    state: RegistrationState = await h.result(handle, skip_time=True)  # past the session

    assert state.status is RegistrationStatus.REGISTERED
    assert "cards list" in state.history[-1].reason
    assert state.customer_id == customer_id
    assert state.masked_card == "555555******4444"
    ledger = await h.control.ledger()
    [card] = [c for c in ledger["cards"] if c["cardToken"] == state.card_token]
    assert (card["customerId"], card["status"]) == (customer_id, "ACTIVE")


async def test_webview_refused_by_the_provider_fails_the_update(h: Harness):
    await h.control.set_faults(
        {"generate_webview": {"fail_next": 1, "status": 400, "case": "NOT_SUPPORTED"}}
    )
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await h.open_webview(new_key("reg"))
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "WebviewFailed"


# --- direct payment -------------------------------------------------------------------------


async def test_frictionless_payment_is_paid_once(h: Harness, cards: dict[str, Card]):
    key = new_key("pay")
    outcome, handle = await h.start_payment(h.payment(key, cards["frictionless"], "150000.00"))

    assert outcome.status is PaymentStatus.PAID
    assert outcome.invoice_number
    state: PaymentState = await h.result(handle)
    assert state.status is PaymentStatus.PAID
    assert state.invoice_number == outcome.invoice_number

    payment = await h.reconcile(state)
    assert payment["status"] == "SUCCESS"
    assert payment["amounts"]["amount"] == "150000.00"
    assert operations(payment) == ["PAY"]
    assert operation(payment, "PAY")["transactionId"] == f"{key}-pay"
    await record_history(handle, "direct_paid")


async def test_same_payment_started_twice_charges_once(h: Harness, cards: dict[str, Card]):
    key = new_key("twice")
    payment = h.payment(key, cards["challenge"], "12000.00")
    first, handle = await h.start_payment(payment)
    assert first.status is PaymentStatus.CHALLENGE
    # The backend retries its request while the customer is on the 3DS page: same payment.
    second, again = await h.start_payment(payment)
    assert second == first
    assert (again.id, again.result_run_id) == (handle.id, handle.result_run_id)

    assert first.authentication_url is not None
    await authenticate_3ds(first.authentication_url)
    state: PaymentState = await h.result(handle)
    assert state.status is PaymentStatus.PAID
    # Once finished, the id is not reused (REJECT_DUPLICATE): nothing is charged again.
    with pytest.raises((WorkflowAlreadyStartedError, RPCError)):
        await h.start_payment(payment)
    payment_in_ledger = await h.reconcile(state)
    assert operations(payment_in_ledger) == ["PAY", "AUTHENTICATE"]


async def test_encrypted_card_payment(h: Harness, cards: dict[str, Card]):
    """A PCI-DSS merchant's backend sends the card as JWE: the clear PAN never enters Temporal."""
    card = CardData(
        pan=FRICTIONLESS, expiryMonth="12", expiryYear="2099", cvv="123", cardholderName="K T"
    )
    encrypted = encrypt_card(card, await h.control.public_key())
    key = new_key("jwe")
    outcome, handle = await h.start_payment(
        h.payment(key, cards["frictionless"], "18000.00", card_token=None, encrypted_card=encrypted)
    )
    assert outcome.status is PaymentStatus.PAID
    state: PaymentState = await h.result(handle)

    payment = await h.reconcile(state)
    assert (payment["cardToken"], payment["maskedCard"]) == (None, "411111******1111")
    history = await handle.fetch_history()
    assert FRICTIONLESS not in history.to_json()


@pytest.mark.parametrize(
    ("card", "gateway_code", "response_code"),
    [("declined", "DECLINED", "4005410"), ("insufficient", "INSUFFICIENT_FUNDS", "4005422")],
)
async def test_declined_payment(
    h: Harness, cards: dict[str, Card], card: str, gateway_code: str, response_code: str
):
    key = new_key("dec")
    outcome, handle = await h.start_payment(h.payment(key, cards[card], "75000.00"))

    assert outcome.status is PaymentStatus.DECLINED
    assert outcome.gateway_code == gateway_code
    assert outcome.decline_code == response_code
    state: PaymentState = await h.result(handle)
    assert state.status is PaymentStatus.DECLINED
    assert state.gateway_code == gateway_code

    payment = await h.reconcile(state)
    assert payment["status"] == "FAILED"
    assert operations(payment) == ["PAY"]
    assert operation(payment, "PAY")["responseCode"] == response_code


# --- 3DS ------------------------------------------------------------------------------------


async def callbacks_for(h: Harness, invoice_number: str) -> list[dict]:
    return [c for c in (await h.control.ledger())["callbacks"] if c["reference"] == invoice_number]


async def test_3ds_challenge_then_paid_by_callback(h: Harness, cards: dict[str, Card]):
    key = new_key("tds")
    outcome, handle = await h.start_payment(h.payment(key, cards["challenge"], "250000.00"))

    assert outcome.status is PaymentStatus.CHALLENGE
    assert outcome.authentication_url is not None
    assert outcome.authentication_url.startswith(h.sandbox_url + "/3ds/")
    assert (await h.ledger_payment(key))["status"] == "AUTHENTICATION_IN_PROGRESS"

    page = await authenticate_3ds(outcome.authentication_url)
    assert page.location is not None and page.location.startswith(REDIRECT_URL)
    # The callback woke it: the workflow task that saw its signal started the look-up.
    state = await h.wait_state(handle, lambda s: s.status is PaymentStatus.PAID, timeout=30.0)
    assert state.callbacks_received == 1
    assert await woken_by_signal(handle, "payment_callback", "payment_status")
    state = await h.result(handle)
    assert state.status is PaymentStatus.PAID

    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY", "AUTHENTICATE"]
    [callback] = await callbacks_for(h, state.invoice_number or "")
    assert callback["state"] == "delivered"
    assert callback["body"]["status"] == "SUCCESS"
    await record_history(handle, "direct_3ds_callback")


async def test_3ds_with_callbacks_lost_is_paid_by_polling(h: Harness, cards: dict[str, Card]):
    await h.control.set_faults({"callback": {"drop_rate": 1.0}})
    key = new_key("tdp")
    outcome, handle = await h.start_payment(h.payment(key, cards["challenge"], "90000.00"))
    assert outcome.status is PaymentStatus.CHALLENGE
    assert outcome.authentication_url is not None

    await authenticate_3ds(outcome.authentication_url)
    # No callback will come: the clock skips to the workflow's next status poll.
    state: PaymentState = await h.result(handle, skip_time=True)

    assert state.status is PaymentStatus.PAID
    assert state.callbacks_received == 0
    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY", "AUTHENTICATE"]
    [callback] = await callbacks_for(h, state.invoice_number or "")
    assert callback["state"] == "dropped"
    await record_history(handle, "direct_3ds_polled")


async def test_3ds_success_after_the_deadline_is_refunded(h: Harness, cards: dict[str, Card]):
    key = new_key("late")
    # The test server's clock runs in real time until skipped: room for the start and the
    # charge on a loaded machine before the deadline, which the skip below then passes.
    deadline = await h.env.get_current_time() + timedelta(seconds=20)
    outcome, handle = await h.start_payment(
        h.payment(key, cards["challenge"], "50000.00", deadline=deadline)
    )
    assert outcome.status is PaymentStatus.CHALLENGE
    assert outcome.authentication_url is not None
    await h.env.sleep(timedelta(seconds=21))  # the merchant's deadline passes (skipped)

    await authenticate_3ds(outcome.authentication_url)
    state: PaymentState = await h.wait_state(
        handle, lambda s: s.status is PaymentStatus.REFUNDED, timeout=30.0
    )
    state = await h.result(handle)

    assert state.status is PaymentStatus.REFUNDED
    assert [t.to_status for t in state.history][-2:] == ["PAID", "REFUNDED"]
    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY", "AUTHENTICATE", "REFUND"]
    assert operation(payment, "REFUND")["transactionId"] == f"{key}-rfd"  # the one refund id


async def test_3ds_wrong_otp_is_declined(h: Harness, cards: dict[str, Card]):
    key = new_key("tdx")
    outcome, handle = await h.start_payment(h.payment(key, cards["challenge"], "61000.00"))
    assert outcome.status is PaymentStatus.CHALLENGE
    assert outcome.authentication_url is not None

    await authenticate_3ds(outcome.authentication_url, otp=WRONG_OTP)
    state: PaymentState = await h.result(handle)  # decided by the callback, in real time

    assert state.status is PaymentStatus.DECLINED
    assert state.gateway_code == "AUTHENTICATION_FAILED"
    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY", "AUTHENTICATE"]


async def test_3ds_session_expired_at_the_provider_fails(h: Harness, cards: dict[str, Card]):
    key = new_key("tde")
    outcome, handle = await h.start_payment(h.payment(key, cards["challenge"], "62000.00"))
    assert outcome.status is PaymentStatus.CHALLENGE

    # The customer never answers: the provider's 300 s session runs out and it calls back.
    await h.control.advance_clock(301)
    state: PaymentState = await h.result(handle)

    assert state.status in (PaymentStatus.DECLINED, PaymentStatus.FAILED)
    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY", "AUTHENTICATE"]
    assert "expired" in (operation(payment, "AUTHENTICATE")["note"] or "")


async def test_cancelled_during_3ds_follows_the_challenge_then_refunds(
    h: Harness, cards: dict[str, Card]
):
    key = new_key("tdc")
    outcome, handle = await h.start_payment(h.payment(key, cards["challenge"], "63000.00"))
    assert outcome.status is PaymentStatus.CHALLENGE
    assert outcome.authentication_url is not None

    await handle.cancel()
    await asyncio.sleep(0.2)
    # The customer was already on the 3DS page: the issuer approves after the cancellation.
    await authenticate_3ds(outcome.authentication_url)
    with pytest.raises(WorkflowFailureError) as failed:
        await h.result(handle)
    assert isinstance(failed.value.cause, CancelledError)

    state = await h.state(handle)
    assert state.status is PaymentStatus.REFUNDED
    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY", "AUTHENTICATE", "REFUND"]
    assert operation(payment, "REFUND")["transactionId"] == f"{key}-rfd"  # the one refund id
    await record_history(handle, "direct_cancelled_in_3ds_refunded")


async def test_3ds_success_after_kartus_challenge_window_is_not_kept(
    h: Harness, cards: dict[str, Card]
):
    key = new_key("tdw")
    outcome, handle = await h.start_payment(
        h.payment(key, cards["challenge"], "64000.00", challenge_window=timedelta(seconds=2))
    )
    assert outcome.status is PaymentStatus.CHALLENGE
    assert outcome.authentication_url is not None
    await h.env.sleep(timedelta(seconds=3))  # Kartu's window ends; the provider's does not
    for _ in range(200):  # Kartu has looked the payment up at the end of its window
        counts = (await h.control.faults())["counts"].get("payment_status", {})
        if counts.get("calls", 0) >= 2:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)

    # The customer is still on the provider's page, which lasts 300 s: the issuer approves.
    await authenticate_3ds(outcome.authentication_url)
    await asyncio.sleep(0.5)  # the callback goes out (and finds the workflow as it is)
    state: PaymentState = await h.result(handle)

    # Money moved: Kartu must know it and put it back, not report FAILED over a SUCCESS.
    payment = await h.ledger_payment(key)
    assert payment["status"] != "SUCCESS" or state.status is PaymentStatus.PAID, (
        state.status,
        payment["status"],
    )
    await h.reconcile(state)


# --- auth-capture ---------------------------------------------------------------------------


async def authorize(h: Harness, card: Card, amount: str, **overrides) -> tuple:
    key = new_key("auth")
    outcome, handle = await h.start_payment(
        h.payment(key, card, amount, **overrides), auth_capture=True
    )
    assert outcome.status is PaymentStatus.AUTHORIZED, outcome
    return key, handle


async def test_authorize_then_capture_by_update(h: Harness, cards: dict[str, Card]):
    key, handle = await authorize(h, cards["frictionless"], "200000.00")
    authorized = await h.state(handle)
    assert authorized.authorized_amount == Decimal("200000.00")
    assert authorized.authorization_expires_at is not None
    assert (await h.ledger_payment(key))["status"] == "AUTHORIZED"

    result = await handle.execute_update(
        "capture_payment", CaptureCommand(requested_by="ops@merchant"), result_type=ActionResult
    )
    assert result.outcome == "captured"
    assert result.amount == Decimal("200000.00")
    state: PaymentState = await h.result(handle)

    assert state.status is PaymentStatus.CAPTURED
    assert state.captured_amount == Decimal("200000.00")
    payment = await h.reconcile(state)
    assert payment["amounts"]["captured"] == "200000.00"
    assert operations(payment) == ["AUTHORIZE", "CAPTURE"]
    assert operation(payment, "CAPTURE")["transactionId"] == f"{key}-cap"
    await record_history(handle, "auth_capture_captured")


@pytest.mark.parametrize(
    ("captured", "by_signal"),
    [("60000.00", False), ("120000.00", False), ("45000.50", True)],
    ids=["partial", "120-percent", "partial-by-signal"],
)
async def test_capture_of_another_amount(
    h: Harness, cards: dict[str, Card], captured: str, by_signal: bool
):
    _, handle = await authorize(h, cards["frictionless"], "100000.00")
    command = CaptureCommand(amount=Decimal(captured))
    if by_signal:
        await handle.signal("capture", command)
    else:
        result = await handle.execute_update("capture_payment", command, result_type=ActionResult)
        assert (result.outcome, result.amount) == ("captured", Decimal(captured))
    state: PaymentState = await h.result(handle)

    assert state.status is PaymentStatus.CAPTURED
    assert state.captured_amount == Decimal(captured)
    payment = await h.reconcile(state)
    assert payment["amounts"] == {
        "amount": "100000.00",
        "authorized": "100000.00",
        "captured": captured,
        "refunded": None,
    }


async def test_capture_above_120_percent_is_refused(h: Harness, cards: dict[str, Card]):
    key, handle = await authorize(h, cards["frictionless"], "100000.00")

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            "capture_payment", CaptureCommand(amount=Decimal("120000.01")), result_type=ActionResult
        )
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "CaptureRefused"
    assert "120 %" in cause.message
    assert (await h.state(handle)).status is PaymentStatus.AUTHORIZED
    payment = await h.ledger_payment(key)
    assert (payment["status"], operations(payment)) == ("AUTHORIZED", ["AUTHORIZE"])

    # Still capturable within the limit afterwards: nothing was spent by the refusal.
    await handle.execute_update(
        "capture_payment", CaptureCommand(amount=Decimal("100000.00")), result_type=ActionResult
    )
    state: PaymentState = await h.result(handle)
    assert state.status is PaymentStatus.CAPTURED
    await h.reconcile(state)


@pytest.mark.parametrize("by_signal", [False, True], ids=["update", "signal"])
async def test_void_releases_the_authorization(h: Harness, cards: dict[str, Card], by_signal: bool):
    key, handle = await authorize(h, cards["frictionless"], "80000.00")
    command = VoidCommand(reason="customer cancelled the order", requested_by="ops")
    if by_signal:
        await handle.signal("void", command)
    else:
        result = await handle.execute_update("void_payment", command, result_type=ActionResult)
        assert result.outcome == "voided"
    state: PaymentState = await h.result(handle)

    assert state.status is PaymentStatus.VOIDED
    payment = await h.reconcile(state)
    assert operations(payment) == ["AUTHORIZE", "VOID"]
    assert operation(payment, "VOID")["transactionId"] == f"{key}-void"
    assert state.captured_amount is None


async def test_authorization_expires_and_kartu_releases_the_hold(
    h: Harness, cards: dict[str, Card]
):
    key, handle = await authorize(h, cards["frictionless"], "65000.00")
    authorized = await h.state(handle)
    assert authorized.authorization_expires_at is not None

    state: PaymentState = await h.result(handle, skip_time=True)  # 7 days of timer

    assert state.status is PaymentStatus.EXPIRED
    assert state.history[-1].at >= authorized.authorization_expires_at
    payment = await h.reconcile(state)
    assert payment["status"] == "VOIDED"
    assert operations(payment) == ["AUTHORIZE", "VOID"]
    assert operation(payment, "VOID")["transactionId"] == f"{key}-cv"
    await record_history(handle, "auth_capture_expired_void_first")


async def test_authorization_expired_at_the_provider_is_confirmed(
    h: Harness, cards: dict[str, Card]
):
    key, handle = await authorize(h, cards["frictionless"], "65000.00")
    # The provider's window passes first: it voids the hold itself and calls back.
    advanced = await h.control.advance_clock(timedelta(days=7, minutes=1).total_seconds())
    assert advanced["expired"]
    assert (await h.ledger_payment(key))["status"] == "VOIDED"

    state: PaymentState = await h.result(handle, skip_time=True)

    assert state.status is PaymentStatus.EXPIRED
    assert "provider" in state.history[-1].reason
    payment = await h.reconcile(state)
    assert operations(payment) == ["AUTHORIZE", "EXPIRE"]  # no second void


async def test_3ds_authorization_then_capture(h: Harness, cards: dict[str, Card]):
    key = new_key("a3ds")
    outcome, handle = await h.start_payment(
        h.payment(key, cards["challenge"], "140000.00"), auth_capture=True
    )
    assert outcome.status is PaymentStatus.CHALLENGE
    assert outcome.authentication_url is not None
    await authenticate_3ds(outcome.authentication_url)
    authorized = await h.wait_state(handle, lambda s: s.status is PaymentStatus.AUTHORIZED)
    assert authorized.authorization_expires_at is not None

    await handle.execute_update("capture_payment", CaptureCommand(), result_type=ActionResult)
    state: PaymentState = await h.result(handle)

    assert state.status is PaymentStatus.CAPTURED
    payment = await h.reconcile(state)
    assert operations(payment) == ["AUTHORIZE", "AUTHENTICATE", "CAPTURE"]


async def test_capture_signal_above_limit_is_ignored_with_its_reason(
    h: Harness, cards: dict[str, Card]
):
    _, handle = await authorize(h, cards["frictionless"], "100000.00")
    await handle.signal("capture", CaptureCommand(amount=Decimal("500000.00")))
    state = await h.wait_state(handle, lambda s: any(i.name == "capture signal" for i in s.ignored))
    assert state.status is PaymentStatus.AUTHORIZED
    [ignored] = [i for i in state.ignored if i.name == "capture signal"]
    assert "120 %" in ignored.reason

    await handle.signal("void", VoidCommand(reason="order changed"))
    state = await h.result(handle)
    assert state.status is PaymentStatus.VOIDED
    payment = await h.reconcile(state)
    assert operations(payment) == ["AUTHORIZE", "VOID"]


async def test_capture_after_the_provider_voided_the_hold_is_refused(
    h: Harness, cards: dict[str, Card]
):
    # The provider's void callback is lost: Kartu learns of the void only from the capture.
    await h.control.set_faults({"callback": {"drop_rate": 1.0}})
    key, handle = await authorize(h, cards["frictionless"], "100000.00")
    await h.control.advance_clock(timedelta(days=7, minutes=1).total_seconds())
    assert (await h.ledger_payment(key))["status"] == "VOIDED"

    result = await handle.execute_update(
        "capture_payment", CaptureCommand(), result_type=ActionResult
    )
    state: PaymentState = await h.result(handle)
    await h.reconcile(state)
    # Nothing was captured: the backend must be told no, not handed a normal answer.
    assert result.outcome == "refused", result
    assert state.status is PaymentStatus.EXPIRED


async def test_provider_void_callback_expires_the_payment_after_a_look_up(
    h: Harness, cards: dict[str, Card]
):
    _, handle = await authorize(h, cards["frictionless"], "100000.00")
    await h.control.advance_clock(timedelta(days=7, minutes=1).total_seconds())
    # The sandbox voids the hold and calls back; Kartu's own 7-day timer has not fired.
    state: PaymentState = await h.result(handle)
    assert state.status is PaymentStatus.EXPIRED
    assert state.history[-1].reason == "authorization voided by the provider"
    payment = await h.reconcile(state)
    assert operations(payment) == ["AUTHORIZE", "EXPIRE"]  # the provider's own; no void sent


@pytest.mark.parametrize(
    ("policy", "ledger_status", "kartu_status", "last_op"),
    [
        ("auto_capture", "CAPTURED", PaymentStatus.CAPTURED, "CAPTURE"),
        ("auto_void", "VOIDED", PaymentStatus.VOIDED, "VOID"),
    ],
)
async def test_capture_policy_acts_before_expiry(
    h: Harness,
    cards: dict[str, Card],
    policy: str,
    ledger_status: str,
    kartu_status: PaymentStatus,
    last_op: str,
):
    _, handle = await authorize(h, cards["frictionless"], "55000.00", capture_policy=policy)
    expires_at = (await h.state(handle)).authorization_expires_at
    assert expires_at is not None

    state: PaymentState = await h.result(handle, skip_time=True)  # to expiry minus 1 h

    assert state.status is kartu_status
    assert state.history[-1].at <= expires_at - timedelta(minutes=59)
    payment = await h.reconcile(state)
    assert payment["status"] == ledger_status
    assert operations(payment) == ["AUTHORIZE", last_op]
    await record_history(handle, f"auth_capture_{policy}")


# --- compensation ---------------------------------------------------------------------------


async def test_cancelled_authorization_is_voided(h: Harness, cards: dict[str, Card]):
    key, handle = await authorize(h, cards["frictionless"], "70000.00")

    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failed:
        await h.result(handle)
    assert isinstance(failed.value.cause, CancelledError)

    state = await h.state(handle)
    assert state.status is PaymentStatus.VOIDED
    payment = await h.reconcile(state)
    assert operations(payment) == ["AUTHORIZE", "VOID"]
    assert operation(payment, "VOID")["transactionId"] == f"{key}-cv"


async def test_cancelled_while_merchant_confirmation_pending_is_refunded(
    h: Harness, cards: dict[str, Card]
):
    key = new_key("conf")
    outcome, handle = await h.start_payment(
        h.payment(
            key,
            cards["frictionless"],
            "110000.00",
            confirmation_url=h.merchant_url + "/confirm/down",
        )
    )
    assert outcome.status is PaymentStatus.PAID
    for _ in range(200):  # the merchant is being asked (and answers 503)
        if h.merchant.calls_for(key):
            break
        await asyncio.sleep(0.01)
    assert h.merchant.calls_for(key)

    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failed:
        await h.result(handle)
    assert isinstance(failed.value.cause, CancelledError)

    state = await h.state(handle)
    assert state.status is PaymentStatus.REFUNDED
    assert state.refunded_amount == Decimal("110000.00")
    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY", "REFUND"]
    assert operation(payment, "REFUND")["transactionId"] == f"{key}-rfd"  # the one refund id
    [(mode, body)] = h.merchant.calls_for(key)[:1]
    assert (mode, body["status"], body["invoice_number"]) == ("down", "PAID", state.invoice_number)


async def test_merchant_refusal_refunds_the_payment(h: Harness, cards: dict[str, Card]):
    key = new_key("refu")
    outcome, handle = await h.start_payment(
        h.payment(
            key,
            cards["frictionless"],
            "30000.00",
            confirmation_url=h.merchant_url + "/confirm/refuse",
        )
    )
    assert outcome.status is PaymentStatus.PAID
    state: PaymentState = await h.result(handle)

    assert state.status is PaymentStatus.REFUNDED
    assert "merchant confirmation failed" in state.history[-1].reason
    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY", "REFUND"]
    assert len(h.merchant.calls_for(key)) == 1  # a refusal is final: asked once


async def test_cancelled_while_charge_in_flight_is_refunded(h: Harness, cards: dict[str, Card]):
    await h.control.set_faults({"create_charge": {"latency_ms": 800}})
    key = new_key("cif")
    handle = await h.start_payment_workflow(h.payment(key, cards["frictionless"], "47000.00"))
    for _ in range(200):  # the charge request has reached the provider
        counts = (await h.control.faults())["counts"].get("create_charge", {})
        if counts.get("latency"):
            break
        await asyncio.sleep(0.01)

    await handle.cancel()  # the charge call is shielded: it finishes, then is compensated
    with pytest.raises(WorkflowFailureError) as failed:
        await h.result(handle)
    assert isinstance(failed.value.cause, CancelledError)

    state = await h.state(handle)
    assert state.status is PaymentStatus.REFUNDED
    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY", "REFUND"]


async def test_failed_compensation_waits_for_ops_then_retries(h: Harness, cards: dict[str, Card]):
    key, handle = await authorize(h, cards["frictionless"], "52000.00")
    # The provider refuses the compensating void once, with a final (non-retryable) answer.
    await h.control.set_faults({"void": {"fail_next": 1, "status": 400, "case": "NOT_SUPPORTED"}})
    await handle.cancel()
    state = await h.wait_state(handle, lambda s: s.status is PaymentStatus.NEEDS_ATTENTION)
    assert state.attention_reason and "void failed" in state.attention_reason
    assert (await h.ledger_payment(key))["status"] == "AUTHORIZED"  # nothing released yet

    await handle.signal("resolve", ResolveCommand(action="retry", resolved_by="ops"))
    with pytest.raises(WorkflowFailureError) as failed:
        await h.result(handle)
    assert isinstance(failed.value.cause, CancelledError)
    state = await h.state(handle)
    assert state.status is PaymentStatus.VOIDED
    payment = await h.reconcile(state)
    assert operations(payment) == ["AUTHORIZE", "VOID"]


# --- refund and unbind ----------------------------------------------------------------------


async def paid(h: Harness, card: Card, amount: str) -> PaymentState:
    outcome, handle = await h.start_payment(h.payment(new_key("pay"), card, amount))
    assert outcome.status is PaymentStatus.PAID
    return await h.result(handle)


async def start_refund(h: Harness, refund: RefundInput, workflow_id: str):
    return await h.start(RefundWorkflow.run, refund, workflow_id)


async def test_refund_once_then_same_answer(h: Harness, cards: dict[str, Card]):
    payment_state = await paid(h, cards["frictionless"], "125000.00")
    key = payment_state.payment_id
    assert payment_state.invoice_number is not None
    refund = RefundInput(
        payment_id=key,
        customer_id=payment_state.customer_id,
        invoice_number=payment_state.invoice_number,
        amount=payment_state.amount,
        reason="customer returned the goods",
    )
    refund_handle = await start_refund(h, refund, refund_workflow_id(key))
    first: RefundState = await h.result(refund_handle)
    assert first.status is RefundStatus.REFUNDED
    await record_history(refund_handle, "refund_refunded")

    # Asked again under the same id: the finished refund is the answer, nothing is sent.
    with pytest.raises(WorkflowAlreadyStartedError):
        await start_refund(h, refund, refund_workflow_id(key))
    again = await h.client.get_workflow_handle(
        refund_workflow_id(key), result_type=RefundState
    ).result()
    assert again == first
    # Even a second refund workflow (another id) looks the payment up and refunds nothing.
    other: RefundState = await h.result(
        await start_refund(h, refund, refund_workflow_id(key) + "_again")
    )
    assert other.status is RefundStatus.REFUNDED
    assert "already refunded" in other.history[-1].reason

    payment = await h.ledger_payment(key)
    assert payment["status"] == "REFUNDED"
    assert payment["amounts"]["refunded"] == "125000.00"
    assert operations(payment) == ["PAY", "REFUND"]
    assert operation(payment, "REFUND")["transactionId"] == f"{key}-rfd"
    assert (
        operation(payment, "REFUND")["correlationId"] == operation(payment, "PAY")["correlationId"]
    )


async def test_refund_of_a_partial_capture_refunds_the_captured_amount(
    h: Harness, cards: dict[str, Card]
):
    key, handle = await authorize(h, cards["frictionless"], "100000.00")
    await handle.execute_update(
        "capture_payment", CaptureCommand(amount=Decimal("70000.00")), result_type=ActionResult
    )
    captured: PaymentState = await h.result(handle)
    assert captured.invoice_number is not None
    refund = RefundInput(
        payment_id=key,
        customer_id=captured.customer_id,
        invoice_number=captured.invoice_number,
        amount=Decimal("70000.00"),
    )
    state: RefundState = await h.result(await start_refund(h, refund, refund_workflow_id(key)))

    assert state.status is RefundStatus.REFUNDED
    payment = await h.ledger_payment(key)
    assert payment["status"] == "REFUNDED"
    assert payment["amounts"]["refunded"] == "70000.00"
    assert operations(payment) == ["AUTHORIZE", "CAPTURE", "REFUND"]


@pytest.mark.parametrize("case", ["not-captured", "partial-amount"])
async def test_refund_refused_by_the_rules(h: Harness, cards: dict[str, Card], case: str):
    if case == "not-captured":
        key, handle = await authorize(h, cards["frictionless"], "100000.00")
        state = await h.state(handle)
        amount = state.amount
    else:
        state = await paid(h, cards["frictionless"], "100000.00")
        key, amount = state.payment_id, Decimal("40000.00")
    assert state.invoice_number is not None
    refund = RefundInput(
        payment_id=key,
        customer_id=state.customer_id,
        invoice_number=state.invoice_number,
        amount=amount,
    )
    result: RefundState = await h.result(await start_refund(h, refund, refund_workflow_id(key)))

    assert result.status is RefundStatus.FAILED
    assert result.failure
    payment = await h.ledger_payment(key)
    assert "REFUND" not in operations(payment)
    if case == "not-captured":
        await handle.signal("void", VoidCommand())
        await h.result(handle)


async def test_unbound_card_cannot_pay(h: Harness):
    card = await h.card(FRICTIONLESS)
    handle = await h.start(
        CardUnbindWorkflow.run,
        UnbindInput(card_token=card.card_token, customer_id=card.customer_id),
        unbind_workflow_id(card.card_token),
    )
    unbound: UnbindState = await h.result(handle)
    assert unbound.status is UnbindStatus.UNBOUND
    await record_history(handle, "unbind_unbound")
    ledger = await h.control.ledger()
    [in_ledger] = [c for c in ledger["cards"] if c["cardToken"] == card.card_token]
    assert in_ledger["status"] == "DISABLED"

    key = new_key("unb")
    outcome, payment = await h.start_payment(h.payment(key, card, "10000.00"))
    assert outcome.status in (PaymentStatus.DECLINED, PaymentStatus.FAILED)
    assert outcome.gateway_code == "NOT_SUPPORTED"
    state: PaymentState = await h.result(payment)
    assert state.status is outcome.status
    assert await h.ledger_payments(key) == []  # refused before anything was charged


# --- faults ---------------------------------------------------------------------------------


async def test_503_burst_on_charge_still_one_charge(h: Harness, cards: dict[str, Card]):
    await h.control.set_faults({"create_charge": {"fail_next": 2, "status": 503}})
    key = new_key("burst")
    handle = await h.start_payment_workflow(h.payment(key, cards["frictionless"], "99000.00"))
    state: PaymentState = await h.result(handle, skip_time=True)  # retry backoff skipped

    assert state.status is PaymentStatus.PAID
    counts = (await h.control.faults())["counts"]["create_charge"]
    assert (counts["calls"], counts["errors"]) == (3, 2)
    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY"]
    await record_history(handle, "direct_paid_after_503s")


async def test_charge_answer_lost_is_looked_up_not_resent(h: Harness, cards: dict[str, Card]):
    # The sandbox applies the charge, then closes the connection: the client cannot know.
    await h.control.set_faults({"create_charge": {"drop_next": 1}})
    key = new_key("drop")
    handle = await h.start_payment_workflow(h.payment(key, cards["frictionless"], "42000.00"))
    state: PaymentState = await h.result(handle, skip_time=True)

    assert state.status is PaymentStatus.PAID
    counts = (await h.control.faults())["counts"]
    assert (counts["create_charge"]["calls"], counts["create_charge"]["drops"]) == (1, 1)
    assert counts["payment_status"]["calls"] >= 1  # the retry asked by originalTransactionId
    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY"]
    await record_history(handle, "direct_paid_after_lost_answer")


async def test_3ds_charge_answer_lost_still_yields_the_challenge(
    h: Harness, cards: dict[str, Card]
):
    await h.control.set_faults({"create_charge": {"drop_next": 1}})
    key = new_key("drop3")
    outcome, handle = await h.start_payment(h.payment(key, cards["challenge"], "33000.00"))

    # The look-up finds the challenge; resending the same transactionId replays Ayoconnect's
    # stored first answer, which carries the 3DS URL. Still one payment.
    assert outcome.status is PaymentStatus.CHALLENGE
    assert outcome.authentication_url is not None
    await authenticate_3ds(outcome.authentication_url)
    await h.wait_state(handle, lambda s: s.status is PaymentStatus.PAID)
    state: PaymentState = await h.result(handle)
    payment = await h.reconcile(state)
    assert operations(payment) == ["PAY", "AUTHENTICATE"]


async def test_refund_answer_lost_refunds_once(h: Harness, cards: dict[str, Card]):
    payment_state = await paid(h, cards["frictionless"], "21000.00")
    key = payment_state.payment_id
    assert payment_state.invoice_number is not None
    await h.control.set_faults({"refund": {"drop_next": 1}})
    refund = RefundInput(
        payment_id=key,
        customer_id=payment_state.customer_id,
        invoice_number=payment_state.invoice_number,
        amount=payment_state.amount,
    )
    handle = await start_refund(h, refund, refund_workflow_id(key))
    state: RefundState = await h.result(handle, skip_time=True)  # retry backoff skipped

    assert state.status is RefundStatus.REFUNDED
    assert (await h.control.faults())["counts"]["refund"]["calls"] == 1  # looked up, not resent
    payment = await h.ledger_payment(key)
    assert payment["status"] == "REFUNDED"
    assert operations(payment) == ["PAY", "REFUND"]
