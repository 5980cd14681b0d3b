"""The Temporal connection every Kartu process makes: ``TemporalSettings``, ``connect`` and the
data converter.

The worker (``worker.py``, whose ``WorkerSettings`` add the worker's own settings), the Python
API, ``kartu`` and the gateway all connect through here, so they read the same variables and build
the same client: same TLS, same API key, same data converter (pydantic, payloads encrypted). Kept
apart from ``worker.py`` so a client process does not import the worker's modules (the worker
runtime, activities, metrics): each ``kartu`` call pays for its imports.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import Client, TLSConfig
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS, DataSource

from codec import DEV_KEYS_FILE, codec_from_env
from codec import data_converter as codec_data_converter
from telemetry import tracing

if TYPE_CHECKING:
    from temporalio.converter import DataConverter
    from temporalio.runtime import Runtime

DEFAULT_TASK_QUEUE = "kartu"


class TemporalConfigError(ValueError):
    """The Temporal connection settings cannot work; the message names the setting."""


# Kartu's TLS variables from before envconfig, kept as aliases of the standard ones:
# (alias, its TemporalSettings field, standard variable less _PATH/_DATA, ClientConfigTLS field).
TLS_ALIASES = (
    ("TEMPORAL_TLS_CERT", "tls_cert", "TEMPORAL_TLS_CLIENT_CERT", "client_cert"),
    ("TEMPORAL_TLS_KEY", "tls_key", "TEMPORAL_TLS_CLIENT_KEY", "client_private_key"),
    ("TEMPORAL_TLS_CA", "tls_ca", "TEMPORAL_TLS_SERVER_CA_CERT", "server_root_ca_cert"),
)


class TemporalSettings(BaseSettings):
    """The Temporal connection and Kartu's task queue.

    The connection is loaded as the ``temporal`` CLI and every SDK load it
    (``temporalio.envconfig``): the profile ``TEMPORAL_PROFILE`` (default ``default``) of the TOML
    file ``TEMPORAL_CONFIG_FILE`` (default ``~/.config/temporalio/temporal.toml``), then the
    standard variables over it (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
    ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS``, ``TEMPORAL_TLS_CLIENT_CERT_PATH``, ...), then values
    given to the constructor over both. ``TEMPORAL_TLS_CERT`` / ``_KEY`` / ``_CA`` are aliases of
    ``TEMPORAL_TLS_CLIENT_CERT_PATH`` / ``TEMPORAL_TLS_CLIENT_KEY_PATH`` /
    ``TEMPORAL_TLS_SERVER_CA_CERT_PATH``. An empty variable counts as unset (compose's
    ``${VAR:-}``). Bad settings fail here, at construction, with the setting named.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    address: str | None = Field(default=None, validation_alias="TEMPORAL_ADDRESS")
    namespace: str | None = Field(default=None, validation_alias="TEMPORAL_NAMESPACE")
    api_key: SecretStr | None = Field(default=None, validation_alias="TEMPORAL_API_KEY")
    profile: str | None = Field(default=None, validation_alias="TEMPORAL_PROFILE")
    config_file: Path | None = Field(default=None, validation_alias="TEMPORAL_CONFIG_FILE")
    tls_cert: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CERT")
    tls_key: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_KEY")
    tls_ca: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CA")
    task_queue: str = Field(default=DEFAULT_TASK_QUEUE, validation_alias="KARTU_TASK_QUEUE")

    _connection: dict[str, Any] = PrivateAttr()

    @field_validator(
        "address", "namespace", "api_key", "profile", "config_file", "tls_cert", "tls_key",
        "tls_ca", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _load_connection(self) -> Self:
        try:
            self._connection = _temporal_connection(self, os.environ)
        except TemporalConfigError as exc:
            raise PydanticCustomError("temporal_config", "{reason}", {"reason": str(exc)}) from None
        return self

    @property
    def temporal_address(self) -> str:
        return str(self._connection["target_host"])

    @property
    def temporal_namespace(self) -> str:
        return str(self._connection["namespace"])

    def tls_config(self) -> TLSConfig | bool:
        tls: TLSConfig | bool = self._connection["tls"]
        return tls

    def connect_options(self) -> dict[str, Any]:
        """``Client.connect`` keyword arguments: target_host, namespace, api_key, tls,
        rpc_metadata (the profile's ``grpc_meta`` and ``TEMPORAL_GRPC_META_*``)."""
        return dict(self._connection)


def _temporal_connection(settings: TemporalSettings, environ: Mapping[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in environ.items() if v.strip() or not k.startswith("TEMPORAL_")}
    flag = env.get("TEMPORAL_TLS")
    if flag is not None and flag.strip().lower() not in {"true", "false", "1", "0"}:
        raise TemporalConfigError(f"TEMPORAL_TLS must be true or false, not {flag!r}")
    source = settings.config_file
    if source is not None and not source.exists():
        raise TemporalConfigError(f"TEMPORAL_CONFIG_FILE: no file at {source}")
    try:
        profile = ClientConfigProfile.load(
            profile=settings.profile, config_source=source, override_env_vars=env
        )
    except RuntimeError as exc:  # envconfig's ConfigError: bad TOML, unknown profile, ...
        where = f"config file {source}" if source else "default config file"
        name = settings.profile or env.get("TEMPORAL_PROFILE") or "default"
        # A TOML error quotes the line it is on: it may hold the api_key, so only the
        # position and the reason are kept.
        reason = "; ".join(
            line.strip() for line in str(exc).splitlines() if line.strip() and "|" not in line
        )
        raise TemporalConfigError(f"Temporal profile {name!r} ({where}): {reason}") from None
    api_key = settings.api_key.get_secret_value() if settings.api_key else profile.api_key
    return {
        "target_host": settings.address or profile.address or "localhost:7233",
        "namespace": settings.namespace or profile.namespace or "default",
        "api_key": api_key or None,
        "tls": _tls(_with_aliases(profile.tls, settings, env), bool(api_key)),
        "rpc_metadata": dict(profile.grpc_meta),
    }


def _with_aliases(
    tls: ClientConfigTLS | None, settings: TemporalSettings, env: Mapping[str, str]
) -> ClientConfigTLS | None:
    """Kartu's old TLS variables, as environment variables: over the profile file, and an error
    beside their standard name (which one would win is not obvious to whoever set both)."""
    updates: dict[str, Path] = {}
    for alias, setting, standard, field in TLS_ALIASES:
        value = getattr(settings, setting)
        if value is None:
            continue
        for clash in (f"{standard}_PATH", f"{standard}_DATA"):
            if clash in env:
                raise TemporalConfigError(
                    f"{alias} is an alias of {standard}_PATH: set {alias} or {clash}, not both"
                )
        updates[field] = value
    if not updates:
        return tls
    return dataclasses.replace(tls or ClientConfigTLS(), **updates)


def _tls(tls: ClientConfigTLS | None, has_api_key: bool) -> TLSConfig | bool:
    if tls is None:
        return has_api_key  # Temporal Cloud with an API key needs TLS, certificates or not
    if tls.disabled:
        return False
    if (tls.client_cert is None) != (tls.client_private_key is None):
        raise TemporalConfigError(
            "a TLS client certificate needs its key: set both TEMPORAL_TLS_CLIENT_CERT_PATH and "
            "TEMPORAL_TLS_CLIENT_KEY_PATH (aliases TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY), or both "
            "tls.client_cert_path and tls.client_key_path in the profile, or neither"
        )
    config = TLSConfig(
        client_cert=_read(tls.client_cert, "client certificate"),
        client_private_key=_read(tls.client_private_key, "client key"),
        server_root_ca_cert=_read(tls.server_root_ca_cert, "server CA certificate"),
        domain=tls.server_name,
    )
    return config if config != TLSConfig() else True


def _read(source: DataSource | None, what: str) -> bytes | None:
    if isinstance(source, Path):
        try:
            return source.read_bytes()
        except OSError as exc:
            raise TemporalConfigError(f"TLS {what}: cannot read {source}: {exc.strerror}") from None
    return source.encode() if isinstance(source, str) else source


def kartu_data_converter() -> DataConverter:
    """Pydantic payloads, encrypted by the payload codec that ``KARTU_CODEC_*`` configures.

    With no keys configured, the key file ``kartu up`` created in ``.kartu/codec.keys`` of the
    working directory is read (with ``kartu up --data-dir X``, set
    ``KARTU_CODEC_KEYS_FILE=X/codec.keys``); without one it is a ``CodecConfigError``: a
    process never makes up a key of its own.
    """
    return codec_data_converter(codec_from_env(allow_dev_key_path=DEV_KEYS_FILE))


async def connect(
    settings: TemporalSettings,
    data_converter: DataConverter | None = None,
    *,
    runtime: Runtime | None = None,
) -> Client:
    """A Temporal client with Kartu's data converter (pydantic, payloads encrypted) and its
    tracing interceptors. ``runtime``: the worker passes the one exporting its metrics."""
    if data_converter is None:
        data_converter = kartu_data_converter()
    return await Client.connect(
        **settings.connect_options(),
        data_converter=data_converter,
        interceptors=tracing.temporal_interceptors(),
        runtime=runtime,
    )
