"""workflows.models, policies, search attributes and worker settings: the rules they promise."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import islice

import pytest
from pydantic import ValidationError

from workflows import policies
from workflows import search_attributes as sa
from workflows.models import PaymentInput, ResolveCommand

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
