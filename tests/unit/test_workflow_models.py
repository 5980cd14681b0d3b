"""workflows.models, policies, search attributes and worker settings: the rules they promise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice

import pytest
from pydantic import ValidationError

from workflows import ids, policies
from workflows import search_attributes as sa
from workflows.models import (
    CLOSE_STATUSES,
    DEFAULT_WEBVIEW_MARGIN,
    MAX_CHALLENGE_WINDOW,
    PaymentFlow,
    PaymentInput,
    PaymentRequestSummary,
    PaymentStatus,
    RegistrationInput,
    ResolveCommand,
)
from workflows.provider_time import JAKARTA, aware, aware_or_none

TOKEN = "T" * 40


def payment(**overrides):
    fields = {
        "payment_id": "order_1",
        "customer_id": "CUST000123",
        "amount": Decimal("150000.00"),
        "card_token": TOKEN,
        "redirect_url": "https://merchant.test/r",
    }
    fields.update(overrides)
    return PaymentInput(**fields)


def test_payment_defaults():
    p = payment()
    assert p.authorization_window == timedelta(days=7)
    assert p.challenge_window == timedelta(seconds=300)
    assert p.capture_policy.value == "none"
    assert TOKEN not in repr(p)


@pytest.mark.parametrize(
    "overrides",
    [
        {"payment_id": "bad-id"},
        {"payment_id": "x" * 27},
        {"amount": 1.5},
        {"amount": Decimal("1.001")},
        {"amount": Decimal("0")},
        {"encrypted_card": "eyJ..."},  # both card forms
        {"card_token": None},  # neither
        {"challenge_window": timedelta(0)},
        {"challenge_window": timedelta(minutes=31)},
        {"deadline": datetime(2030, 1, 1, 12, 0)},  # naive: cannot compare with workflow time
    ],
)
def test_payment_input_refuses(overrides):
    with pytest.raises(ValidationError) as raised:
        payment(**overrides)
    assert TOKEN not in str(raised.value)


def test_encrypted_card_instead_of_token():
    p = payment(card_token=None, encrypted_card="eyJhbGciOi.x.y.z.w")
    assert "eyJ" not in repr(p)


def test_resolve_close_needs_status():
    with pytest.raises(ValidationError):
        ResolveCommand(action="close")
    assert ResolveCommand(action="retry").status is None


@pytest.mark.parametrize("status", sorted(set(PaymentStatus) - CLOSE_STATUSES))
def test_resolve_close_only_with_a_final_status(status):
    with pytest.raises(ValidationError, match="close status must be one a payment ends in"):
        ResolveCommand(action="close", status=status)


@pytest.mark.parametrize("status", sorted(CLOSE_STATUSES))
def test_resolve_close_with_final_status(status):
    assert ResolveCommand(action="close", status=status).status is status


def test_challenge_window_is_capped_with_a_clear_error():
    assert payment(challenge_window=MAX_CHALLENGE_WINDOW).challenge_window == MAX_CHALLENGE_WINDOW
    with pytest.raises(ValidationError, match="challenge_window must be at most 30 minutes"):
        payment(challenge_window=MAX_CHALLENGE_WINDOW + timedelta(seconds=1))


def test_status_look_ups_within_the_cap_fit_the_counter():
    # Worst case of one payment: the charge's look-up, the one after a failed charge, the polls
    # of the longest window, its last confirmation, every callback wake, the late-result
    # watch's final look-up, a capture, a void and a few compensation rounds (2 each).
    polls, waited = 0, timedelta(0)
    for delay in policies.challenge_poll_delays():
        if waited >= MAX_CHALLENGE_WINDOW:
            break
        waited += delay
        polls += 1
    worst = 2 + polls + 1 + policies.MAX_CALLBACK_LOOKUPS + 1 + 2 + 2 * 20
    assert worst < 200
    assert ids.status_step(worst)


def test_aware_deadline_accepted():
    deadline = datetime(2030, 1, 1, 12, 0, tzinfo=JAKARTA)
    assert payment(deadline=deadline).deadline == deadline


def test_naive_provider_time_is_jakarta():
    naive = datetime(2030, 1, 1, 19, 0)
    assert aware(naive) == datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    utc = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert aware(utc) is utc
    assert aware_or_none(None) is None


def test_request_summary_of_a_payment():
    summary = PaymentRequestSummary.of(payment(), PaymentFlow.DIRECT)
    assert summary == PaymentRequestSummary(
        amount=Decimal("150000"), customer_id="CUST000123", flow=PaymentFlow.DIRECT
    )
    assert summary != summary.model_copy(update={"flow": PaymentFlow.AUTH_CAPTURE})


def test_webview_margin_covers_callback_retries():
    # Ayoconnect retries a callback after 1, 2 and 5 minutes.
    assert DEFAULT_WEBVIEW_MARGIN >= timedelta(minutes=1 + 2 + 5)
    assert RegistrationInput.model_fields["callback_margin"].default == DEFAULT_WEBVIEW_MARGIN


def test_refund_rounds_last_a_few_days():
    total = sum(islice(policies.refund_round_delays(), policies.REFUND_MAX_ROUNDS - 1), timedelta())
    assert timedelta(days=2) < total < timedelta(days=5)
    assert policies.LATE_RESULT_GRACE == timedelta(minutes=15)


@pytest.mark.parametrize(
    "options",
    [
        policies.READ,
        policies.WEBVIEW,
        policies.MONEY,
        policies.COMPENSATION,
        policies.UNBIND,
        policies.MERCHANT,
    ],
)
def test_every_activity_is_bounded(options):
    assert options.start_to_close > timedelta(0)
    assert options.schedule_to_close >= options.start_to_close
    assert options.retry.maximum_interval is not None
    assert "DeclinedError" in (options.retry.non_retryable_error_types or [])


def test_money_calls_have_bounded_attempts():
    assert 1 <= policies.MONEY.retry.maximum_attempts <= 10
    assert policies.MONEY.heartbeat is not None


def test_challenge_polls_back_off_and_cap():
    delays = [d.total_seconds() for d in islice(policies.challenge_poll_delays(), 8)]
    assert delays == [5, 10, 20, 40, 60, 60, 60, 60]


def test_search_attribute_values():
    assert sa.whole_rupiah(Decimal("150000.99")) == 150000
    assert [u.key.name for u in sa.updates(status="PAID", amount=Decimal("1.00"))] == [
        "KartuPaymentStatus",
        "KartuAmount",
    ]
    assert sa.updates() == []
    assert {k.name for k in sa.ALL_KEYS} == {
        "KartuPaymentStatus",
        "KartuFlow",
        "KartuCustomerId",
        "KartuAmount",
        "KartuAuthExpiresAt",
        "KartuInvoiceNumber",
    }


def test_worker_settings_from_environment(monkeypatch, tmp_path):
    from worker import WorkerSettings

    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "payments")
    monkeypatch.setenv("KARTU_TASK_QUEUE", "kartu-blue")
    monkeypatch.setenv("TEMPORAL_API_KEY", "k-123")
    settings = WorkerSettings()
    assert (settings.temporal_address, settings.temporal_namespace, settings.task_queue) == (
        "temporal.internal:7233",
        "payments",
        "kartu-blue",
    )
    assert settings.tls_config() is True  # an API key implies TLS
    assert "k-123" not in repr(settings)

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    monkeypatch.setenv("TEMPORAL_TLS_CERT", str(cert))
    monkeypatch.setenv("TEMPORAL_TLS_KEY", str(key))
    tls = WorkerSettings().tls_config()
    assert tls.client_cert == b"CERT" and tls.client_private_key == b"KEY"

    monkeypatch.delenv("TEMPORAL_TLS_KEY")
    with pytest.raises(ValueError, match="both"):
        WorkerSettings().tls_config()


def test_worker_defaults(monkeypatch):
    from worker import WorkerSettings

    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "KARTU_TASK_QUEUE", "TEMPORAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = WorkerSettings()
    assert (settings.temporal_address, settings.temporal_namespace, settings.task_queue) == (
        "localhost:7233",
        "default",
        "kartu",
    )
    assert settings.tls_config() is False
