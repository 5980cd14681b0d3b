"""``KartuCodec``: AES-256-GCM over each whole payload, and the data converter built with it.

Each encoded payload is the serialized original ``Payload`` proto, encrypted under the active key
with a random 12-byte nonce (``data = nonce || ciphertext+tag``); the metadata carries
``encoding: binary/encrypted`` and ``encryption-key-id``. The key id is also the AES-GCM associated
data, so a payload cannot be re-labelled with another id. Rotation: the first configured key
encrypts, every configured key decrypts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from .keys import KEY_BYTES, KEY_ID, CodecConfigError, CodecSettings, load_or_create_local_keys

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12


class CodecError(Exception):
    """A payload cannot be decrypted (unknown key id, tampered or truncated data)."""


class KartuCodec(PayloadCodec):
    """AES-256-GCM payload codec; ``keys`` is ordered, the first one encrypts, all decrypt."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        super().__init__()
        if not keys:
            raise CodecConfigError("KartuCodec needs at least one key")
        for index, (key_id, key) in enumerate(keys.items(), start=1):
            if not KEY_ID.fullmatch(key_id) or len(key) != KEY_BYTES:
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


def codec_from_env(
    *, allow_dev_key_path: Path | None, settings: CodecSettings | None = None
) -> KartuCodec | None:
    """The codec configured by the environment; None if ``KARTU_CODEC_DISABLED`` is set.

    With no keys configured, the local stack's key file at ``allow_dev_key_path`` is read if
    ``kartu up`` created it there; otherwise (or without that path) it is a
    :class:`CodecConfigError`. A process never makes up a key of its own: a worker started
    without its keys would write payloads no other process could read.
    """
    settings = settings if settings is not None else CodecSettings()
    if settings.disabled:
        return None
    keys = settings.load_keys()
    if keys is None:
        if allow_dev_key_path is None or not allow_dev_key_path.is_file():
            made = f"; `kartu up` creates {allow_dev_key_path}" if allow_dev_key_path else ""
            raise CodecConfigError(
                "no payload codec keys: set KARTU_CODEC_KEYS or KARTU_CODEC_KEYS_FILE "
                f"(or KARTU_CODEC_DISABLED=1 to send payloads unencrypted{made})"
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
