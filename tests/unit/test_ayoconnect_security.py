"""Card encryption (compact JWE to Ayoconnect's key) and callback signatures (bcrypt)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import bcrypt
import pytest
from joserfc import jwe
from joserfc.jwk import RSAKey

from ayoconnect import callback_signature, encrypt_card, verify_callback_signature
from ayoconnect.models import CardData
from ayoconnect.security import CardEncryptionError, decrypt_card, load_public_key

if TYPE_CHECKING:
    from conftest import RsaPems

PAN = "5555555555554444"
CVV = "8431"
NAME = "Siti Rahayu"
SECRET = "kartu-local-secret"
MERCHANT = "KRT001"


@pytest.fixture
def card() -> CardData:
    return CardData(pan=PAN, expiryMonth="07", expiryYear="2031", cvv=CVV, cardholderName=NAME)


def b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def assert_no_card_data(text: str) -> None:
    for value in (PAN, PAN[:6] + PAN[-4:], CVV, NAME):
        assert value not in text


# --- card encryption ------------------------------------------------------------------------


def test_encrypt_card_is_a_compact_jwe_with_the_contract_header(
    card: CardData, ayo_keys: RsaPems
) -> None:
    token = encrypt_card(card, ayo_keys.public)
    parts = token.split(".")
    assert len(parts) == 5
    assert all(parts)  # RSA-OAEP wraps a key: no part is empty
    assert json.loads(b64url(parts[0])) == {"alg": "RSA-OAEP-256", "enc": "A256GCM"}
    assert len(b64url(parts[1])) == 256  # the CEK wrapped by a 2048-bit key
    assert len(b64url(parts[2])) == 12  # GCM IV
    assert len(b64url(parts[4])) == 16  # GCM tag
    # The token is random base64url: the 4-digit CVV turns up in it by chance about once in
    # 30,000 tokens, so it is looked for in the decoded parts only (random bytes: ~1 in 10^7).
    for value in (PAN, PAN[:6] + PAN[-4:], NAME):
        assert value not in token
    for part in parts:
        assert PAN.encode() not in b64url(part) and CVV.encode() not in b64url(part)
    assert encrypt_card(card, ayo_keys.public) != token  # fresh key and IV each time


def test_decrypt_card_round_trips(card: CardData, ayo_keys: RsaPems) -> None:
    token = encrypt_card(card, ayo_keys.public)
    clear = decrypt_card(token, ayo_keys.private)
    assert clear == card
    assert clear.pan == PAN
    assert clear.cvv == CVV


def test_plaintext_is_the_card_json(card: CardData, ayo_keys: RsaPems) -> None:
    token = encrypt_card(card, ayo_keys.public)
    key = RSAKey.import_key(ayo_keys.private)
    registry = jwe.JWERegistry(algorithms=["RSA-OAEP-256", "A256GCM"])
    plaintext = jwe.decrypt_compact(token, key, registry=registry).plaintext
    assert plaintext is not None
    assert json.loads(plaintext) == {
        "pan": PAN,
        "expiryMonth": "07",
        "expiryYear": "2031",
        "cvv": CVV,
        "cardholderName": NAME,
    }


def test_wrong_key_fails_without_card_data(
    card: CardData, ayo_keys: RsaPems, stranger_keys: RsaPems
) -> None:
    token = encrypt_card(card, ayo_keys.public)
    with pytest.raises(CardEncryptionError) as info:
        decrypt_card(token, stranger_keys.private)
    assert "could not be decrypted" in str(info.value)
    assert info.value.__cause__ is None
    for text in (str(info.value), repr(info.value), repr(info.value.args)):
        assert_no_card_data(text)


@pytest.mark.parametrize("where", [1, 3, 4])
def test_tampered_token_fails(card: CardData, ayo_keys: RsaPems, where: int) -> None:
    parts = encrypt_card(card, ayo_keys.public).split(".")
    segment = bytearray(b64url(parts[where]))
    segment[0] ^= 0x01
    parts[where] = base64.urlsafe_b64encode(bytes(segment)).rstrip(b"=").decode()
    with pytest.raises(CardEncryptionError):
        decrypt_card(".".join(parts), ayo_keys.private)


@pytest.mark.parametrize("token", ["", "a.b.c.d.e", "not-a-jwe", "....", PAN])
def test_garbage_token_fails(ayo_keys: RsaPems, token: str) -> None:
    with pytest.raises(CardEncryptionError) as info:
        decrypt_card(token, ayo_keys.private)
    assert_no_card_data(str(info.value))


def test_other_algorithms_are_refused(card: CardData, ayo_keys: RsaPems) -> None:
    weaker = jwe.encrypt_compact(
        {"alg": "RSA-OAEP", "enc": "A128GCM"},
        card.model_dump_json().encode(),
        RSAKey.import_key(ayo_keys.public),
        registry=jwe.JWERegistry(algorithms=["RSA-OAEP", "A128GCM"]),
    )
    with pytest.raises(CardEncryptionError):
        decrypt_card(weaker, ayo_keys.private)


def test_payload_that_is_not_a_card_is_refused(ayo_keys: RsaPems) -> None:
    bad = json.dumps({"pan": PAN, "cvv": "1"}).encode()
    token = jwe.encrypt_compact(
        {"alg": "RSA-OAEP-256", "enc": "A256GCM"},
        bad,
        RSAKey.import_key(ayo_keys.public),
        registry=jwe.JWERegistry(algorithms=["RSA-OAEP-256", "A256GCM"]),
    )
    with pytest.raises(CardEncryptionError, match="does not hold valid card data") as info:
        decrypt_card(token, ayo_keys.private)
    for text in (str(info.value), repr(info.value)):
        assert PAN not in text


@pytest.mark.parametrize("pem", ["", "not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n"])
def test_bad_public_key_is_refused(card: CardData, pem: str) -> None:
    with pytest.raises(CardEncryptionError, match="not a valid RSA PEM key") as info:
        encrypt_card(card, pem)
    assert_no_card_data(repr(info.value))
    with pytest.raises(CardEncryptionError):
        load_public_key(pem)


def test_bad_private_key_is_refused(card: CardData, ayo_keys: RsaPems) -> None:
    token = encrypt_card(card, ayo_keys.public)
    with pytest.raises(CardEncryptionError):
        decrypt_card(token, "not a key")


# --- callback signatures ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def signature() -> str:
    return callback_signature(SECRET, MERCHANT, rounds=4)


def test_callback_signature_verifies(signature: str) -> None:
    assert signature.startswith("$2b$04$")
    assert verify_callback_signature(signature, SECRET, MERCHANT) is True
    assert SECRET not in signature


def test_callback_signature_is_bcrypt_of_secret_and_merchant_code(signature: str) -> None:
    assert bcrypt.checkpw((SECRET + MERCHANT).encode(), signature.encode())
    assert callback_signature(SECRET, MERCHANT).startswith("$2b$10$")  # default cost


@pytest.mark.parametrize(
    ("secret", "merchant"),
    [("wrong-secret", MERCHANT), (SECRET, "KRT002"), (SECRET, ""), ("", MERCHANT)],
)
def test_callback_signature_fails_for_other_credentials(
    signature: str, secret: str, merchant: str
) -> None:
    assert verify_callback_signature(signature, secret, merchant) is False


@pytest.mark.parametrize(
    "header",
    [None, "", "garbage", "$2b$04$", "Bearer abc", "$2b$04$" + "x" * 53, "ünïcode"],
)
def test_callback_signature_fails_for_bad_headers(header: str | None) -> None:
    assert verify_callback_signature(header, SECRET, MERCHANT) is False


def test_callback_signature_refuses_material_over_72_bytes(signature: str) -> None:
    long_secret = "s" * 70
    with pytest.raises(ValueError, match="72 bytes"):
        callback_signature(long_secret, MERCHANT, rounds=4)
    assert verify_callback_signature(signature, long_secret, MERCHANT) is False
