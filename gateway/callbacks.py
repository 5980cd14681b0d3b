"""``POST /callbacks/ayoconnect``: Ayoconnect's callbacks to workflow signals.

Order matters: the signature first (forged: 401, nothing read further), then the body (bad JSON
or schema: 400), then the route. Everything signed and well-formed is acknowledged with a 2xx,
because Ayoconnect retries anything else: a callback for an unknown or finished workflow, or with
an unroutable transactionId, is stored durably in Temporal (an ``UnmatchedCallback`` workflow,
``starter.client.unmatched``, which also checks it against the provider) and listed by
``GET /callbacks/unmatched``, not lost; if Temporal cannot store it, 503, so Ayoconnect retries.
A byte-identical callback delivered before is acknowledged without a second signal; the workflow
would ignore it anyway. Only a Temporal outage answers 503, so that Ayoconnect retries.

Nothing here logs a body or a card token: only type, transactionId, status and the route.
Each answer is counted in ``kartu_gateway_callbacks_total{type,result}`` (telemetry).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import OrderedDict, deque
from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from temporalio.service import RPCError, RPCStatusCode

from ayoconnect.models import CALLBACK_ADAPTER, BindingCallback, PaymentCallback
from ayoconnect.security import verify_callback_signature
from ayoconnect.settings import AyoconnectSettings
from starter.client import InvalidRequest, KartuClient, KartuUnavailable
from starter.client.pages import MAX_PAGE_SIZE, MAX_TOKEN_LENGTH
from starter.client.unmatched import list_unmatched_callbacks_page, record_unmatched_callback
from telemetry.gateway_metrics import GatewayMetrics

from .errors import (
    INVALID_CALLBACK,
    UNAVAILABLE,
    ApiError,
    ErrorBody,
    describe_errors,
    error_response,
    field_errors,
)
from .settings import GatewaySettings

log = logging.getLogger("kartu.gateway.callbacks")

# A bcrypt hash is 60 characters: anything much longer is not worth a check.
_MAX_SIGNATURE_LENGTH = 128
# bcrypt checks run in threads: at most this many at once, so a flood cannot take them all.
_MAX_CONCURRENT_CHECKS = 4
_SAFE = re.compile(r"[^A-Za-z0-9_\-]")
# The tags of the callback union: pydantic puts the one matched first in an error's location.
_TAGS = {
    t
    for m in (BindingCallback, PaymentCallback)
    for t in get_args(m.model_fields["type"].annotation)
}


class CallbackAck(BaseModel):
    # ``late``: its payment already closed in the state it reports; nothing to store.
    result: Literal["delivered", "duplicate", "late", "unmatched"]
    workflow_id: str | None = None


class UnmatchedCallback(BaseModel):
    """A signed, well-formed callback no running workflow took. No body, no card token."""

    received_at: datetime
    type: str
    transaction_id: str
    status: str
    workflow_id: str | None = None
    reason: str
    # Where it is stored (its ``UnmatchedCallback`` workflow) and what its check found.
    callback_workflow_id: str | None = None
    finding: str | None = None


class UnmatchedPage(BaseModel):
    callbacks: list[UnmatchedCallback]
    next_page_token: str | None = None


class SignatureVerifier:
    """``verify_callback_signature`` off the event loop, with bounded caches of answers: a header
    seen before costs nothing, concurrent identical headers share one check."""

    def __init__(self, settings: AyoconnectSettings, max_cached: int = 16) -> None:
        self._secret = settings.client_secret.get_secret_value()
        self._merchant = settings.merchant_code
        self._max = max_cached
        self._valid: OrderedDict[str, None] = OrderedDict()
        # Kept apart: a flood of forged headers must not evict the genuine one.
        self._invalid: OrderedDict[str, None] = OrderedDict()
        self._pending: dict[str, asyncio.Future[bool]] = {}
        self._slots = asyncio.Semaphore(_MAX_CONCURRENT_CHECKS)
        self.checks = 0  # bcrypt checks actually run (tests and metrics)

    async def verify(self, header: str | None) -> bool:
        if not header or len(header) > _MAX_SIGNATURE_LENGTH:
            return False
        if header in self._valid:
            self._valid.move_to_end(header)
            return True
        if header in self._invalid:
            return False
        task = self._pending.get(header)
        if task is None:
            # A task of its own: a caller that goes away does not cancel the others' answer.
            task = asyncio.ensure_future(self._check(header))
            self._pending[header] = task
            task.add_done_callback(lambda _: self._pending.pop(header, None))
        return await asyncio.shield(task)

    async def _check(self, header: str) -> bool:
        async with self._slots:
            self.checks += 1
            ok = await asyncio.to_thread(
                verify_callback_signature, header, self._secret, self._merchant
            )
        self._remember(self._valid if ok else self._invalid, header)
        return ok

    def _remember(self, cache: OrderedDict[str, None], header: str) -> None:
        cache[header] = None
        while len(cache) > self._max:
            cache.popitem(last=False)


class CallbackJournal:
    """Bounded memory of what came in: digests of handled bodies, and the unmatched ones."""

    def __init__(self, unmatched_max: int, dedup_max: int) -> None:
        self.unmatched: deque[UnmatchedCallback] = deque(maxlen=unmatched_max)
        self._seen: OrderedDict[bytes, str | None] = OrderedDict()
        self._dedup_max = dedup_max

    def seen(self, digest: bytes) -> tuple[bool, str | None]:
        if digest in self._seen:
            self._seen.move_to_end(digest)
            return True, self._seen[digest]
        return False, None

    def remember(self, digest: bytes, workflow_id: str | None) -> None:
        self._seen[digest] = workflow_id
        while len(self._seen) > self._dedup_max:
            self._seen.popitem(last=False)

    def record_unmatched(
        self,
        callback: BindingCallback | PaymentCallback,
        workflow_id: str | None,
        reason: str,
        stored_as: str | None = None,
    ) -> None:
        """Logged, and kept in memory only to bridge visibility's lag (the list reads Temporal)."""
        entry = UnmatchedCallback(
            received_at=datetime.now(UTC),
            type=callback.type,
            transaction_id=_safe(callback.transactionId),
            status=str(callback.status),
            workflow_id=workflow_id,
            reason=reason[:300],
            callback_workflow_id=stored_as,
        )
        self.unmatched.append(entry)
        log.warning(
            "callback %s %s %s unmatched: %s",
            entry.type,
            entry.transaction_id,
            entry.status,
            entry.reason,
        )


