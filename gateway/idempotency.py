"""``Idempotency-Key``, durably: what a retried request is compared with lives in Temporal, never
in this process, so a restarted gateway (or another replica) answers a retry the same way.

Kartu's operations are idempotent by their workflow ids already; the key maps onto them:

- ``POST /payments``, ``POST /cards/registrations``: the key is the payment (registration) id,
  so the workflow ``payment-<id>`` (``registration-<id>``, reuse policy REJECT_DUPLICATE) is the
  record. The same request again joins it and answers the same payment as it stands now.
  Another body under the key is told apart from the input the workflow was started with (the
  first event of its history): 409.
- ``POST .../capture``, ``.../void``: the key becomes the update id (``capture-<key>``), and
  Temporal runs an update id once per workflow and answers its result again. Another body under
  the key is told apart from that update's input as its history accepted it: 409.
- ``POST .../refund``, ``DELETE /cards/{token}``: a payment has one refund (``refund-<id>``), a
  card one unbind (``unbind-<digest>``), whatever the key. With a key, a body other than the
  one the refund (unbind) holds (another reason; another customer) is a 409 instead of an
  answer about a request the caller did not make.

Compared after the call, not before: two requests racing with one key then still act once
(Temporal decides), and the loser learns it was another request. A request refused before
anything happened (invalid input; a capture the workflow's validator refused) leaves no record:
sending it again asks again. Values are compared, never shown: a conflict names fields only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ayoconnect.models import money
from starter.client import KartuUnavailable
from workflows.ids import payment_workflow_id, registration_workflow_id
from workflows.models import (
    CaptureCommand,
    PaymentInput,
    RefundState,
    RegistrationInput,
    UnbindState,
    VoidCommand,
)

from .errors import IDEMPOTENCY_CONFLICT, ApiError, Location, field_error
from .schemas import CaptureBody, PaymentCreate, RegistrationCreate, VoidBody

log = logging.getLogger("kartu.gateway.idempotency")

M = TypeVar("M", bound=BaseModel)

# PaymentInput fields a REST body sets, by their name in the body.
_PAYMENT_FIELDS = {
    "customer_id": "customer_id",
    "amount": "amount",
    "card_token": "card_token",
    "encrypted_card": "encrypted_card",
    "redirect_url": "redirect_url",
    "description": "description",
    "confirmation_url": "confirmation_url",
    "deadline": "deadline",
    "challenge_window": "challenge_window_seconds",
    "capture_policy": "capture_policy",
    "capture_policy_margin": "capture_policy_margin_seconds",
    "authorization_window": "authorization_window_seconds",
}


def update_id(verb: str, key: str) -> str:
    """The update id ``KartuClient.capture`` / ``void`` make of an idempotency key."""
    return f"{verb}-{key}"


async def same_payment(temporal: Client, payment_id: str, body: PaymentCreate) -> None:
    """ApiError 409 if ``payment-<id>`` was started from another body."""
    stored = await _started_input(temporal, payment_workflow_id(payment_id), PaymentInput)
    if stored is None:
        return
    fields = body.payment_fields()
    fields["amount"] = money(fields["amount"])
    requested = {
        name: fields[name] if fields.get(name) is not None else _default(PaymentInput, name)
        for name in _PAYMENT_FIELDS
    }
    differ = [
        _PAYMENT_FIELDS[name] for name, value in requested.items() if getattr(stored, name) != value
    ]
    _refuse_if(differ, "body", f"payment {payment_id}")


async def same_registration(
    temporal: Client, registration_id: str, body: RegistrationCreate
) -> None:
    """ApiError 409 if ``registration-<id>`` was started from another body."""
    workflow_id = registration_workflow_id(registration_id)
    stored = await _started_input(temporal, workflow_id, RegistrationInput)
    if stored is None:
        return
    requested = {
        "customer_id": body.customer_id,
        "name": body.name,
        "email": body.email,
        "phone_number": body.phone_number,
        "redirect_url": body.redirect_url,
        "failed_redirect_url": body.failed_redirect_url,
    }
    held = {
        "customer_id": stored.customer.customerId,
        "name": stored.customer.name,
        "email": stored.customer.email,
        "phone_number": stored.customer.phoneNumber,
        "redirect_url": stored.redirect_url,
        "failed_redirect_url": stored.failed_redirect_url,
    }
    _refuse_if(_differ(requested, held), "body", f"registration {registration_id}")


async def same_action(
    temporal: Client, payment_id: str, verb: str, key: str, body: CaptureBody | VoidBody
) -> None:
    """ApiError 409 if the payment's update for ``key`` was accepted with another body."""
    command_type: type[CaptureCommand] | type[VoidCommand]
    if isinstance(body, CaptureBody):
        command_type = CaptureCommand
        requested: dict[str, Any] = {
            "amount": None if body.amount is None else money(body.amount),
            "requested_by": body.requested_by,
        }
    else:
        command_type = VoidCommand
        requested = {"reason": body.reason, "requested_by": body.requested_by}
    workflow_id = payment_workflow_id(payment_id)
    stored = await _accepted_update(temporal, workflow_id, update_id(verb, key), command_type)
    if stored is None:
        return
    held = {name: getattr(stored, name) for name in requested}
    _refuse_if(_differ(requested, held), "body", f"the {verb} of payment {payment_id}")


