"""Kartu's payload codec: AES-256-GCM, key ids, rotation, settings, dev keys, codec-server JSON."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from google.protobuf import json_format
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload

from codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecConfigError,
    CodecError,
    CodecSettings,
    KartuCodec,
    codec_from_env,
    data_converter,
    decode_payloads_json,
    encode_payloads_json,
    load_or_create_local_keys,
    parse_keys,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
B64_A = base64.b64encode(KEY_A).decode()
B64_B = base64.b64encode(KEY_B).decode()
PAN = "4111111111111111"
CARD_TOKEN = "tok_card_8f3a2c91d7e4"
ENV_VARS = ("KARTU_CODEC_KEYS", "KARTU_CODEC_KEYS_FILE", "KARTU_CODEC_DISABLED")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def secret_payload() -> Payload:
    return json_payload({"pan": PAN, "card_token": CARD_TOKEN, "amount": 125000})


async def test_round_trip_hides_plaintext_and_labels_key() -> None:
    codec = KartuCodec({"a": KEY_A})
    originals = [secret_payload(), json_payload("hello"), Payload(), json_payload(None)]
    encoded = await codec.encode(originals)
    assert len(encoded) == len(originals)
    for payload in encoded:
        assert payload.metadata["encoding"] == ENCODING
        assert payload.metadata[KEY_ID_METADATA] == b"a"
        raw = payload.SerializeToString()
        assert PAN.encode() not in raw and CARD_TOKEN.encode() not in raw
    assert encoded[0].data[:12] != (await codec.encode([originals[0]]))[0].data[:12]  # nonce
    assert await codec.decode(encoded) == originals


async def test_rotation_new_key_encodes_old_key_still_decodes() -> None:
    old = await KartuCodec(parse_keys(f"a:{B64_A}")).encode([secret_payload()])
    rotated = KartuCodec(parse_keys(f"b:{B64_B},a:{B64_A}"))
    assert rotated.active_key_id == "b" and rotated.key_ids == ["b", "a"]
    new = await rotated.encode([json_payload("new")])
    assert new[0].metadata[KEY_ID_METADATA] == b"b"
    assert await rotated.decode(old + new) == [secret_payload(), json_payload("new")]


async def test_unknown_key_id_is_named_without_key_material() -> None:
    encoded = await KartuCodec({"retired-2024": KEY_A}).encode([secret_payload()])
    with pytest.raises(CodecError, match="retired-2024") as info:
        await KartuCodec({"b": KEY_B}).decode(encoded)
    assert B64_A not in str(info.value) and B64_B not in str(info.value)


async def test_tampering_and_relabelling_are_rejected() -> None:
    codec = KartuCodec({"a": KEY_A, "b": KEY_A})  # same key under two ids: AAD must still differ
    (payload,) = await codec.encode([secret_payload()])
    tampered = Payload()
    tampered.CopyFrom(payload)
    tampered.data = payload.data[:-1] + bytes([payload.data[-1] ^ 1])
    with pytest.raises(CodecError, match="tampered"):
        await codec.decode([tampered])
    relabelled = Payload()
    relabelled.CopyFrom(payload)
    relabelled.metadata[KEY_ID_METADATA] = b"b"
    with pytest.raises(CodecError, match="tampered"):
        await codec.decode([relabelled])
    with pytest.raises(CodecError, match="truncated"):
        await codec.decode([Payload(metadata=dict(payload.metadata), data=b"short")])


async def test_plain_payloads_pass_through_decode() -> None:
    plain = [json_payload({"x": 1}), Payload(metadata={"encoding": b"binary/null"})]
    assert await KartuCodec({"a": KEY_A}).decode(plain) == plain


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"a:{B64_A},b{B64_B}", "entry 2: expected 'id:base64key'"),
        (f"a:{B64_A},b:{B64_B[:-4]}!!!!", "entry 2: key is not valid base64"),
        (f"a:{base64.b64encode(KEY_A[:16]).decode()}", "entry 1: key must be 32 bytes"),
        (f"a:{B64_A},a:{B64_B}", "entry 2: duplicate key id 'a'"),
        (f"bad id!:{B64_A}", "entry 1: key id must match"),
        (f"{'x' * 65}:{B64_A}", "entry 1: key id must match"),
        (" , ", "no keys"),
    ],
)
def test_parse_errors_name_the_entry_never_the_key(text: str, message: str) -> None:
    with pytest.raises(CodecConfigError, match=message) as info:
        parse_keys(text)
    for secret in (B64_A, B64_B, B64_B[:-4], B64_A[:20]):
        assert secret not in str(info.value)


def test_settings_from_env_hide_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARTU_CODEC_KEYS", f"b:{B64_B}, a:{B64_A}")
    settings = CodecSettings()
    assert B64_A not in repr(settings) and B64_B not in str(settings)
    assert settings.load_keys() == {"b": KEY_B, "a": KEY_A}
    codec = codec_from_env(allow_dev_key_path=None)
    assert codec is not None and codec.active_key_id == "b"
    assert B64_B not in repr(codec)
    monkeypatch.setenv("KARTU_CODEC_KEYS", f"b:{B64_B},a:{B64_A[:-8]}")
    with pytest.raises(ValueError, match="entry 2") as info:
        CodecSettings()
    assert B64_B not in str(info.value) and B64_A[:-8] not in str(info.value)


def test_settings_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys_file = tmp_path / "codec.keys"
    keys_file.write_text(f"# rotated 2026-11\nb:{B64_B}\n\na:{B64_A}\n")
    monkeypatch.setenv("KARTU_CODEC_KEYS_FILE", str(keys_file))
    codec = codec_from_env(allow_dev_key_path=None)
    assert codec is not None and codec.key_ids == ["b", "a"]
    keys_file.write_text(f"b:{B64_B}\na:notbase64\n")
    with pytest.raises(CodecConfigError, match="KARTU_CODEC_KEYS_FILE entry 2"):
        codec_from_env(allow_dev_key_path=None)
    monkeypatch.setenv("KARTU_CODEC_KEYS", f"a:{B64_A}")
    with pytest.raises(ValueError, match="not both"):
        CodecSettings()


def test_disabled_and_missing_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(CodecConfigError, match="KARTU_CODEC_KEYS"):
        codec_from_env(allow_dev_key_path=None)
    monkeypatch.setenv("KARTU_CODEC_DISABLED", "1")
    assert codec_from_env(allow_dev_key_path=tmp_path / "codec.keys") is None
    assert not (tmp_path / "codec.keys").exists()


async def test_dev_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / ".kartu" / "codec.keys"
    keys = load_or_create_local_keys(path)  # what `kartu up` does for its data dir
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_local_keys(path) == keys
    assert list(path.parent.iterdir()) == [path]  # no temp files left behind
    first = codec_from_env(allow_dev_key_path=path)
    second = codec_from_env(allow_dev_key_path=path)
    assert first is not None and second is not None and second.key_ids == first.key_ids
    assert await second.decode(await first.encode([secret_payload()])) == [secret_payload()]


def test_no_keys_and_no_local_stack_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    # A worker started without its keys must not encrypt with a key no other process has.
    path = tmp_path / ".kartu" / "codec.keys"
    with pytest.raises(CodecConfigError, match=r"KARTU_CODEC_KEYS.*`kartu up` creates"):
        codec_from_env(allow_dev_key_path=path)
    assert not path.exists() and not path.parent.exists()


async def test_codec_server_json_round_trip() -> None:
    codec = KartuCodec({"a": KEY_A})
    plain = {"payloads": [json_format.MessageToDict(secret_payload()), {"metadata": {}}]}
    encoded = await encode_payloads_json(plain, codec)
    assert PAN not in json.dumps(encoded) and len(encoded["payloads"]) == 2
    meta = encoded["payloads"][0]["metadata"]
    assert base64.b64decode(meta["encoding"]) == ENCODING
    assert base64.b64decode(meta[KEY_ID_METADATA]) == b"a"
    decoded = await decode_payloads_json(encoded, codec)
    assert decoded["payloads"][0] == plain["payloads"][0]
    assert base64.b64decode(decoded["payloads"][0]["data"]) == secret_payload().data
    assert await decode_payloads_json({"payloads": []}, codec) == {"payloads": []}
    with pytest.raises(ValueError, match="invalid codec request"):
        await decode_payloads_json({"payloads": [{"data": 42}]}, codec)


class Charge(BaseModel):
    pan_last4: str
    card_token: str
    amount: int
    cardholder: str


async def test_pydantic_data_converter_end_to_end() -> None:
    converter = data_converter(KartuCodec({"a": KEY_A}))
    charge = Charge(pan_last4="1111", card_token=CARD_TOKEN, amount=125000, cardholder="Siti Rahma")
    payloads = await converter.encode([charge, "note"])
    raw = b"".join(p.SerializeToString() for p in payloads)
    for clear in (CARD_TOKEN, "Siti Rahma", "cardholder", "125000", "note"):
        assert clear.encode() not in raw
    assert all(p.metadata["encoding"] == ENCODING for p in payloads)
    assert await converter.decode(payloads, [Charge, str]) == [charge, "note"]
    assert data_converter(None).payload_codec is None