def _safe(value: str) -> str:
    """For logs and the unmatched list: no control characters, bounded length."""
    return _SAFE.sub("?", value[:64])


def callbacks_router(
    gateway: GatewaySettings,
    ayoconnect: AyoconnectSettings,
    journal: CallbackJournal,
    verifier: SignatureVerifier,
    require_api_key: object,
) -> APIRouter:
    router = APIRouter(prefix="/callbacks", tags=["callbacks"])
    header_name = ayoconnect.callback_auth_header

    @router.post(
        "/ayoconnect",
        response_model=CallbackAck,
        summary="Ayoconnect callback (binding or payment result)",
        responses={
            202: {"model": CallbackAck, "description": "Recorded, no running workflow took it"},
            400: {"model": ErrorBody, "description": "Not a valid Ayoconnect callback"},
            401: {"model": ErrorBody, "description": f"{header_name} missing or wrong"},
            413: {"model": ErrorBody, "description": "Body too large"},
            500: {"model": ErrorBody, "description": "Internal error"},
            503: {"model": ErrorBody, "description": "Temporal unavailable: Ayoconnect retries"},
        },
    )
    async def ayoconnect_callback(request: Request) -> JSONResponse:
        kartu: KartuClient = request.app.state.kartu
        metrics: GatewayMetrics = request.app.state.metrics
        if not await verifier.verify(request.headers.get(header_name)):
            log.warning("callback refused: %s missing or invalid", header_name)
            metrics.callback(None, "rejected_signature")
            return error_response(401, f"{header_name} missing or invalid")
        raw = await request.body()
        try:
            callback = CALLBACK_ADAPTER.validate_json(raw)
        except ValidationError as exc:
            metrics.callback(None, "rejected_invalid")
            errors = field_errors(exc.errors(include_url=False), "body", _TAGS)
            if errors[0].code == "json_invalid":
                detail = "the body is not valid JSON"
            else:
                detail = f"not an Ayoconnect callback: {describe_errors(errors)}"
            return error_response(400, detail, kind=INVALID_CALLBACK, errors=errors)
        digest = hashlib.sha256(raw).digest()
        duplicate, workflow_id = journal.seen(digest)
        if duplicate:
            log.info("callback %s duplicate: acknowledged", _safe(callback.transactionId))
            metrics.callback(callback.type, "duplicate")
            return _ack("duplicate", workflow_id, 200)
        try:
            delivery = await kartu.deliver_callback(callback)
        except KartuUnavailable as exc:
            log.warning("callback %s not delivered: %s", _safe(callback.transactionId), exc)
            metrics.callback(callback.type, "unavailable")
            return error_response(503, "Temporal is unavailable: retry later", kind=UNAVAILABLE)
        if delivery.agrees_with_closed:
            journal.remember(digest, delivery.workflow_id)
            log.info(
                "callback %s %s late: %s",
                _safe(callback.transactionId),
                callback.status,
                delivery.reason,
            )
            metrics.callback(callback.type, "late")
            return _ack("late", delivery.workflow_id, 200)
        stored_as = None
        if not delivery.delivered:
            try:
                stored_as = await record_unmatched_callback(
                    kartu.temporal,
                    kartu.task_queue,
                    callback,
                    raw,
                    routed_to=delivery.workflow_id,
                    reason=delivery.reason or "",
                )
            except RPCError as exc:
                # Not remembered as handled: Ayoconnect's retry must get another chance.
                log.warning("callback %s not stored: %s", _safe(callback.transactionId), exc)
                metrics.callback(callback.type, "unavailable")
                return error_response(503, "Temporal is unavailable: retry later", kind=UNAVAILABLE)
        journal.remember(digest, delivery.workflow_id)
        if not delivery.delivered:
            journal.record_unmatched(
                callback, delivery.workflow_id, delivery.reason or "", stored_as
            )
            metrics.callback(callback.type, "unmatched")
            return _ack("unmatched", delivery.workflow_id, 202)
        log.info(
            "callback %s %s %s -> %s %s",
            callback.type,
            _safe(callback.transactionId),
            callback.status,
            delivery.workflow_id,
            delivery.signal,
        )
        metrics.callback(callback.type, "delivered")
        return _ack("delivered", delivery.workflow_id, 200)

    @router.get(
        "/unmatched",
        response_model=UnmatchedPage,
        summary="Signed callbacks no running workflow took, newest first, a page at a time, as "
        "stored in Temporal, with what their check against the provider found",
        dependencies=[Depends(require_api_key)],
        responses={
            401: {"model": ErrorBody, "description": "Missing or invalid API key"},
            422: {"model": ErrorBody, "description": "Invalid page_size or page_token"},
            500: {"model": ErrorBody, "description": "Internal error"},
            503: {"model": ErrorBody, "description": "Temporal unavailable"},
        },
    )
    async def unmatched(
        request: Request,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
        page_token: Annotated[str | None, Query(min_length=1, max_length=MAX_TOKEN_LENGTH)] = None,
    ) -> UnmatchedPage:
        kartu: KartuClient = request.app.state.kartu
        try:
            stored, following = await list_unmatched_callbacks_page(
                kartu.temporal, page_size=page_size, page_token=page_token
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.INVALID_ARGUMENT:
                raise InvalidRequest(f"search refused: {exc.message}", "page_token") from None
            log.warning("unmatched callbacks not listed: %s", exc)
            raise ApiError(503, "Temporal is unavailable: retry later", kind=UNAVAILABLE) from None
        entries = [
            UnmatchedCallback(
                received_at=c.received_at,
                type=c.type,
                transaction_id=c.transaction_id,
                status=c.status,
                workflow_id=c.routed_to,
                reason=c.reason,
                callback_workflow_id=c.callback_workflow_id,
                finding=c.finding,
            )
            for c in stored
        ]
        if page_token is None:
            # Visibility shows a new workflow a moment late: this gateway's latest fill the gap
            # on the first page (those newer than its last entry, if more pages follow).
            listed = {e.callback_workflow_id for e in entries}
            floor = entries[-1].received_at if entries and following else None
            entries += [
                e
                for e in journal.unmatched
                if e.callback_workflow_id not in listed and (floor is None or e.received_at > floor)
            ]
            entries.sort(key=lambda e: e.received_at, reverse=True)
        return UnmatchedPage(callbacks=entries, next_page_token=following)

    return router


def _ack(result: str, workflow_id: str | None, status_code: int) -> JSONResponse:
    body = CallbackAck(result=result, workflow_id=workflow_id)  # type: ignore[arg-type]
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status_code)
