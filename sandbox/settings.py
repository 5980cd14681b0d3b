"""Sandbox settings, read from ``SANDBOX_*`` environment variables.

Merchant credentials, paths and header names are NOT here: the sandbox reads them from the
client's own ``AYOCONNECT_*`` settings, so with nothing set both sides agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .faults import FaultsConfig

DEFAULT_PORT = 8090


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    # ":memory:" keeps everything in the process; a file path persists across restarts (WAL).
    db_path: str = ":memory:"
    # Base of the webview and 3DS links; None: the address the API call came in on.
    public_base_url: str | None = None

    # None: callbacks are recorded in the ledger but not sent.
    callback_url: str | None = None
    # bcrypt cost of the X-Authorization header; 4 keeps tests fast, Ayoconnect's is unknown.
    callback_signature_rounds: int = Field(default=4, ge=4, le=15)
    callback_retry_delays_seconds: tuple[float, ...] = (60.0, 120.0, 300.0)
    callback_timeout_seconds: float = Field(default=10.0, gt=0)
    # Multiplies callback retry delays: 0.001 turns 1, 2 and 5 minutes into 60, 120, 300 ms.
    time_factor: float = Field(default=1.0, gt=0)

    authorization_window_days: float = Field(default=7.0, gt=0)
    session_seconds: int = Field(default=300, gt=0)  # webview and 3DS challenge pages

    # RSA private key (PEM) that decrypts encryptedCard; None: a dev key kept in the ledger.
    private_key_pem: SecretStr | None = None
    private_key_file: Path | None = None

    faults: FaultsConfig = Field(default_factory=FaultsConfig)
    fault_seed: int = 0

    # How often expired authorizations and sessions are swept when no request comes in.
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @field_validator("public_base_url", "callback_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _key(self) -> SandboxSettings:
        if self.private_key_pem and self.private_key_file:
            raise ValueError("set SANDBOX_PRIVATE_KEY_PEM or SANDBOX_PRIVATE_KEY_FILE, not both")
        return self
