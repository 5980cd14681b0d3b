"""``python -m gateway.codec_server``: Kartu's payload codec as a Temporal codec server on its own
port, for the Temporal UI.

The UI's browser calls its codec endpoint itself and cannot send the gateway's API key, so this
listener serves only ``POST /codec/encode``, ``POST /codec/decode`` and ``GET /healthz``, and asks
for no key. Whoever reaches it can decrypt payloads they already hold, as whoever reaches the UI
can read them: publish it exactly as far as the UI (compose: the host's loopback), never further.
Scripts and ``temporal --codec-endpoint`` can use the gateway's ``/codec`` routes with the API key
instead.

Keys: ``KARTU_CODEC_KEYS`` or ``KARTU_CODEC_KEYS_FILE``, required (no local dev key here).
Settings: ``KARTU_CODEC_SERVER_HOST`` (127.0.0.1), ``_PORT`` (8081), ``_CORS_ORIGINS`` (JSON list:
the UI's origins), ``_LOG_LEVEL``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.converter import PayloadCodec

from codec import (
    CodecConfigError,
    CodecError,
    codec_from_env,
    decode_payloads_json,
    encode_payloads_json,
)

Transform = Callable[[dict[str, Any], PayloadCodec], Awaitable[dict[str, Any]]]


class CodecServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KARTU_CODEC_SERVER_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    # The browser origins of the Temporal UI (it calls the codec from the page).
    cors_origins: tuple[str, ...] = ("http://localhost:8233", "http://127.0.0.1:8233")
    # A history's payloads can be large; past this the request is refused unread.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"


def create_codec_app(codec: PayloadCodec, settings: CodecServerSettings) -> FastAPI:
    app = FastAPI(title="Kartu codec server", version="0.1.0", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/codec/encode")
    async def encode(request: Request) -> JSONResponse:
        return await _apply(request, codec, encode_payloads_json, settings.max_body_bytes)

    @app.post("/codec/decode")
    async def decode(request: Request) -> JSONResponse:
        return await _apply(request, codec, decode_payloads_json, settings.max_body_bytes)

    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["Content-Type", "X-Namespace"],
    )
    return app


async def _apply(
    request: Request, codec: PayloadCodec, transform: Transform, max_bytes: int
) -> JSONResponse:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return _error(413, f"the body is over {max_bytes} bytes")
    raw = await request.body()
    if len(raw) > max_bytes:
        return _error(413, f"the body is over {max_bytes} bytes")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return _error(400, "the body is not JSON")
    if not isinstance(body, dict):
        return _error(400, "the body must be an object with 'payloads'")
    try:
        return JSONResponse(await transform(body, codec))
    except CodecError as exc:
        return _error(422, str(exc))
    except ValueError as exc:
        return _error(400, str(exc))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def main() -> int:
    try:
        settings = CodecServerSettings()
        codec = codec_from_env(allow_dev_key_path=None)
    except (CodecConfigError, ValidationError) as exc:
        print(f"kartu codec server: {exc}", file=sys.stderr)
        return 2
    if codec is None:
        print("kartu codec server: KARTU_CODEC_DISABLED is set: nothing to decode", file=sys.stderr)
        return 2
    uvicorn.run(
        create_codec_app(codec, settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level=settings.log_level,
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
