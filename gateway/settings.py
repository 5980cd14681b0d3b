"""Gateway settings, read from ``KARTU_GATEWAY_*`` environment variables.

The Temporal connection comes from the shared settings (``starter.settings.TemporalSettings``:
TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, KARTU_TASK_QUEUE, TEMPORAL_TLS_*, TEMPORAL_API_KEY) and the
callback secret from ``AyoconnectSettings`` (AYOCONNECT_CLIENT_SECRET, AYOCONNECT_MERCHANT_CODE).

API key rule: with ``KARTU_GATEWAY_API_KEY`` set (at least 16 characters) every REST call needs
it (``X-API-Key: <key>`` or ``Authorization: Bearer <key>``). Without it the gateway refuses to
start, unless ``KARTU_GATEWAY_INSECURE_DEV=1`` and it listens on a loopback address only: then
the REST API is open (local development) and a warning is logged. Callbacks never use the API
key: they carry Ayoconnect's signature.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_API_KEY_LENGTH = 16
DEFAULT_METRICS_PORT = 9465


class GatewayConfigError(ValueError):
    """The gateway must not start with these settings."""


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KARTU_GATEWAY_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    api_key: SecretStr | None = None
    insecure_dev: bool = False
    # Larger bodies are refused with 413 before they are read in full.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Callbacks that found no running workflow, kept for GET /callbacks/unmatched.
    unmatched_max: int = Field(default=200, ge=1, le=10_000)
    # Recently delivered callback bodies (digests): a duplicate is acknowledged, not resent.
    callback_dedup_max: int = Field(default=2048, ge=1)
    # Verified X-Authorization values: bcrypt is slow, a repeated header costs one check.
    signature_cache_max: int = Field(default=16, ge=1, le=1024)
    # The longest a POST /payments waits for the first outcome before answering PENDING.
    max_wait_seconds: float = Field(default=60.0, gt=0, le=600)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # Browser origins of the Temporal UI allowed to call /codec/* (JSON list in the env var).
    codec_cors_origins: tuple[str, ...] = ("http://localhost:8233", "http://127.0.0.1:8233")
    # Local stack only: the Temporal UI cannot send the API key, so on a loopback-only gateway
    # the codec endpoints may be opened to the UI. Refused on any other address.
    codec_open_on_loopback: bool = False
    # Prometheus metrics on a listener of their own, never on the public port (see
    # telemetry.gateway_metrics): 0 turns it off; unset, 9465, except for a gateway on an
    # ephemeral port (port 0: embedded, tests), which serves none. Host: the gateway's.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str | None = None

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return 0 if isinstance(value, str) and not value.strip() else value

    @field_validator("api_key")
    @classmethod
    def _api_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < MIN_API_KEY_LENGTH:
            raise ValueError(
                f"KARTU_GATEWAY_API_KEY must be at least {MIN_API_KEY_LENGTH} characters"
            )
        return value

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """Where the metrics listener binds, or None when it is off."""
        port = self.metrics_port
        if port is None:
            port = 0 if self.port == 0 else DEFAULT_METRICS_PORT
        return (self.metrics_host or self.host, port) if port else None

    def require_secure(self) -> None:
        """Raise GatewayConfigError unless the REST API is protected or explicitly dev-only."""
        if self.codec_open_on_loopback and not _is_loopback(self.host):
            raise GatewayConfigError(
                "KARTU_GATEWAY_CODEC_OPEN_ON_LOOPBACK=1 is for a loopback gateway only, "
                f"not {self.host!r}: unset it and give the codec's users the API key"
            )
        if self.api_key is not None:
            return
        if not self.insecure_dev:
            raise GatewayConfigError(
                "KARTU_GATEWAY_API_KEY is not set: set it (at least "
                f"{MIN_API_KEY_LENGTH} characters), or set KARTU_GATEWAY_INSECURE_DEV=1 to run "
                "an open REST API on a loopback address for local development"
            )
        if not _is_loopback(self.host):
            raise GatewayConfigError(
                f"KARTU_GATEWAY_INSECURE_DEV=1 without an API key listens on loopback only, "
                f"not on {self.host!r}: set KARTU_GATEWAY_API_KEY"
            )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
