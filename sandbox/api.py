"""How every card API call is processed, in order: injected faults, headers, body, expiry
sweep, idempotency, the operation, then the answer (or a dropped or late answer).

Nothing is written before the request is known to be valid, so bad input never changes the
ledger; the operation and its idempotency record commit together.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from ayoconnect.codes import ServiceCode

from .auth import CallInfo, check_card_headers
from .context import SandboxContext
from .errors import ApiError, Reply, detail, field_errors, invalid
from .expiry import sweep
from .faults import SERVICE_OF, DropConnection, FaultOperation, InjectedError

MAX_BODY_BYTES = 64 * 1024
_TRANSACTION_ID = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
M = TypeVar("M", bound=BaseModel)


def context_of(request: Request) -> SandboxContext:
    context: SandboxContext = request.app.state.sandbox
    return context


async def run_call(
    request: Request,
    op: FaultOperation,
    work: Callable[[SandboxContext], Awaitable[Reply]],
) -> Response:
    """The fault envelope around one call: latency, refusal, or a lost or late answer."""
    ctx = context_of(request)
    plan = ctx.faults.plan_call(op)
    if plan.latency_ms:
        await asyncio.sleep(plan.latency_ms / 1000)
    if plan.error is not None:
        return injected_error(ctx, op, plan.error).response()
    reply = await work(ctx)
    if plan.drop:
        return DropConnection()
    if plan.delay_ms:
        await asyncio.sleep(plan.delay_ms / 1000)
    return reply.response()


def injected_error(ctx: SandboxContext, op: FaultOperation, error: InjectedError) -> Reply:
    service = SERVICE_OF[op]
    message = "Service unavailable" if error.status >= 500 else "Request failed"
    refusal = ApiError(
        error.status,
        service,
        error.case,
        message,
        [detail(error.case.name, "injected fault")],
        headers={"Retry-After": "1"} if error.status in (429, 503) else None,
    )
    return refusal.reply(ctx.clock.now())


async def card_post(
    request: Request,
    op: FaultOperation,
    model: type[M],
    apply: Callable[[SandboxContext, M, CallInfo], Reply],
) -> Response:
    service = SERVICE_OF[op]

    async def work(ctx: SandboxContext) -> Reply:
        transaction_id: str | None = None
        try:
            call = check_card_headers(ctx, request, service)
            body = await read_json_object(request, service)
            transaction_id = _echoable_transaction_id(body.get("transactionId"))
            parsed = parse(model, body, service)
        except ApiError as refused:
            return refused.reply(ctx.clock.now(), transaction_id)
        sweep(ctx)
        return ctx.idempotency.run(
            transaction_id=str(getattr(parsed, "transactionId")),  # noqa: B009 (every POST has one)
            endpoint=op.value,
            service=service,
            request=parsed,
            now=ctx.clock.now(),
            apply=lambda: apply(ctx, parsed, call),
        )

    return await run_call(request, op, work)


async def card_get(
    request: Request,
    op: FaultOperation,
    model: type[M],
    apply: Callable[[SandboxContext, M, CallInfo], Reply],
) -> Response:
    """GETs are reads: no idempotency record, the same query always answers the current state."""
    service = SERVICE_OF[op]

    async def work(ctx: SandboxContext) -> Reply:
        query = dict(request.query_params)
        transaction_id = _echoable_transaction_id(query.get("transactionId"))
        try:
            call = check_card_headers(ctx, request, service)
            parsed = parse(model, query, service)
            sweep(ctx)
            with ctx.db.transaction():
                return apply(ctx, parsed, call)
        except ApiError as refused:
            return refused.reply(ctx.clock.now(), transaction_id)

    return await run_call(request, op, work)


async def read_json_object(request: Request, service: ServiceCode) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise invalid(
            service, detail("INVALID_BODY", "Content-Type must be application/json"), status=415
        )
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise invalid(service, detail("INVALID_BODY", "the body is too large"), status=413)
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json can parse
        raise invalid(service, detail("INVALID_BODY", "the body is not valid JSON")) from None
    if not isinstance(body, dict):
        raise invalid(service, detail("INVALID_BODY", "the body must be a JSON object"))
    return body


def parse(model: type[M], data: dict[str, Any], service: ServiceCode) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(service, *field_errors(exc)) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _echoable_transaction_id(value: Any) -> str | None:
    # The error body carries the caller's transactionId, but only one that looks like one.
    if isinstance(value, str) and _TRANSACTION_ID.match(value):
        return value
    return None
