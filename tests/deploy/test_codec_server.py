"""The codec service (gateway.codec_server): the Temporal UI's codec endpoint, keys required."""

from __future__ import annotations

import base64

import httpx
import pytest

from gateway import codec_server
from gateway.codec_server import CodecServerSettings, create_codec_app
from starter.codec import KartuCodec, encode_payloads_json

UI = "http://localhost:8233"
PLAIN = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IjEyMyI="}]}


def _client(**settings: object) -> httpx.AsyncClient:
    codec = KartuCodec({"k1": bytes(32)})
    app = create_codec_app(codec, CodecServerSettings(cors_origins=(UI,), **settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec")


async def test_round_trip_and_errors() -> None:
    async with _client(max_body_bytes=4096) as http:
        encoded = (await http.post("/codec/encode", json=PLAIN)).json()
        assert encoded["payloads"][0]["metadata"]["encryption-key-id"] == "azE="  # "k1"
        assert (await http.post("/codec/decode", json=encoded)).json() == PLAIN
        unknown = await encode_payloads_json(PLAIN, KartuCodec({"k2": bytes(range(32))}))
        refused = await http.post("/codec/decode", json=unknown)
        assert refused.status_code == 422 and "unknown key id 'k2'" in refused.json()["error"]
        assert (await http.post("/codec/decode", content=b"{")).status_code == 400
        assert (await http.post("/codec/decode", json=[1])).status_code == 400
        assert (await http.post("/codec/decode", content=b"x" * 5000)).status_code == 413
        assert (await http.get("/healthz")).json() == {"status": "ok"}


async def test_only_the_ui_origin_may_call_it_from_a_browser() -> None:
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-namespace"}
    async with _client() as http:
        allowed = await http.options("/codec/decode", headers={"Origin": UI, **ask})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == UI
        other = await http.options("/codec/decode", headers={"Origin": "https://evil.test", **ask})
        assert "access-control-allow-origin" not in other.headers


def test_it_refuses_to_start_without_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("KARTU_CODEC_KEYS", "KARTU_CODEC_KEYS_FILE", "KARTU_CODEC_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    assert codec_server.main() == 2
    assert "no payload codec keys: set KARTU_CODEC_KEYS" in capsys.readouterr().err
    monkeypatch.setenv("KARTU_CODEC_KEYS", "k1:" + base64.b64encode(b"short").decode())
    assert codec_server.main() == 2
    assert "key must be 32 bytes" in capsys.readouterr().err
