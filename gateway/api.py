"""REST for backends in any language: the same operations as ``KartuClient``, thin handlers.

Idempotency: ``POST /payments`` and ``POST /cards/registrations`` take the merchant's id from
the body or the ``Idempotency-Key`` header (equal if both); asking twice answers the same
payment. On capture and void the key becomes the Temporal update id, so a retried call gets
the first answer; refunds and unbinds are once per payment / card by their workflow id.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request

from starter.client import (
    CardSummary,
    InvalidRequest,
    KartuClient,
    PaymentSummary,
    ProviderStatus,
    RegistrationStarted,
)
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

from .errors import ERROR_RESPONSES, ApiError, ErrorBody
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
        description="POST /payments, /cards/registrations: the payment or registration id. "
        "Actions: a retry with the same key gets the first answer.",
    ),
]
PaymentId = Annotated[str, Path(pattern=KEY_PATTERN, max_length=KEY_MAX_LENGTH)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "Unknown"}}
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Refused: the payment's status does not allow it"}
}


def kartu(request: Request) -> KartuClient:
    client: KartuClient = request.app.state.kartu
    return client


Kartu = Annotated[KartuClient, Depends(kartu)]


def _merchant_id(body_id: str | None, header: str | None, field: str) -> tuple[str, str]:
    """The id to use and the field to blame if it is invalid."""
    if body_id is not None and header is not None and body_id != header:
        raise ApiError(400, f"Idempotency-Key must equal {field} when both are given", field)
    if body_id is not None:
        return body_id, field
    if header is not None:
        return header, "Idempotency-Key"
    raise ApiError(422, f"give {field} in the body or an Idempotency-Key header", field)


def rest_router(settings: GatewaySettings, require_api_key: object) -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_api_key)], responses=ERROR_RESPONSES)

    # --- payments --------------------------------------------------------------------------

    @router.post(
        "/payments",
        response_model=PaymentOutcome,
        tags=["payments"],
        summary="Pay (direct) or authorize (auth_capture): the first outcome",
        responses={409: {"model": ErrorBody, "description": "Id used by another payment"}},
    )
    async def create_payment(
        body: PaymentCreate, client: Kartu, idempotency_key: IdempotencyKey = None
    ) -> PaymentOutcome:
        payment_id, blame = _merchant_id(body.payment_id, idempotency_key, "payment_id")
        wait = min(body.wait_seconds or settings.max_wait_seconds, settings.max_wait_seconds)
        start = client.pay if body.flow == "direct" else client.authorize
        try:
            return await start(payment_id, timeout=wait, **body.payment_fields())
        except InvalidRequest as exc:
            if exc.field == "payment_id" and blame != "payment_id":
                raise InvalidRequest(exc.message.replace("payment_id", blame), blame) from None
            raise

    @router.get(
        "/payments",
        response_model=list[PaymentSummary],
        tags=["payments"],
        summary="Find payments by status, customer, flow, authorization expiry (visibility)",
    )
    async def find_payments(
        client: Kartu,
        status: PaymentStatus | None = None,
        customer_id: Annotated[
            str | None, Query(min_length=6, max_length=16, pattern=r"^[A-Za-z0-9]+$")
        ] = None,
        expiring_before: datetime | None = None,
        flow: Literal["direct", "auth_capture"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[PaymentSummary]:
        return await client.find_payments(
            status=status,
            customer_id=customer_id,
            expiring_before=expiring_before,
            flow=flow,
            limit=limit,
        )

    @router.get(
        "/payments/{payment_id}",
        response_model=PaymentState,
        tags=["payments"],
        summary="A payment's state (the workflow's query: fresh)",
        responses=NOT_FOUND,
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
        responses=NOT_FOUND,
    )
    async def get_payment_at_provider(payment_id: PaymentId, client: Kartu) -> ProviderStatus:
        return await client.provider_status(payment_id, timeout=settings.max_wait_seconds)

    @router.post(
        "/payments/{payment_id}/capture",
        response_model=ActionResult,
        tags=["payments"],
        summary="Capture an AUTHORIZED payment",
        responses={**NOT_FOUND, **REFUSED},
    )
    async def capture(
        payment_id: PaymentId,
        client: Kartu,
        body: CaptureBody | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> ActionResult:
        body = body or CaptureBody()
        return await client.capture(
            payment_id,
            body.amount,
            requested_by=body.requested_by,
            idempotency_key=idempotency_key,
        )

    @router.post(
        "/payments/{payment_id}/void",
        response_model=ActionResult,
        tags=["payments"],
        summary="Void an AUTHORIZED payment",
        responses={**NOT_FOUND, **REFUSED},
    )
    async def void(
        payment_id: PaymentId,
        client: Kartu,
        body: VoidBody | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> ActionResult:
        body = body or VoidBody()
        return await client.void(
            payment_id,
            body.reason,
            requested_by=body.requested_by,
            idempotency_key=idempotency_key,
        )

    @router.post(
        "/payments/{payment_id}/refund",
        response_model=RefundState,
        tags=["payments"],
        summary="Refund a PAID or CAPTURED payment in full (once; asking again answers it)",
        responses={**NOT_FOUND, **REFUSED},
    )
    async def refund(
        payment_id: PaymentId,
        client: Kartu,
        body: RefundBody | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> RefundState:
        body = body or RefundBody()
        if idempotency_key:
            log.info("refund of %s, Idempotency-Key %s", payment_id, idempotency_key[:64])
        return await client.refund(payment_id, body.reason, timeout=settings.max_wait_seconds)

    @router.get(
        "/payments/{payment_id}/refund",
        response_model=RefundState,
        tags=["payments"],
        summary="The payment's refund",
        responses=NOT_FOUND,
    )
    async def get_refund(payment_id: PaymentId, client: Kartu) -> RefundState:
        return await client.refund_status(payment_id)

    # --- cards -----------------------------------------------------------------------------

    @router.post(
        "/cards/registrations",
        response_model=RegistrationStarted,
        tags=["cards"],
        summary="Register a card: the webview URL to send the customer to",
        responses=REFUSED,
    )
    async def create_registration(
        body: RegistrationCreate, client: Kartu, idempotency_key: IdempotencyKey = None
    ) -> RegistrationStarted:
        registration_id, blame = _merchant_id(
            body.registration_id, idempotency_key, "registration_id"
        )
        try:
            return await client.register_card(
                registration_id,
                name=body.name,
                email=body.email,
                phone_number=body.phone_number,
                redirect_url=body.redirect_url,
                customer_id=body.customer_id,
                failed_redirect_url=body.failed_redirect_url,
            )
        except InvalidRequest as exc:
            if exc.field == "registration_id" and blame != "registration_id":
                raise InvalidRequest(exc.message.replace("registration_id", blame), blame) from None
            raise

    @router.get(
        "/cards/registrations/{registration_id}",
        response_model=RegistrationState,
        tags=["cards"],
        summary="A registration's state (REGISTERED carries the card token)",
        responses=NOT_FOUND,
    )
    async def get_registration(
        registration_id: Annotated[str, Path(pattern=KEY_PATTERN)], client: Kartu
    ) -> RegistrationState:
        return await client.registration_status(registration_id)

    @router.get(
        "/customers/{customer_id}/cards",
        response_model=list[CardSummary],
        tags=["cards"],
        summary="Cards registered through Kartu for a customer",
    )
    async def list_cards(
        customer_id: Annotated[str, Path(min_length=6, max_length=16, pattern=r"^[A-Za-z0-9]+$")],
        client: Kartu,
    ) -> list[CardSummary]:
        return await client.list_cards(customer_id)

    @router.delete(
        "/cards/{card_token}",
        response_model=UnbindState,
        tags=["cards"],
        summary="Unbind (disable) a card token; after a FAILED unbind, asking again retries",
        responses=REFUSED,
    )
    async def unbind(
        card_token: Annotated[str, Path(min_length=40, max_length=40, pattern=r"^[A-Za-z0-9]+$")],
        customer_id: Annotated[str, Query(min_length=6, max_length=16, pattern=r"^[A-Za-z0-9]+$")],
        client: Kartu,
    ) -> UnbindState:
        return await client.unbind_card(
            card_token, customer_id=customer_id, timeout=settings.max_wait_seconds
        )

    return router
