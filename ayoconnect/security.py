"""Card encryption (PCI-DSS merchants) and callback signatures.

Card data leaves the backend only as a compact JWE (RSA-OAEP-256 + A256GCM) to Ayoconnect's
public key; the callback header ``X-Authorization`` is bcrypt(client_secret + merchant_code).
"""

from __future__ import annotations

import bcrypt
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from .models import CardData

JWE_HEADER = {"alg": "RSA-OAEP-256", "enc": "A256GCM"}
# joserfc marks RSA-OAEP-256 "not recommended" by default; the contract asks for exactly it.
_REGISTRY = jwe.JWERegistry(algorithms=["RSA-OAEP-256", "A256GCM"])


class CardEncryptionError(ValueError):
    """The key or the card could not be used; the message never holds card data."""


def load_public_key(pem: str) -> RSAKey:
    try:
        key = RSAKey.import_key(pem)
    except (JoseError, ValueError, TypeError):
        raise CardEncryptionError("card public key is not a valid RSA PEM key") from None
    return key


def encrypt_card(card: CardData, public_key_pem: str) -> str:
    """The ``encryptedCard`` value: compact JWE of the card's JSON to Ayoconnect's key."""
    key = load_public_key(public_key_pem)
    plaintext = card.model_dump_json().encode()
    return jwe.encrypt_compact(JWE_HEADER, plaintext, key, registry=_REGISTRY)


def decrypt_card(token: str, private_key_pem: str) -> CardData:
    """Ayoconnect's side of ``encrypt_card``: the sandbox uses it with its private key."""
    try:
        key = RSAKey.import_key(private_key_pem)
        plaintext = jwe.decrypt_compact(token, key, registry=_REGISTRY).plaintext
    except (JoseError, ValueError, TypeError):
        raise CardEncryptionError("encryptedCard could not be decrypted") from None
    if plaintext is None:
        raise CardEncryptionError("encryptedCard is empty")
    try:
        return CardData.model_validate_json(plaintext)
    except ValueError:
        raise CardEncryptionError("encryptedCard does not hold valid card data") from None


def _callback_secret(client_secret: str, merchant_code: str) -> bytes:
    # bcrypt reads at most 72 bytes; longer secrets would be silently cut, so refuse them.
    material = (client_secret + merchant_code).encode()
    if len(material) > 72:
        raise ValueError("client secret + merchant code exceed bcrypt's 72 bytes")
    return material


def callback_signature(client_secret: str, merchant_code: str, rounds: int = 10) -> str:
    """The ``X-Authorization`` header value Ayoconnect sends with each callback."""
    material = _callback_secret(client_secret, merchant_code)
    return bcrypt.hashpw(material, bcrypt.gensalt(rounds=rounds)).decode()


def verify_callback_signature(header: str | None, client_secret: str, merchant_code: str) -> bool:
    if not header:
        return False
    try:
        return bcrypt.checkpw(_callback_secret(client_secret, merchant_code), header.encode())
    except ValueError:
        return False