def same_refund(refund: RefundState, reason: str) -> None:
    if refund.reason != reason:
        _refuse_if(["reason"], "body", f"the refund of payment {refund.payment_id}")


def same_unbind(unbind: UnbindState, customer_id: str) -> None:
    if unbind.customer_id != customer_id:
        _refuse_if(["customer_id"], "query", "the unbind of this card")


def _differ(requested: Mapping[str, Any], held: Mapping[str, Any]) -> list[str]:
    return [name for name, value in requested.items() if _norm(value) != _norm(held.get(name))]


def _norm(value: Any) -> Any:
    return money(value) if isinstance(value, Decimal) else value


def _refuse_if(fields: list[str], location: Location, what: str) -> None:
    if not fields:
        return
    why = "differs from the request first made with this key"
    errors = [field_error(location, [name], why, "differs") for name in fields]
    raise ApiError(
        409,
        f"this Idempotency-Key was used for another request on {what} ({', '.join(fields)} "
        "differ): send the first request again, or use a new key for a new request",
        fields[0],
        kind=IDEMPOTENCY_CONFLICT,
        errors=errors,
    )


def _default(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].get_default(call_default_factory=True)


async def _started_input(temporal: Client, workflow_id: str, input_type: type[M]) -> M | None:
    """The input the workflow was started with (its first history event), None if no such
    workflow. Payment and registration ids are never reused (REJECT_DUPLICATE): one run."""
    handle = temporal.get_workflow_handle(workflow_id)
    try:
        async for event in handle.fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            return await _decoded(temporal, payloads, input_type, workflow_id)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise KartuUnavailable(f"Temporal: {err.message}") from None
    return None


async def _accepted_update(
    temporal: Client, workflow_id: str, update: str, arg_type: type[M]
) -> M | None:
    """The argument the workflow accepted update ``update`` with, None if it never did (or
    refused it in its validator: nothing was done)."""
    handle = temporal.get_workflow_handle(workflow_id)
    try:
        async for event in handle.fetch_history_events():
            if not event.HasField("workflow_execution_update_accepted_event_attributes"):
                continue
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if request.meta.update_id == update:
                payloads = request.input.args.payloads
                return await _decoded(temporal, payloads, arg_type, workflow_id)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise KartuUnavailable(f"Temporal: {err.message}") from None
    return None


async def _decoded(temporal: Client, payloads: Any, kind: type[M], workflow_id: str) -> M | None:
    try:
        values = await temporal.data_converter.decode(payloads, [kind])
    except Exception as exc:  # an older input shape, keys rotated away: nothing to compare
        log.warning("%s: request of record not readable (%s)", workflow_id, type(exc).__name__)
        return None
    value = values[0] if values else None
    return value if isinstance(value, kind) else None
