"""The RSA key pair behind ``encryptedCard``: the sandbox decrypts, clients encrypt to
``GET /_sandbox/public-key``.

Without a configured key the sandbox makes a dev key once and keeps it in the ledger's meta
table, so a file-backed sandbox keeps its key (and clients' copies of the public key) across
restarts; an in-memory one keeps it for its lifetime.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .db import Database
from .settings import SandboxSettings

_META_KEY = "private_key_pem"


def private_key_pem(settings: SandboxSettings, db: Database) -> str:
    if settings.private_key_pem is not None:
        return settings.private_key_pem.get_secret_value()
    if settings.private_key_file is not None:
        return settings.private_key_file.read_text()
    stored = db.get_meta(_META_KEY)
    if stored is not None:
        return stored
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    db.set_meta(_META_KEY, pem)
    return pem


def public_key_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the sandbox's card key must be an RSA key")
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
