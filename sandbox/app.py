"""``create_app``: the sandbox as one FastAPI application, routes on the client's own paths."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from ayoconnect.codes import INVALID_REQUEST_CASE, GatewayCode, ServiceCode
from ayoconnect.models import (
    CreateChargeRequest,
    GenerateWebviewRequest,
    RefundRequest,
    UnbindRequest,
    VoidRequest,
)
from ayoconnect.settings import AyoconnectSettings

from . import control, pages
from .api import card_get, card_post, context_of, run_call
from .auth import CallInfo, issue_token
from .charges import create_charge
from .context import SandboxContext
from .errors import ApiError, Reply, detail
from .expiry import sweep
from .faults import RAW_SEND_KEY, FaultOperation
from .registration import CardsQuery, generate_webview, list_cards, unbind
from .reversals import refund, void
from .settings import SandboxSettings
from .status import StatusQuery, payment_status

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
Apply = Callable[[SandboxContext, Any, CallInfo], Reply]


class SandboxApp(FastAPI):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Keep the server's own send: a "drop" fault closes the socket through it.
        if scope["type"] == "http":
            scope[RAW_SEND_KEY] = send
        await super().__call__(scope, receive, send)


def create_app(
    settings: SandboxSettings | None = None, ayoconnect: AyoconnectSettings | None = None
) -> FastAPI:
    """A new sandbox. Credentials, paths and header names come from ``ayoconnect`` (default:
    ``AyoconnectSettings()``, the same environment the client reads)."""
    settings = settings or SandboxSettings()
    ayoconnect = ayoconnect or AyoconnectSettings()
    ctx = SandboxContext.build(settings, ayoconnect)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ctx.callbacks.start()
        sweeper = asyncio.create_task(_sweep_forever(ctx))
        try:
            yield
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            await ctx.callbacks.stop()
            ctx.db.close()

    app = SandboxApp(
        title="Ayoconnect Card Acceptance sandbox",
        lifespan=lifespan,
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
        redirect_slashes=False,  # Ayoconnect would not redirect a wrong path either
    )
    app.state.sandbox = ctx
    _install_error_handlers(app, _services_by_path(ayoconnect))
    _card_routes(app, ayoconnect)
    app.include_router(pages.router)
    app.include_router(control.router)
    return app


def _card_routes(app: FastAPI, ayo: AyoconnectSettings) -> None:
    async def token(request: Request) -> Response:
        async def work(ctx: SandboxContext) -> Reply:
            try:
                return await issue_token(ctx, request)
            except ApiError as refused:
                return refused.reply(ctx.clock.now())

        return await run_call(request, FaultOperation.TOKEN, work)

    app.add_api_route(ayo.token_path, token, methods=["POST"], name="access_token")
    op = FaultOperation
    posts: list[tuple[str, FaultOperation, type[BaseModel], Apply]] = [
        ("generate_webview_path", op.GENERATE_WEBVIEW, GenerateWebviewRequest, generate_webview),
        ("create_charge_path", op.CREATE_CHARGE, CreateChargeRequest, create_charge),
        ("unbind_path", op.UNBIND, UnbindRequest, unbind),
        ("void_path", op.VOID, VoidRequest, void),
        ("refund_path", op.REFUND, RefundRequest, refund),
    ]
    for path_name, fault_op, model, apply in posts:
        app.add_api_route(
            ayo.card_path(path_name),
            _post(fault_op, model, apply),
            methods=["POST"],
            name=fault_op.value,
        )
    gets: list[tuple[str, FaultOperation, type[BaseModel], Apply]] = [
        ("payment_status_path", op.PAYMENT_STATUS, StatusQuery, payment_status),
        ("cards_list_path", op.CARDS_LIST, CardsQuery, list_cards),
    ]
    for path_name, fault_op, model, apply in gets:
        app.add_api_route(
            ayo.card_path(path_name),
            _get(fault_op, model, apply),
            methods=["GET"],
            name=fault_op.value,
        )


def _post(op: FaultOperation, model: type[M], apply: Apply) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        return await card_post(request, op, model, apply)

    return endpoint


def _get(op: FaultOperation, model: type[M], apply: Apply) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        return await card_get(request, op, model, apply)

    return endpoint


async def _sweep_forever(ctx: SandboxContext) -> None:
    while True:
        await asyncio.sleep(ctx.settings.sweep_interval_seconds)
        try:
            sweep(ctx)
        except Exception:
            log.exception("expiry sweep failed")


# --- errors outside the card pipeline: FastAPI's own validation, unknown routes, bugs ----------


def _services_by_path(ayo: AyoconnectSettings) -> dict[str, ServiceCode]:
    by_path = {ayo.token_path: ServiceCode.ACCESS_TOKEN}
    for path_name, service in (
        ("generate_webview_path", ServiceCode.GENERATE_WEBVIEW),
        ("cards_list_path", ServiceCode.CARDS_LIST),
        ("unbind_path", ServiceCode.UNBIND),
        ("create_charge_path", ServiceCode.CREATE_CHARGE),
        ("payment_status_path", ServiceCode.PAYMENT_STATUS),
        ("void_path", ServiceCode.VOID),
        ("refund_path", ServiceCode.REFUND),
    ):
        by_path[ayo.card_path(path_name)] = service
    return by_path


def _install_error_handlers(app: FastAPI, services: dict[str, ServiceCode]) -> None:
    def service_of(request: Request) -> ServiceCode:
        return services.get(request.url.path, ServiceCode.ACCESS_TOKEN)

    def body(request: Request, refusal: ApiError) -> JSONResponse:
        return refusal.reply(context_of(request).clock.now()).response()

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error.get("loc", ())) or "body"
            code = "MISSING_FIELD" if error.get("type") == "missing" else "INVALID_FIELD"
            errors.append(detail(code, str(error.get("msg", "invalid")), location))
        refusal = ApiError(
            400, service_of(request), INVALID_REQUEST_CASE, "Invalid request", errors
        )
        return body(request, refusal)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Refused")
        refusal = ApiError(
            exc.status_code,
            service_of(request),
            INVALID_REQUEST_CASE,
            message,
            [detail("NOT_FOUND" if exc.status_code == 404 else "REFUSED", message)],
            headers=dict(exc.headers or {}),
        )
        return body(request, refusal)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("sandbox bug on %s %s", request.method, request.url.path, exc_info=exc)
        refusal = ApiError(
            500,
            service_of(request),
            GatewayCode.SYSTEM_ERROR,
            "Internal error",
            [detail("SYSTEM_ERROR", "the sandbox failed; see its log")],
        )
        return body(request, refusal)

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
