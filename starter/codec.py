"""Kartu's Temporal payload codec: every payload is encrypted with AES-256-GCM before it leaves
the process (worker, starter, gateway), so Temporal's history never holds card data in clear.

Each encoded payload is the serialized original ``Payload`` proto, encrypted under the active key
with a random 12-byte nonce (``data = nonce || ciphertext+tag``); the metadata carries
``encoding: binary/encrypted`` and ``encryption-key-id``. The key id is also the AES-GCM associated
data, so a payload cannot be re-labelled with another id. Rotation: the first configured key
encrypts, every configured key decrypts.

Environment (see :class:`CodecSettings`): ``KARTU_CODEC_KEYS`` (``id:base64key,id2:base64key``),
or ``KARTU_CODEC_KEYS_FILE`` (same pairs, one per line, ``#`` comments), or
``KARTU_CODEC_DISABLED=1``. Keys are 32 random bytes, e.g. ``openssl rand -base64 32``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

__all__ = [
    "DEV_KEYS_FILE",
    "ENCODING",
    "KEY_ID_METADATA",
    "CodecConfigError",
    "CodecError",
    "CodecSettings",
    "KartuCodec",
    "codec_from_env",
    "data_converter",
    "decode_payloads_json",
    "encode_payloads_json",
    "load_or_create_local_keys",
    "parse_keys",
]

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
DEV_KEYS_FILE = Path(".kartu") / "codec.keys"  # relative to the local stack's data dir
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class CodecError(Exception):
    """A payload cannot be decrypted (unknown key id, tampered or truncated data)."""


class CodecConfigError(ValueError):
    """The codec keys are missing or malformed. Messages never contain key material."""


def parse_keys(text: str, *, source: str = "KARTU_CODEC_KEYS") -> dict[str, bytes]:
    """Parse ``id:base64key`` pairs separated by commas or newlines; the first is the active key.

    Blank entries and ``#`` comment lines are skipped. Errors name the entry (1-based), never
    its content.
    """
    entries = [e.strip() for line in text.splitlines() for e in line.split(",")]
    entries = [e for e in entries if e and not e.startswith("#")]
    keys: dict[str, bytes] = {}
    for index, entry in enumerate(entries, start=1):
        where = f"{source} entry {index}"
        key_id, sep, encoded = entry.partition(":")
        key_id, encoded = key_id.strip(), encoded.strip()
        if not sep:
            raise CodecConfigError(f"{where}: expected 'id:base64key'")
        if not _KEY_ID.fullmatch(key_id):
            raise CodecConfigError(f"{where}: key id must match [A-Za-z0-9_.-]{{1,64}}")
        if key_id in keys:
            raise CodecConfigError(f"{where}: duplicate key id {key_id!r}")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise CodecConfigError(f"{where}: key is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise CodecConfigError(f"{where}: key must be {KEY_BYTES} bytes (AES-256)")
        keys[key_id] = key
    if not keys:
        raise CodecConfigError(f"{source}: no keys")
    return keys


class KartuCodec(PayloadCodec):
    """AES-256-GCM payload codec; ``keys`` is ordered, the first one encrypts, all decrypt."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        super().__init__()
        if not keys:
            raise CodecConfigError("KartuCodec needs at least one key")
        for index, (key_id, key) in enumerate(keys.items(), start=1):
            if not _KEY_ID.fullmatch(key_id) or len(key) != KEY_BYTES:
                raise CodecConfigError(f"key {index}: bad key id or key length")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active_key_id = next(iter(keys))

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    def __repr__(self) -> str:
        return f"KartuCodec(active_key_id={self.active_key_id!r}, key_ids={self.key_ids!r})"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self.active_key_id
        cipher, aad = self._ciphers[key_id], key_id.encode()
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), aad)
            metadata = {"encoding": ENCODING, KEY_ID_METADATA: aad}
            out.append(Payload(metadata=metadata, data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(p) for p in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA, b"")
        key_id = raw_id.decode("utf-8", "replace")[:80]
        cipher = self._ciphers.get(key_id) if raw_id == key_id.encode() else None
        if cipher is None:
            raise CodecError(
                f"payload encrypted with unknown key id {key_id!r} "
                f"(known: {', '.join(self._ciphers)}); add it to KARTU_CODEC_KEYS"
            )
        data = payload.data
        if len(data) < NONCE_BYTES + 16:
            raise CodecError(f"encrypted payload (key id {key_id!r}) is truncated")
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], raw_id)
        except InvalidTag:
            raise CodecError(
                f"encrypted payload (key id {key_id!r}) failed authentication: tampered or corrupt"
            ) from None
        return Payload.FromString(plain)


