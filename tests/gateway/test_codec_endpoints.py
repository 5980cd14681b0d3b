"""The gateway's codec-server endpoints, with the real codec and the Temporal UI's JSON shape."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from temporalio.api.common.v1 import Payload

from codec import KartuCodec, data_converter
from gateway.app import create_app
from gateway.settings import GatewaySettings

API_KEY = "codec-test-key-0123456789"
SECRET = b'{"card_token": "tok1234567890abcdef", "pan": "4111111111111111"}'


class _FakeKartu:
    """Only what the codec endpoints read: the Temporal client's data converter."""

    def __init__(self, codec: KartuCodec | None) -> None:
        self.temporal = SimpleNamespace(data_converter=data_converter(codec))

    async def check_health(self) -> bool:
        return True


def _payload_json(data: bytes) -> dict[str, object]:
    return {
        "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
        "data": base64.b64encode(data).decode(),
    }


@pytest.fixture
def codec() -> KartuCodec:
    return KartuCodec({"k1": os.urandom(32)})


@pytest.fixture
async def http(codec: KartuCodec) -> AsyncIterator[httpx.AsyncClient]:
    fake = _FakeKartu(codec)

    async def factory() -> _FakeKartu:
        return fake

    # No metrics listener: the default would take 9465, a port no test may hold.
    settings = GatewaySettings(api_key=API_KEY, metrics_port=0)
    app = create_app(factory, settings)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
    ):
        yield client


async def test_encode_then_decode_round_trips_without_clear_data(
    http: httpx.AsyncClient, codec: KartuCodec
) -> None:
    headers = {"X-API-Key": API_KEY}
    body = {"payloads": [_payload_json(SECRET)]}
    encoded = await http.post("/codec/encode", json=body, headers=headers)
    assert encoded.status_code == 200
    wire = encoded.json()["payloads"][0]
    assert base64.b64decode(wire["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"4111111111111111" not in base64.b64decode(wire["data"])
    decoded = await http.post("/codec/decode", json=encoded.json(), headers=headers)
    assert decoded.status_code == 200
    assert base64.b64decode(decoded.json()["payloads"][0]["data"]) == SECRET
    # what the workers' codec wrote, the endpoint reads
    [by_worker] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=SECRET)])
    from google.protobuf import json_format

    worker_json = {"payloads": [json_format.MessageToDict(by_worker)]}
    answer = await http.post("/codec/decode", json=worker_json, headers=headers)
    assert base64.b64decode(answer.json()["payloads"][0]["data"]) == SECRET


async def test_codec_endpoints_need_the_api_key(http: httpx.AsyncClient) -> None:
    body = {"payloads": [_payload_json(SECRET)]}
    assert (await http.post("/codec/decode", json=body)).status_code == 401
    wrong = {"Authorization": "Bearer not-the-key-at-all-000"}
    assert (await http.post("/codec/decode", json=body, headers=wrong)).status_code == 401
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    assert (await http.post("/codec/encode", json=body, headers=bearer)).status_code == 200


async def test_bad_codec_requests_are_4xx(http: httpx.AsyncClient) -> None:
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    not_json = await http.post("/codec/decode", content=b"{nope", headers=headers)
    assert not_json.status_code == 400
    wrong_shape = await http.post("/codec/decode", content=json.dumps([1]), headers=headers)
    assert wrong_shape.status_code == 400
    foreign = {
        "payloads": [
            {
                "metadata": {
                    "encoding": base64.b64encode(b"binary/encrypted").decode(),
                    "encryption-key-id": base64.b64encode(b"other").decode(),
                },
                "data": base64.b64encode(os.urandom(40)).decode(),
            }
        ]
    }
    unknown_key = await http.post("/codec/decode", json=foreign, headers=headers)
    assert unknown_key.status_code == 422
    assert "other" in unknown_key.json()["error"]


async def test_the_temporal_ui_origin_may_call_the_codec(http: httpx.AsyncClient) -> None:
    preflight = await http.options(
        "/codec/decode",
        headers={
            "Origin": "http://localhost:8233",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:8233"
    other = await http.options(
        "/codec/decode",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert other.headers.get("access-control-allow-origin") != "http://evil.example"


async def test_codec_open_on_loopback_needs_no_key_and_only_on_loopback(codec: KartuCodec) -> None:
    from gateway.settings import GatewayConfigError

    settings = GatewaySettings(api_key=API_KEY, codec_open_on_loopback=True)
    fake = _FakeKartu(codec)

    async def factory() -> _FakeKartu:
        return fake

    app = create_app(factory, settings)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
    ):
        body = {"payloads": [_payload_json(SECRET)]}
        assert (await client.post("/codec/encode", json=body)).status_code == 200
        # the REST API still needs the key
        assert (await client.get("/payments/order_1")).status_code == 401
    exposed = GatewaySettings(api_key=API_KEY, codec_open_on_loopback=True, host="10.1.2.3")
    with pytest.raises(GatewayConfigError, match="CODEC_OPEN_ON_LOOPBACK"):
        create_app(factory, exposed)  # type: ignore[arg-type]
