"""Kartu's Temporal payload codec: every payload is encrypted with AES-256-GCM before it leaves
the process (worker, gateway, ``KartuClient``, ``kartu``), so Temporal's history never holds
card data in clear.

A package of its own, below both the worker and the starter: ``worker.py`` and ``starter``
import it, it imports neither.

- ``codec.keys``: the keys (``KARTU_CODEC_KEYS`` / ``KARTU_CODEC_KEYS_FILE`` /
  ``KARTU_CODEC_DISABLED``: ``CodecSettings``), their parsing, the local dev key file;
- ``codec.payloads``: ``KartuCodec`` (the encryption), ``codec_from_env`` and
  ``data_converter`` (pydantic + the codec), what every Temporal client of Kartu uses;
- ``codec.server_json``: the codec-server bodies (``POST /encode`` / ``/decode``) the gateway and
  ``gateway.codec_server`` answer for the Temporal UI and ``temporal --codec-endpoint``.
"""

from __future__ import annotations

from .keys import (
    DEV_KEYS_FILE,
    KEY_BYTES,
    CodecConfigError,
    CodecSettings,
    load_or_create_local_keys,
    parse_keys,
)
from .payloads import (
    ENCODING,
    KEY_ID_METADATA,
    CodecError,
    KartuCodec,
    codec_from_env,
    data_converter,
)
from .server_json import decode_payloads_json, encode_payloads_json

__all__ = [
    "DEV_KEYS_FILE",
    "ENCODING",
    "KEY_BYTES",
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
