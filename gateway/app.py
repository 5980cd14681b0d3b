"""The gateway application: Ayoconnect callbacks, REST for backends, health.

app = create_app(kartu_client, GatewaySettings())            # a connected client
app = create_app(lambda: KartuClient.connect(), settings)    # connected at startup
"""

from __future__ import annotations

import hmac
import inspect
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ayoconnect.models import CALLBACK_ADAPTER
from ayoconnect.settings import AyoconnectSettings
from starter.client import KartuClient
from telemetry import logs, tracing
from telemetry.asgi import RequestObserver
from telemetry.gateway_metrics import GatewayMetrics, RequestMetrics

from .api import rest_router
from .callbacks import CallbackJournal, SignatureVerifier, callbacks_router
from .codec import codec_router
from .errors import ApiError, error_response, install_error_handlers, problem_media_types
from .schemas import Health
from .settings import GatewaySettings

log = logging.getLogger("kartu.gateway")
CALLBACK_ROUTE = "/callbacks/ayoconnect"
access_log = logging.getLogger("kartu.gateway.access")

KartuFactory = Callable[[], Awaitable[KartuClient]]
_API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)
_BEARER = HTTPBearer(auto_error=False)
# Card tokens travel in paths (DELETE /cards/{token}): never in a log line.
_CARD_PATH = re.compile(r"^/cards/(?!registrations(?:/|$))[^/]+")


def create_app(
    kartu: KartuClient | KartuFactory,
    settings: GatewaySettings | None = None,
    *,
    ayoconnect_settings: AyoconnectSettings | None = None,
) -> FastAPI:
    """The gateway for a connected ``KartuClient``, or a factory awaited at startup.
    Raises GatewayConfigError when the REST API would be open outside local development."""
    settings = settings or GatewaySettings()
    settings.require_secure()
    ayoconnect = ayoconnect_settings or AyoconnectSettings()
    require_api_key = _api_key_check(settings)
    journal = CallbackJournal(settings.unmatched_max, settings.callback_dedup_max)
    verifier = SignatureVerifier(ayoconnect, settings.signature_cache_max)
    metrics = GatewayMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not isinstance(kartu, KartuClient):
            made = kartu()
            app.state.kartu = await made if inspect.isawaitable(made) else made
        if settings.api_key is None:
            log.warning("KARTU_GATEWAY_INSECURE_DEV: the REST API is open (no API key)")
        address = settings.metrics_address
        listener = metrics.serve(*address) if address else None
        try:
            yield
        finally:
            if listener is not None:
                await listener.aclose()

    app = FastAPI(
        title="Kartu gateway",
        version="0.1.0",
        summary="Ayoconnect card payments on Temporal: callbacks in, REST for backends",
        lifespan=lifespan,
        dependencies=[Depends(_bind_log_ids)],
    )
    if isinstance(kartu, KartuClient):
        app.state.kartu = kartu
    app.state.settings = settings
    app.state.callback_journal = journal
    app.state.signature_verifier = verifier
    app.state.metrics = metrics
    install_error_handlers(app, redact_path)

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["health"],
        summary="Temporal reachable?",
        responses={503: {"model": Health, "description": "Temporal unreachable"}},
    )
    async def healthz(request: Request) -> JSONResponse:
        ok = await request.app.state.kartu.check_health()
        body = Health(status="ok" if ok else "unavailable", temporal=ok)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    app.include_router(callbacks_router(settings, ayoconnect, journal, verifier, require_api_key))
    app.include_router(rest_router(settings, require_api_key))
    app.include_router(
        codec_router(require_api_key, open_on_loopback=settings.codec_open_on_loopback)
    )
    app.openapi = lambda: _openapi_with_callback_body(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLog)
    app.add_middleware(logs.LogContext)  # outside AccessLog: its line carries the request's ids
    app.add_middleware(RequestMetrics, metrics=metrics)
    # The Temporal UI calls the codec endpoints from the browser: only its origins may.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.codec_cors_origins),
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Namespace"],
        allow_credentials=True,
    )
    tracing.instrument_app(app, redact_path=redact_path)
    return app


async def _bind_log_ids(request: Request) -> None:
    """The payment or registration a request is about, on every line logged for it. A JSON
    body is read once: FastAPI and the handlers get the same cached body."""
    body = None
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/json"
    ):
        try:
            body = await request.json()
        except (ValueError, RecursionError):  # the handler answers bad (deeply nested) JSON
            body = None
    logs.bind(**logs.request_ids(request.path_params, body))


def _openapi_with_callback_body(app: FastAPI) -> dict[str, Any]:
    """The callback route reads its body itself (the signature is checked first), so FastAPI
    cannot see its model: document it here, with the callback models as components."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    body = CALLBACK_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(body.pop("$defs", {}))
    operation = schema["paths"][CALLBACK_ROUTE]["post"]
    operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    app.openapi_schema = problem_media_types(schema)
    return schema


def _api_key_check(settings: GatewaySettings) -> Callable[..., Awaitable[None]]:
    expected = settings.api_key.get_secret_value().encode() if settings.api_key else None

    async def require_api_key(
        api_key: Annotated[str | None, Depends(_API_KEY_HEADER)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        if expected is None:  # insecure dev mode, allowed by settings.require_secure()
            return
        given = api_key or (bearer.credentials if bearer else None)
        if not given or not hmac.compare_digest(given.encode(), expected):
            raise ApiError(
                401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"}
            )

    return require_api_key


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413 before the app reads them: by Content-Length
    at once, otherwise while reading (the body is read here, bounded, then replayed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _too_large(scope, receive, send, self.max_bytes)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _too_large(scope, receive, send, self.max_bytes)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = error_response(
        413, f"the body is larger than {limit} bytes", instance=redact_path(scope["path"])
    )
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


class AccessLog(RequestObserver):
    """One line per request, method, redacted path (no query, no card token), status, time.
    Replaces uvicorn's access log, which would print card tokens from paths."""

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        access_log.info(
            "%s %s %s %.1fms", scope["method"], redact_path(scope["path"]), status, seconds * 1000
        )


def redact_path(path: str) -> str:
    return _CARD_PATH.sub("/cards/<redacted>", path)
