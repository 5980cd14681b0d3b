"""Temporal codec-server endpoints, so the Temporal UI shows plain payloads to API-key holders.

The UI (or `temporal ... --codec-endpoint`) POSTs `{"payloads": [...]}` to `/codec/encode` and
`/codec/decode`; the gateway answers with the codec its own Temporal client uses, so the UI and
Kartu always agree on keys. Without a codec configured both endpoints return payloads unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from temporalio.converter import PayloadCodec

from codec import CodecError, decode_payloads_json, encode_payloads_json

from .errors import ApiError, ErrorBody

CODEC_PREFIX = "/codec"
_PAYLOADS_SCHEMA = {
    "type": "object",
    "required": ["payloads"],
    "properties": {
        "payloads": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                    "data": {"type": "string"},
                },
            },
        }
    },
}
_DOCS: dict[str, Any] = {
    "responses": {
        200: {"content": {"application/json": {"schema": _PAYLOADS_SCHEMA}}},
        400: {"model": ErrorBody, "description": "not a payloads body"},
        401: {"model": ErrorBody, "description": "missing or invalid API key"},
        422: {"model": ErrorBody, "description": "a payload this codec cannot decrypt"},
    },
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _PAYLOADS_SCHEMA}},
        }
    },
}


def codec_router(
    require_api_key: Callable[..., Awaitable[None]], *, open_on_loopback: bool = False
) -> APIRouter:
    """``open_on_loopback``: no API key (the local UI cannot send one); settings allow it only
    when the gateway listens on loopback."""
    guard = [] if open_on_loopback else [Depends(require_api_key)]
    router = APIRouter(prefix=CODEC_PREFIX, tags=["codec"], dependencies=guard)

    @router.post("/encode", summary="Encrypt payloads (Temporal codec server)", **_DOCS)
    async def encode(request: Request) -> JSONResponse:
        return await _apply(request, encode_payloads_json)

    @router.post("/decode", summary="Decrypt payloads (Temporal codec server)", **_DOCS)
    async def decode(request: Request) -> JSONResponse:
        return await _apply(request, decode_payloads_json)

    return router


async def _apply(
    request: Request,
    transform: Callable[[dict[str, Any], PayloadCodec], Awaitable[dict[str, Any]]],
) -> JSONResponse:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be an object with 'payloads'")
    codec = request.app.state.kartu.temporal.data_converter.payload_codec
    if codec is None:
        if not isinstance(body.get("payloads", []), list):
            raise ApiError(400, "'payloads' must be a list")
        return JSONResponse({"payloads": body.get("payloads", [])})
    try:
        return JSONResponse(await transform(body, codec))
    except CodecError as exc:
        raise ApiError(422, str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
