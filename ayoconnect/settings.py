"""Client settings, read from ``AYOCONNECT_*`` environment variables.

With nothing set, the client talks to Kartu's local sandbox with its documented local
credentials. Every path and header name the contract marks [chosen] or [house] is a setting, so
a merchant who receives Ayoconnect's private spec changes configuration, not code.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Documented local defaults: the sandbox reads the same variables, so they agree out of the box.
LOCAL_CLIENT_ID = "kartu-local-client"
LOCAL_CLIENT_SECRET = "kartu-local-secret"
LOCAL_MERCHANT_CODE = "KRT001"
LOCAL_BASE_URL = "http://127.0.0.1:8090"


class AyoconnectSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AYOCONNECT_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    base_url: str = LOCAL_BASE_URL
    client_id: str = Field(default=LOCAL_CLIENT_ID, min_length=1)
    client_secret: SecretStr = SecretStr(LOCAL_CLIENT_SECRET)
    merchant_code: str = LOCAL_MERCHANT_CODE
    # Ayoconnect's RSA public key (PEM) for encrypted card data; PCI-DSS merchants only.
    card_public_key: str | None = None
    card_public_key_file: Path | None = None

    token_path: str = "/v1/oauth/client_credential/accesstoken"
    cards_base_path: str = "/api/v1/lab/mpgs/cards"
    generate_webview_path: str = "/generate-webview"
    cards_list_path: str = "/"
    unbind_path: str = "/unbind"
    create_charge_path: str = "/create-charge"
    payment_status_path: str = "/charge"
    void_path: str = "/void"
    refund_path: str = "/refund"

    correlation_id_header: str = "X-Correlation-ID"
    merchant_code_header: str = "X-Merchant-Code"
    timestamp_header: str = "X-Timestamp"
    callback_auth_header: str = "X-Authorization"

    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=15.0, gt=0)
    # Refresh this long before the token's announced expiry, so no call carries a dying token.
    token_refresh_margin_seconds: int = Field(default=60, ge=0, le=1800)
    max_connections: int = Field(default=100, ge=1)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("AYOCONNECT_BASE_URL must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("merchant_code")
    @classmethod
    def _merchant_code(cls, value: str) -> str:
        if len(value) != 6 or not value.isalnum():
            raise ValueError("AYOCONNECT_MERCHANT_CODE must be exactly 6 letters or digits")
        return value

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("AYOCONNECT_CLIENT_SECRET must not be empty")
        return value

    @field_validator(
        "token_path",
        "cards_base_path",
        "generate_webview_path",
        "cards_list_path",
        "unbind_path",
        "create_charge_path",
        "payment_status_path",
        "void_path",
        "refund_path",
    )
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("paths must start with '/'")
        return value

    @model_validator(mode="after")
    def _public_key(self) -> AyoconnectSettings:
        if self.card_public_key and self.card_public_key_file:
            raise ValueError(
                "set AYOCONNECT_CARD_PUBLIC_KEY or AYOCONNECT_CARD_PUBLIC_KEY_FILE, not both"
            )
        if self.card_public_key_file and not self.card_public_key_file.is_file():
            raise ValueError(
                f"AYOCONNECT_CARD_PUBLIC_KEY_FILE: no file at {self.card_public_key_file}"
            )
        return self

    def card_path(self, name: str) -> str:
        """Full path of a card endpoint, e.g. ``card_path('void_path')``."""
        suffix: str = getattr(self, name)
        return self.cards_base_path.rstrip("/") + suffix

    def public_key_pem(self) -> str | None:
        if self.card_public_key_file:
            return self.card_public_key_file.read_text()
        return self.card_public_key
