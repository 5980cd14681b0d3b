"""REST for backends in any language: the same operations as ``KartuClient``, thin handlers.

Creations answer 201 with ``Location``; lists are cursor pages (``page_size``, ``page_token`` =
the last page's ``next_page_token``); errors are problems (``errors.py``). Every POST that starts
or moves money honours ``Idempotency-Key`` (``idempotency.py``: the same request again gets the
same answer, another body under the key a 409). On ``POST /payments`` and
``/cards/registrations`` the key is the payment (registration) id: from the body or the header,
equal if both.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from ayoconnect.models import CardToken, CustomerId
from starter.client import (
    ActionRefused,
    InvalidRequest,
    KartuClient,
    ProviderStatus,
    RegistrationStarted,
)
from starter.client.pages import MAX_PAGE_SIZE, MAX_TOKEN_LENGTH, CardPage, PaymentPage
from workflows.ids import KEY_MAX_LENGTH
from workflows.models import (
    ActionResult,
    PaymentOutcome,
    PaymentState,
    PaymentStatus,
    RefundState,
    RegistrationState,
    UnbindState,
)

from . import idempotency
from .errors import INVALID_REQUEST, KEY_MISMATCH, ApiError, field_error, problem_responses
from .schemas import (
    KEY_PATTERN,
    CaptureBody,
    PaymentCreate,
    RefundBody,
    RegistrationCreate,
    VoidBody,
)
from .settings import GatewaySettings

log = logging.getLogger("kartu.gateway.api")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="The same request again gets the same answer and does nothing twice; "
        "another request under the same key is refused (409). POST /payments and "
        "/cards/registrations: the payment or registration id itself.",
    ),
]
PaymentId = Annotated[str, Path(pattern=KEY_PATTERN, max_length=KEY_MAX_LENGTH)]
CustomerIdParam = Annotated[CustomerId, Path()]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="At most this many items")]
PageToken = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_TOKEN_LENGTH,
        description="The previous page's next_page_token, with the same filters",
    ),
]
# Errors any REST call can answer.
COMMON = problem_responses(401, 422, 500, 503)


def created(what: str) -> dict[int | str, dict[str, Any]]:
    location = {"description": f"The {what}'s URL", "schema": {"type": "string"}}
    return {201: {"description": f"{what} created", "headers": {"Location": location}}}


def kartu(request: Request) -> KartuClient:
    client: KartuClient = request.app.state.kartu
    return client


Kartu = Annotated[KartuClient, Depends(kartu)]


def _merchant_id(body_id: str | None, header: str | None, field: str) -> tuple[str, str]:
    """The id to use and the field to blame if it is invalid."""
    if body_id is not None and header is not None and body_id != header:
        raise ApiError(
            400,
            f"Idempotency-Key must equal {field} when both are given",
            field,
            kind=KEY_MISMATCH,
            errors=[
                field_error("body", [field], "differs from the Idempotency-Key header", "differs"),
                field_error("header", ["Idempotency-Key"], f"differs from {field}", "differs"),
            ],
        )
    if body_id is not None:
        return body_id, field
    if header is not None:
        return header, "Idempotency-Key"
    raise ApiError(
        422,
        f"give {field} in the body or an Idempotency-Key header",
        field,
        kind=INVALID_REQUEST,
        errors=[field_error("body", [field], "Field required (or the header)", "missing")],
    )


def _renamed(exc: InvalidRequest, field: str, blame: str) -> InvalidRequest:
    """The id came from the header: blame the header."""
    if exc.field == field and blame != field:
        return InvalidRequest(exc.message.replace(field, blame), blame)
    return exc


def rest_router(settings: GatewaySettings, require_api_key: object) -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_api_key)], responses=COMMON)

    # --- payments --------------------------------------------------------------------------

    @router.post(
        "/payments",
        response_model=PaymentOutcome,
        status_code=201,
        tags=["payments"],
        summary="Pay (direct) or authorize (auth_capture): the first outcome",
        description="Asked again with the same id (body or Idempotency-Key) and body: the same "
        "payment's outcome as it stands, 201 again.",
        responses={
            **created("payment"),
            **problem_responses(400, 409, 413, 504, _409="The id was used for another payment"),
        },
    )
    async def create_payment(
        body: PaymentCreate,
        client: Kartu,
        response: Response,
        idempotency_key: IdempotencyKey = None,
    ) -> PaymentOutcome:
        payment_id, blame = _merchant_id(body.payment_id, idempotency_key, "payment_id")
        wait = min(body.wait_seconds or settings.max_wait_seconds, settings.max_wait_seconds)
        start = client.pay if body.flow == "direct" else client.authorize
        try:
            outcome = await start(payment_id, timeout=wait, **body.payment_fields())
        except InvalidRequest as exc:
            raise _renamed(exc, "payment_id", blame) from None
        await idempotency.same_payment(client.temporal, payment_id, body)
        response.headers["Location"] = f"/payments/{payment_id}"
        return outcome

    @router.get(
        "/payments",
        response_model=PaymentPage,
        tags=["payments"],
        summary="Find payments by status, customer, flow, authorization expiry (visibility)",
        description="Newest first, a page at a time: pass `next_page_token` back as "
        "`page_token` with the same filters. A page may be short (even empty) with more to "
        "come; the last has `next_page_token` null.",
    )
    async def find_payments(
        client: Kartu,
        status: PaymentStatus | None = None,
        customer_id: Annotated[CustomerId | None, Query()] = None,
        expiring_before: datetime | None = None,
        flow: Literal["direct", "auth_capture"] | None = None,
        page_size: PageSize = 100,
        page_token: PageToken = None,
    ) -> PaymentPage:
        return await client.find_payments_page(
            status=status,
            customer_id=customer_id,
            expiring_before=expiring_before,
            flow=flow,
            page_size=page_size,
            page_token=page_token,
        )

    @router.get(
        "/payments/{payment_id}",
        response_model=PaymentState,
        tags=["payments"],
        summary="A payment's state (the workflow's query: fresh)",
        responses=problem_responses(404),
    )
    async def get_payment(payment_id: PaymentId, client: Kartu) -> PaymentState:
        return await client.payment_status(payment_id)

    @router.get(
        "/payments/{payment_id}/provider",
        response_model=ProviderStatus,
        tags=["payments"],
        summary="Kartu's state of a payment beside Ayoconnect's own (Get Payment Status)",
        description="``provider.outcome`` is ``found``, ``unknown`` (Ayoconnect does not know "
        "the payment) or ``unavailable`` (no answer in time); Kartu's side is ``kartu``.",
        responses=problem_responses(404, 504),
    )
    async def get_payment_at_provider(payment_id: PaymentId, client: Kartu) -> ProviderStatus:
        return await client.provider_status(payment_id, timeout=settings.max_wait_seconds)

    @router.post(
        "/payments/{payment_id}/capture",
        response_model=ActionResult,
        tags=["payments"],
        summary="Capture an AUTHORIZED payment",
        responses=problem_responses(400, 404, 409, 413, 504),
    )
    async def capture(
        payment_id: PaymentId,
        client: Kartu,
        body: CaptureBody | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> ActionResult:
        body = body or CaptureBody()
        call = client.capture(
            payment_id,
            body.amount,
            requested_by=body.requested_by,
            idempotency_key=idempotency_key,
        )
        return await _action(client, call, payment_id, "capture", idempotency_key, body)

    @router.post(
        "/payments/{payment_id}/void",
        response_model=ActionResult,
        tags=["payments"],
        summary="Void an AUTHORIZED payment",
        responses=problem_responses(400, 404, 409, 413, 504),
    )
    async def void(
        payment_id: PaymentId,
        client: Kartu,
        body: VoidBody | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> ActionResult:
        body = body or VoidBody()
        call = client.void(
            payment_id,
            body.reason,
            requested_by=body.requested_by,
            idempotency_key=idempotency_key,
        )
        return await _action(client, call, payment_id, "void", idempotency_key, body)

    @router.post(
        "/payments/{payment_id}/refund",
        response_model=RefundState,
        status_code=201,
        tags=["payments"],
        summary="Refund a PAID or CAPTURED payment in full (once; asking again answers it)",
        responses={**created("refund"), **problem_responses(400, 404, 409, 413)},
    )
    async def refund(
        payment_id: PaymentId,
        client: Kartu,
        response: Response,
        body: RefundBody | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> RefundState:
        body = body or RefundBody()
        state = await client.refund(payment_id, body.reason, timeout=settings.max_wait_seconds)
        if idempotency_key is not None:
            idempotency.same_refund(state, body.reason)
        response.headers["Location"] = f"/payments/{payment_id}/refund"
        return state

    @router.get(
        "/payments/{payment_id}/refund",
        response_model=RefundState,
        tags=["payments"],
        summary="The payment's refund",
        responses=problem_responses(404),
    )
    async def get_refund(payment_id: PaymentId, client: Kartu) -> RefundState:
        return await client.refund_status(payment_id)

    # --- cards -----------------------------------------------------------------------------

    @router.post(
        "/cards/registrations",
        response_model=RegistrationStarted,
        status_code=201,
        tags=["cards"],
        summary="Register a card: the webview URL to send the customer to",
        responses={
            **created("registration"),
            **problem_responses(
                400,
                404,
                409,
                413,
                504,
                _404="The registration ended and is no longer kept",
                _409="Refused (registration ended), or the id was reused",
            ),
        },
    )
    async def create_registration(
        body: RegistrationCreate,
        client: Kartu,
        response: Response,
        idempotency_key: IdempotencyKey = None,
    ) -> RegistrationStarted:
        registration_id, blame = _merchant_id(
            body.registration_id, idempotency_key, "registration_id"
        )
        try:
            started = await client.register_card(
                registration_id,
                name=body.name,
                email=body.email,
                phone_number=body.phone_number,
                redirect_url=body.redirect_url,
                customer_id=body.customer_id,
                failed_redirect_url=body.failed_redirect_url,
            )
        except InvalidRequest as exc:
            raise _renamed(exc, "registration_id", blame) from None
        except ActionRefused:
            await idempotency.same_registration(client.temporal, registration_id, body)
            raise
        await idempotency.same_registration(client.temporal, registration_id, body)
        response.headers["Location"] = f"/cards/registrations/{registration_id}"
        return started

    @router.get(
        "/cards/registrations/{registration_id}",
        response_model=RegistrationState,
        tags=["cards"],
        summary="A registration's state (REGISTERED carries the card token)",
        responses=problem_responses(404),
    )
    async def get_registration(
        registration_id: Annotated[str, Path(pattern=KEY_PATTERN)], client: Kartu
    ) -> RegistrationState:
        return await client.registration_status(registration_id)

    @router.get(
        "/customers/{customer_id}/cards",
        response_model=CardPage,
        tags=["cards"],
        summary="Cards registered through Kartu for a customer, a page of registrations at a time",
    )
    async def list_cards(
        customer_id: CustomerIdParam,
        client: Kartu,
        page_size: PageSize = 100,
        page_token: PageToken = None,
    ) -> CardPage:
        return await client.list_cards_page(customer_id, page_size=page_size, page_token=page_token)

    @router.delete(
        "/cards/{card_token}",
        response_model=UnbindState,
        tags=["cards"],
        summary="Unbind (disable) a card token; after a FAILED unbind, asking again retries",
        responses=problem_responses(
            404, 409, 504, _409="Refused (tried too often), or the key was used for another"
        ),
    )
    async def unbind(
        card_token: Annotated[CardToken, Path()],
        customer_id: Annotated[CustomerId, Query()],
        client: Kartu,
        idempotency_key: IdempotencyKey = None,
    ) -> UnbindState:
        state = await client.unbind_card(
            card_token, customer_id=customer_id, timeout=settings.max_wait_seconds
        )
        if idempotency_key is not None:
            idempotency.same_unbind(state, customer_id)
        return state

    return router


async def _action(
    client: KartuClient,
    call: Awaitable[ActionResult],
    payment_id: str,
    verb: str,
    key: str | None,
    body: CaptureBody | VoidBody,
) -> ActionResult:
    """A capture or void; with a key, a reused key is a 409 before any answer (a refusal
    included: it may be the refusal of the first request's result)."""
    try:
        result = await call
    except ActionRefused:
        if key is not None:
            await idempotency.same_action(client.temporal, payment_id, verb, key, body)
        raise
    if key is not None:
        await idempotency.same_action(client.temporal, payment_id, verb, key, body)
    return result