class CodecSettings(BaseSettings):
    """``KARTU_CODEC_KEYS``, ``KARTU_CODEC_KEYS_FILE``, ``KARTU_CODEC_DISABLED``."""

    model_config = SettingsConfigDict(
        env_prefix="KARTU_CODEC_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    keys: SecretStr | None = None
    keys_file: Path | None = None
    disabled: bool = False

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_keys(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_source(self) -> CodecSettings:
        if self.keys is not None and self.keys_file is not None:
            raise CodecConfigError("set KARTU_CODEC_KEYS or KARTU_CODEC_KEYS_FILE, not both")
        return self

    def load_keys(self) -> dict[str, bytes] | None:
        """The configured keys (active first), or None when neither variable is set."""
        if self.keys is not None:
            return parse_keys(self.keys.get_secret_value())
        if self.keys_file is not None:
            return _read_key_file(self.keys_file, "KARTU_CODEC_KEYS_FILE")
        return None


def _read_key_file(path: Path, source: str) -> dict[str, bytes]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CodecConfigError(f"{source}: cannot read {path}: {exc.strerror}") from None
    return parse_keys(text, source=source)


def load_or_create_local_keys(path: Path) -> dict[str, bytes]:
    """Dev only: read ``path``, or create it (mode 0600) with one fresh random key."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
        line = "# Kartu local dev payload codec key; never use in production\n"
        line += f"dev-{secrets.token_hex(4)}:{key}\n"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(line)
            try:
                os.link(tmp, path)  # atomic and never overwrites a concurrent creator's key
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    return _read_key_file(path, str(path))


def codec_from_env(
    *, allow_dev_key_path: Path | None, settings: CodecSettings | None = None
) -> KartuCodec | None:
    """The codec configured by the environment; None if ``KARTU_CODEC_DISABLED`` is set.

    With no keys configured, the local dev key file at ``allow_dev_key_path`` is used (created on
    first use); without that path it is a :class:`CodecConfigError`.
    """
    settings = settings if settings is not None else CodecSettings()
    if settings.disabled:
        return None
    keys = settings.load_keys()
    if keys is None:
        if allow_dev_key_path is None:
            raise CodecConfigError(
                "no payload codec keys: set KARTU_CODEC_KEYS or KARTU_CODEC_KEYS_FILE "
                "(or KARTU_CODEC_DISABLED=1 to send payloads unencrypted)"
            )
        keys = load_or_create_local_keys(allow_dev_key_path)
    return KartuCodec(keys)


def data_converter(codec: KartuCodec | None) -> DataConverter:
    """The pydantic data converter, with ``codec`` as its payload codec (None: no codec).

    With a codec, failure messages and stack traces are encoded too: a provider's error text
    could otherwise sit in clear in a history.
    """
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def _parse_body(body: dict[str, Any]) -> Payloads:
    try:
        return json_format.ParseDict(body, Payloads())
    except (json_format.ParseError, TypeError, AttributeError):
        raise ValueError('invalid codec request: expected {"payloads": [...]}') from None


async def encode_payloads_json(body: dict[str, Any], codec: PayloadCodec) -> dict[str, Any]:
    """Codec server ``POST /encode``: protobuf-JSON ``{"payloads": [...]}`` in and out."""
    encoded = await codec.encode(_parse_body(body).payloads)
    return {"payloads": [json_format.MessageToDict(p) for p in encoded]}


async def decode_payloads_json(body: dict[str, Any], codec: PayloadCodec) -> dict[str, Any]:
    """Codec server ``POST /decode``: protobuf-JSON ``{"payloads": [...]}`` in and out."""
    decoded = await codec.decode(_parse_body(body).payloads)
    return {"payloads": [json_format.MessageToDict(p) for p in decoded]}
