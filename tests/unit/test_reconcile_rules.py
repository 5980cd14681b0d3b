"""The reconciliation rule (``workflows.reconcile_rules.compare``): every verdict, every kind of
difference, and the cases that must NOT be a difference (a payment still moving, an expiry being
recorded, amounts written differently)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ayoconnect.models import Operation, PaymentDetail
from ayoconnect.models import PaymentStatus as Wire
from workflows.models import PaymentFlow
from workflows.models import PaymentStatus as K
from workflows.reconcile_rules import callback_claims_money, callback_note, compare
from workflows.reconciliation_models import KartuView, Observation, PaymentRef, Verdict

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def kartu(status: K, **fields: Any) -> KartuView:
    values: dict[str, Any] = {
        "payment_id": "p_1",
        "workflow_id": "payment-p_1",
        "flow": PaymentFlow.DIRECT,
        "status": status,
        "amount": Decimal("150000.00"),
        "customer_id": "CUST000123",
        "invoice_number": "INV-1",
    }
    values.update(fields)
    return KartuView(**values)


def provider(status: Wire, **fields: Any) -> PaymentDetail:
    values: dict[str, Any] = {
        "invoiceNumber": "INV-1",
        "originalTransactionId": "p_1-pay",
        "operation": Operation.PAY,
        "status": status,
        "amount": Decimal("150000.00"),
    }
    values.update(fields)
    return PaymentDetail(**values)


def observe(
    k: KartuView | None,
    p: PaymentDetail | None,
    *,
    running: bool | None = False,
    outcome: str | None = None,
    at: datetime = NOW,
) -> Observation:
    return Observation(
        ref=PaymentRef(payment_id="p_1", workflow_id="payment-p_1", running=running),
        observed_at=at,
        kartu=k,
        kartu_error=None if k else "query failed",
        provider_outcome=outcome or ("found" if p is not None else "not_found"),
        provider=p,
    )


@pytest.mark.parametrize(
    ("status", "wire"),
    [
        (K.PAID, Wire.SUCCESS),
        (K.AUTHORIZED, Wire.AUTHORIZED),
        (K.CAPTURED, Wire.CAPTURED),
        (K.VOIDED, Wire.VOIDED),
        (K.EXPIRED, Wire.VOIDED),
        (K.DECLINED, Wire.FAILED),
        (K.FAILED, Wire.FAILED),
        (K.REFUNDED, Wire.REFUNDED),
    ],
)
def test_settled_statuses_that_agree(status: K, wire: Wire) -> None:
    result = compare(observe(kartu(status), provider(wire)))
    assert result.verdict is Verdict.AGREE
    assert result.differences == ()


@pytest.mark.parametrize(
    ("status", "wire", "words"),
    [
        (K.PAID, Wire.REFUNDED, "a refund Kartu does not know of: Kartu says PAID"),
        (K.CAPTURED, Wire.REFUNDED, "a refund Kartu does not know of: Kartu says CAPTURED"),
        (K.FAILED, Wire.SUCCESS, "a charge Kartu calls FAILED: the provider says SUCCESS"),
        (K.DECLINED, Wire.SUCCESS, "a charge Kartu calls DECLINED"),
        (K.EXPIRED, Wire.AUTHORIZED, "a charge Kartu calls EXPIRED: the provider says AUTHORIZED"),
        (K.VOIDED, Wire.CAPTURED, "a charge Kartu calls VOIDED: the provider says CAPTURED"),
        (K.REFUNDED, Wire.SUCCESS, "the refund is not at the provider"),
        (K.REFUNDED, Wire.CAPTURED, "Kartu says REFUNDED, the provider says CAPTURED"),
        (K.PAID, Wire.FAILED, "the provider took no money"),
        (K.AUTHORIZED, Wire.CAPTURED, "a capture Kartu does not know of"),
        (K.AUTHORIZED, Wire.VOIDED, "a void Kartu does not know of"),
        (K.CAPTURED, Wire.AUTHORIZED, "the capture is not at the provider"),
        (K.PAID, Wire.AUTHENTICATION_IN_PROGRESS, "the provider has not decided"),
        (K.FAILED, Wire.REFUNDED, "status: Kartu says FAILED, the provider says REFUNDED"),
    ],
)
def test_status_differences_say_what_happened(status: K, wire: Wire, words: str) -> None:
    result = compare(observe(kartu(status), provider(wire)))
    assert result.verdict is Verdict.DIFFER
    assert len(result.differences) == 1 and words in result.differences[0], result.differences


def test_a_charge_kartu_calls_pending_provider_is_a_difference_even_while_running() -> None:
    result = compare(observe(kartu(K.PENDING_PROVIDER), provider(Wire.SUCCESS), running=True))
    assert result.verdict is Verdict.DIFFER
    assert result.differences == (
        "a charge Kartu calls PENDING_PROVIDER: the provider says SUCCESS",
    )


@pytest.mark.parametrize("status", [K.PENDING, K.CHALLENGE, K.PENDING_PROVIDER])
@pytest.mark.parametrize("wire", [None, Wire.INITIATED, Wire.AUTHENTICATION_IN_PROGRESS])
def test_a_payment_still_moving_is_not_a_difference(status: K, wire: Wire | None) -> None:
    p = provider(wire) if wire is not None else None
    result = compare(observe(kartu(status, invoice_number=None), p, running=True))
    assert result.verdict is Verdict.IN_PROGRESS


@pytest.mark.parametrize("running", [True, None])
def test_a_running_challenge_the_provider_already_decided_is_left_to_its_workflow(
    running: bool | None,
) -> None:
    """The callback is on its way or the 3DS poll is due: the workflow learns it itself."""
    result = compare(observe(kartu(K.CHALLENGE), provider(Wire.SUCCESS), running=running))
    assert result.verdict is Verdict.IN_PROGRESS


def test_a_closed_workflow_left_undecided_while_the_provider_took_money() -> None:
    result = compare(observe(kartu(K.CHALLENGE), provider(Wire.SUCCESS), running=False))
    assert result.verdict is Verdict.DIFFER
    assert "a charge Kartu calls CHALLENGE (its workflow closed)" in result.differences[0]
    still_3ds = compare(
        observe(kartu(K.PENDING), provider(Wire.AUTHENTICATION_IN_PROGRESS), running=False)
    )
    assert still_3ds.verdict is Verdict.DIFFER
    nothing_taken = compare(observe(kartu(K.PENDING), provider(Wire.FAILED), running=False))
    assert nothing_taken.verdict is Verdict.AGREE


@pytest.mark.parametrize("wire", [None, Wire.SUCCESS, Wire.REFUNDED])
def test_needs_attention_is_already_with_ops(wire: Wire | None) -> None:
    p = provider(wire) if wire is not None else None
    result = compare(observe(kartu(K.NEEDS_ATTENTION), p, running=True))
    assert result.verdict is Verdict.AWAITING_OPS
    assert result.differences == ()


@pytest.mark.parametrize("status", [K.PAID, K.AUTHORIZED, K.CAPTURED, K.REFUNDED, K.VOIDED])
def test_money_kartu_claims_at_a_provider_that_does_not_know_the_payment(status: K) -> None:
    result = compare(observe(kartu(status), None))
    assert result.verdict is Verdict.DIFFER
    assert result.differences == (f"Kartu says {status}, the provider does not know the payment",)


@pytest.mark.parametrize("status", [K.FAILED, K.DECLINED])
def test_a_failed_payment_the_provider_never_recorded_is_unknown_not_different(
    status: K,
) -> None:
    result = compare(observe(kartu(status, invoice_number=None), None))
    assert result.verdict is Verdict.UNKNOWN
    assert result.reason == "the provider does not know the payment"


def test_a_provider_that_could_not_be_asked_or_a_state_that_could_not_be_read() -> None:
    down = observe(kartu(K.PAID), None, outcome="unavailable")
    assert compare(down).verdict is Verdict.UNKNOWN
    unread = compare(observe(None, provider(Wire.REFUNDED)))
    assert unread.verdict is Verdict.UNKNOWN and unread.reason == "query failed"


def test_amounts_both_sides_know_must_match() -> None:
    same = kartu(K.CAPTURED, authorized_amount=Decimal("150000"), captured_amount=Decimal("1E5"))
    agree = provider(
        Wire.CAPTURED,
        amount=Decimal("150000"),
        authorizedAmount=Decimal("150000.00"),
        capturedAmount=Decimal("100000.00"),
    )
    assert compare(observe(same, agree)).verdict is Verdict.AGREE
    other = provider(
        Wire.CAPTURED,
        amount=Decimal("140000.00"),
        authorizedAmount=Decimal("150000.00"),
        capturedAmount=Decimal("120000.00"),
    )
    result = compare(observe(same, other))
    assert result.verdict is Verdict.DIFFER
    assert result.differences == (
        "amount: Kartu 150000.00, provider 140000.00",
        "captured amount: Kartu 100000.00, provider 120000.00",
    )


def test_an_amount_only_one_side_knows_is_not_a_difference() -> None:
    result = compare(
        observe(kartu(K.REFUNDED), provider(Wire.REFUNDED, refundedAmount=Decimal("150000")))
    )
    assert result.verdict is Verdict.AGREE


def test_a_status_and_an_amount_difference_are_both_reported() -> None:
    p = provider(Wire.REFUNDED, amount=Decimal("1.00"))
    result = compare(observe(kartu(K.PAID), p))
    assert [d.split(":")[0] for d in result.differences] == [
        "a refund Kartu does not know of",
        "amount",
    ]


def test_an_authorization_the_provider_voided_at_its_expiry_is_being_recorded() -> None:
    expiry = NOW - timedelta(minutes=5)
    k = kartu(K.AUTHORIZED, flow=PaymentFlow.AUTH_CAPTURE, authorization_expires_at=expiry)
    voided = provider(Wire.VOIDED, operation=Operation.AUTHORIZE)
    assert compare(observe(k, voided, running=True)).verdict is Verdict.IN_PROGRESS
    # Long past the expiry, or a closed workflow, or before the expiry: a void Kartu missed.
    late = observe(k, voided, running=True, at=expiry + timedelta(hours=2))
    assert compare(late).verdict is Verdict.DIFFER
    assert compare(observe(k, voided, running=False)).verdict is Verdict.DIFFER
    early = observe(k, voided, running=True, at=expiry - timedelta(minutes=1))
    assert compare(early).verdict is Verdict.DIFFER


def test_a_naive_provider_expiry_is_read_as_jakarta_time() -> None:
    naive = (NOW - timedelta(minutes=5)).astimezone(UTC).replace(tzinfo=None) + timedelta(hours=7)
    k = kartu(K.AUTHORIZED, flow=PaymentFlow.AUTH_CAPTURE)
    voided = provider(Wire.VOIDED, authorizationExpiresAt=naive)
    assert compare(observe(k, voided, running=True)).verdict is Verdict.IN_PROGRESS


def test_callback_helpers() -> None:
    assert callback_claims_money("SUCCESS") and callback_claims_money("AUTHORIZED")
    assert not callback_claims_money("FAILED") and not callback_claims_money("VOIDED")
    assert callback_note("SUCCESS", provider(Wire.SUCCESS)) is None
    assert callback_note("SUCCESS", None) is None
    note = callback_note("SUCCESS", provider(Wire.FAILED))
    assert note == "the callback said SUCCESS, the provider's status API says FAILED"


def test_a_running_compensation_or_late_result_watch_is_left_to_its_workflow() -> None:
    refunding = kartu(K.PAID, pending_compensation="refund")
    assert compare(observe(refunding, provider(Wire.REFUNDED), running=True)).verdict is (
        Verdict.IN_PROGRESS
    )
    # Once its workflow closed, nobody is bringing it in line: a difference.
    assert compare(observe(refunding, provider(Wire.REFUNDED))).verdict is Verdict.DIFFER

    watching = kartu(K.FAILED, late_result_watch_until=NOW + timedelta(minutes=10))
    late = provider(Wire.SUCCESS)
    assert compare(observe(watching, late, running=True)).verdict is Verdict.IN_PROGRESS
    after = observe(watching, late, running=True, at=NOW + timedelta(minutes=11))
    assert compare(after).differences == ("a charge Kartu calls FAILED: the provider says SUCCESS",)
    # A status that already agrees is compared as usual (its amounts too).
    other_amount = provider(Wire.SUCCESS, amount=Decimal("1.00"))
    busy = kartu(K.PAID, pending_compensation="refund")
    assert compare(observe(busy, other_amount, running=True)).verdict is Verdict.DIFFER


# --- late callbacks for closed payments ------------------------------------------------------


def _payment_callback(status: str):
    from ayoconnect.models import Operation, PaymentCallback
    from ayoconnect.models import PaymentStatus as WireStatus

    return PaymentCallback(
        type="PAYMENT",
        transactionId="abc-pay",
        invoiceNumber="INV1",
        operation=Operation.PAY,
        status=WireStatus(status),
        amount="1000.00",
        responseCode="2005401",
    )


@pytest.mark.parametrize(
    ("callback", "closed", "agrees"),
    [
        ("SUCCESS", "PAID", True),
        ("SUCCESS", "REFUNDED", True),
        ("SUCCESS", "FAILED", False),  # money Kartu says was not taken: store and check
        ("AUTHORIZED", "CAPTURED", True),
        ("FAILED", "PAID", False),
        ("FAILED", "DECLINED", True),
        ("SUCCESS", "NOT_A_STATUS", False),
    ],
)
def test_a_late_callback_agrees_only_with_what_kartu_closed_as(callback, closed, agrees):
    from workflows.reconcile_rules import callback_agrees

    assert callback_agrees(_payment_callback(callback), closed) is agrees
