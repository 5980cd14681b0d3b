"""Settings: documented local defaults, AYOCONNECT_* overrides, refusals that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ayoconnect import AyoconnectSettings

pytestmark = pytest.mark.usefixtures("clean_ayo_env")


def test_defaults_are_the_documented_local_ones() -> None:
    s = AyoconnectSettings()
    assert s.base_url == "http://127.0.0.1:8090"
    assert s.merchant_code == "KRT001"
    assert s.client_id == "kartu-local-client"
    assert s.client_secret.get_secret_value() == "kartu-local-secret"
    assert s.token_path == "/v1/oauth/client_credential/accesstoken"
    assert s.card_path("create_charge_path") == "/api/v1/lab/mpgs/cards/create-charge"
    assert s.card_path("generate_webview_path") == "/api/v1/lab/mpgs/cards/generate-webview"
    assert s.card_path("payment_status_path") == "/api/v1/lab/mpgs/cards/charge"
    assert s.card_path("cards_list_path") == "/api/v1/lab/mpgs/cards/"
    assert s.card_path("unbind_path") == "/api/v1/lab/mpgs/cards/unbind"
    assert s.card_path("void_path") == "/api/v1/lab/mpgs/cards/void"
    assert s.card_path("refund_path") == "/api/v1/lab/mpgs/cards/refund"
    assert s.correlation_id_header == "X-Correlation-ID"
    assert s.merchant_code_header == "X-Merchant-Code"
    assert s.timestamp_header == "X-Timestamp"
    assert s.callback_auth_header == "X-Authorization"
    assert s.public_key_pem() is None


def test_secret_is_hidden_in_repr() -> None:
    s = AyoconnectSettings()
    assert "kartu-local-secret" not in repr(s)
    assert "kartu-local-secret" not in str(s)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "AYOCONNECT_BASE_URL": "https://sandbox.api.example.id/",
        "AYOCONNECT_CLIENT_ID": "merchant-client",
        "AYOCONNECT_CLIENT_SECRET": "merchant-secret",
        "AYOCONNECT_MERCHANT_CODE": "ABC123",
        "AYOCONNECT_CARDS_BASE_PATH": "/api/v2/cards",
        "AYOCONNECT_VOID_PATH": "/cancel",
        "AYOCONNECT_TIMESTAMP_HEADER": "X-Time",
        "AYOCONNECT_TOKEN_REFRESH_MARGIN_SECONDS": "0",
        "AYOCONNECT_READ_TIMEOUT_SECONDS": "2.5",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = AyoconnectSettings()
    assert s.base_url == "https://sandbox.api.example.id"  # trailing '/' dropped
    assert s.client_id == "merchant-client"
    assert s.client_secret.get_secret_value() == "merchant-secret"
    assert s.merchant_code == "ABC123"
    assert s.card_path("void_path") == "/api/v2/cards/cancel"
    assert s.timestamp_header == "X-Time"
    assert s.token_refresh_margin_seconds == 0
    assert s.read_timeout_seconds == 2.5


def test_settings_are_frozen() -> None:
    s = AyoconnectSettings()
    with pytest.raises(ValidationError):
        s.merchant_code = "XYZ999"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("AYOCONNECT_MERCHANT_CODE", "KRT01", "AYOCONNECT_MERCHANT_CODE"),
        ("AYOCONNECT_MERCHANT_CODE", "KRT0001", "AYOCONNECT_MERCHANT_CODE"),
        ("AYOCONNECT_MERCHANT_CODE", "KRT-01", "AYOCONNECT_MERCHANT_CODE"),
        ("AYOCONNECT_CLIENT_SECRET", "", "AYOCONNECT_CLIENT_SECRET"),
        ("AYOCONNECT_BASE_URL", "sandbox.api.of.ayoconnect.id", "AYOCONNECT_BASE_URL"),
        ("AYOCONNECT_BASE_URL", "ftp://sandbox", "AYOCONNECT_BASE_URL"),
        ("AYOCONNECT_VOID_PATH", "void", "void_path"),
        ("AYOCONNECT_TOKEN_PATH", "v1/oauth", "token_path"),
        ("AYOCONNECT_CARDS_BASE_PATH", "api/v1", "cards_base_path"),
        ("AYOCONNECT_CLIENT_ID", "", "client_id"),
        ("AYOCONNECT_TOKEN_REFRESH_MARGIN_SECONDS", "-1", "token_refresh_margin_seconds"),
        ("AYOCONNECT_READ_TIMEOUT_SECONDS", "0", "read_timeout_seconds"),
    ],
)
def test_bad_environment_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError) as info:
        AyoconnectSettings()
    assert named in str(info.value)


def test_public_key_from_text_or_file(tmp_path: Path) -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nMII...\n-----END PUBLIC KEY-----\n"
    assert AyoconnectSettings(card_public_key=pem).public_key_pem() == pem
    key_file = tmp_path / "ayoconnect.pem"
    key_file.write_text(pem)
    assert AyoconnectSettings(card_public_key_file=key_file).public_key_pem() == pem


def test_public_key_and_key_file_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "ayoconnect.pem"
    key_file.write_text("pem")
    monkeypatch.setenv("AYOCONNECT_CARD_PUBLIC_KEY", "pem")
    monkeypatch.setenv("AYOCONNECT_CARD_PUBLIC_KEY_FILE", str(key_file))
    with pytest.raises(ValidationError) as info:
        AyoconnectSettings()
    assert "AYOCONNECT_CARD_PUBLIC_KEY or AYOCONNECT_CARD_PUBLIC_KEY_FILE" in str(info.value)


def test_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        AyoconnectSettings(card_public_key_file=tmp_path / "absent.pem")
    assert "AYOCONNECT_CARD_PUBLIC_KEY_FILE" in str(info.value)


@pytest.mark.parametrize("source", ["init", "env"])
def test_settings_errors_never_show_the_client_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str
) -> None:
    secret = "Zq81xW"  # short enough to survive pydantic's truncation of long inputs
    kwargs: dict[str, Any] = {}
    if source == "env":
        monkeypatch.setenv("AYOCONNECT_CLIENT_SECRET", secret)
    else:
        kwargs["client_secret"] = secret
    with pytest.raises(ValidationError) as info:
        AyoconnectSettings(card_public_key="k", card_public_key_file=tmp_path, **kwargs)
    assert secret not in str(info.value)
    assert secret not in repr(info.value)
