"""The payload codec's keys: ``id:base64key`` pairs from ``KARTU_CODEC_KEYS`` or
``KARTU_CODEC_KEYS_FILE`` (one per line, ``#`` comments), the first one active; or
``KARTU_CODEC_DISABLED=1``. Keys are 32 random bytes, e.g. ``openssl rand -base64 32``. Messages
never contain key material.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from pathlib import Path

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_KEYS_FILE = Path(".kartu") / "codec.keys"  # relative to the local stack's data dir
KEY_BYTES = 32
KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


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
        if not KEY_ID.fullmatch(key_id):
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
