"""The codec server's bodies: protobuf-JSON ``{"payloads": [...]}`` in and out, as the Temporal
UI and ``temporal ... --codec-endpoint`` send them (served by the gateway's ``/codec`` routes and
``gateway.codec_server``)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec


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
