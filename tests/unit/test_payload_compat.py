"""Rolling deploys: a payload written by a newer side decodes on an older one.

During a deploy a new client (or worker) may send a payload with a field the old worker (or
client) does not know yet. Every workflow payload model (``workflows.models``, ``KartuModel``)
drops unknown fields instead of refusing the payload, checked here through the same pydantic
payload converter the worker uses. Input from people and other services stays strict at the
edges: the gateway's request schemas and ``KartuClient``'s checks refuse what they do not know,
with an error that names the field and never shows the value.
"""

from __future__ import annotations

import inspect
import json
import typing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from ayoconnect.models import Customer
from gateway import GatewaySettings, create_app
from gateway.schemas import CaptureBody, PaymentCreate, RefundBody, RegistrationCreate, VoidBody
from starter.client import InvalidRequest, KartuClient
from workflows import lookups, models, reconciliation_models
from workflows.models import (
    ActionResult,
    CaptureCommand,
    CaptureProgress,
    IgnoredMessage,
    KartuModel,
    PaymentFlow,
    PaymentInput,
    PaymentOutcome,
    PaymentProgress,
    PaymentRequestSummary,
    PaymentState,
    PaymentStatus,
    ReconcileDifference,
    RefundInput,
    RefundState,
    RegistrationInput,
    RegistrationState,
    ResolveCommand,
    Transition,
    UnbindInput,
    UnbindState,
    VoidCommand,
    VoidProgress,
    WebviewInfo,
)

TOKEN = "tok" + "A" * 37
AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
# What a newer side might add: a plain value, and a nested object the old side knows nothing of.
ADDED = {"risk_score": 0.42, "added_in_v2": {"reason": "newer client", "tags": ["a", "b"]}}

TRANSITION = Transition(at=AT, from_status="PENDING", to_status="PAID", reason="paid")
IGNORED = IgnoredMessage(at=AT, name="capture signal", reason="payment is PAID")

# One valid instance of every payload model of workflows.models (a model added there without
# an example here fails ``test_every_payload_model_has_an_example``).
EXAMPLES: list[KartuModel] = [
    TRANSITION,
    IGNORED,
    PaymentInput(
        payment_id="order_1",
        customer_id="CUST000123",
        amount=Decimal("150000.00"),
        card_token=TOKEN,
        redirect_url="https://merchant.test/return",
        challenge_window=timedelta(seconds=120),
        provider_poll_max=timedelta(minutes=30),
        deadline=AT,
    ),
    PaymentRequestSummary(amount=Decimal("150000.00"), customer_id="CUST000123", flow="DIRECT"),
    CaptureCommand(amount=Decimal("1000.50"), requested_by="ops"),
    VoidCommand(reason="order cancelled", requested_by="ops"),
    ResolveCommand(action="close", status=PaymentStatus.REFUNDED, note="refunded by phone"),
    ReconcileDifference(differences=["amount differs"], provider_status="SUCCESS"),
    CaptureProgress(attempt=2, sent_amount=Decimal("1000.50")),
    VoidProgress(attempt=1, sent_reason="order cancelled"),
    PaymentProgress(
        charge_answered=True,
        money_kept=True,
        callback_lookups=3,
        held_status=PaymentStatus.PAID,
        capture=CaptureProgress(attempt=2, sent_amount=Decimal("1000.50")),
    ),
    ActionResult(outcome="captured", status=PaymentStatus.CAPTURED, amount=Decimal("1000.50")),
    PaymentOutcome(
        workflow_id="payment-order_1",
        payment_id="order_1",
        status=PaymentStatus.CHALLENGE,
        authentication_url="https://provider.test/3ds/1",
    ),
    PaymentState(
        payment_id="order_1",
        workflow_id="payment-order_1",
        flow=PaymentFlow.AUTH_CAPTURE,
        status=PaymentStatus.CAPTURED,
        amount=Decimal("150000.00"),
        customer_id="CUST000123",
        authorized_amount=Decimal("150000.00"),
        captured_amount=Decimal("100000.00"),
        invoice_number="INV-1",
        authorization_expires_at=AT,
        history=[TRANSITION],
        ignored=[IGNORED],
    ),
    RegistrationInput(
        registration_id="reg_1",
        customer=Customer(name="Kartu Tester", email="t@example.com", phoneNumber="6281234567890"),
        redirect_url="https://merchant.test/cards",
    ),
    WebviewInfo(url="https://provider.test/webview/1", expires_at=AT, reference_number="R1"),
    RegistrationState(
        registration_id="reg_1",
        workflow_id="registration-reg_1",
        status="REGISTERED",
        customer_id="CUST000123",
        card_token=TOKEN,
        webview=WebviewInfo(url="https://provider.test/webview/1", expires_at=AT),
        history=[TRANSITION],
    ),
    RefundInput(
        payment_id="order_1",
        customer_id="CUST000123",
        invoice_number="INV-1",
        amount=Decimal("150000.00"),
        attempt=2,
    ),
    RefundState(
        payment_id="order_1",
        workflow_id="refund-order_1",
        status="REFUNDED",
        invoice_number="INV-1",
        amount=Decimal("150000.00"),
        reason="refund requested",
        history=[TRANSITION],
    ),
    UnbindInput(card_token=TOKEN, customer_id="CUST000123"),
    UnbindState(workflow_id="unbind-x", customer_id="CUST000123", status="UNBOUND"),
]


def payload_models() -> set[type[KartuModel]]:
    """Every KartuModel defined in ``workflows.models``."""
    return {
        cls
        for _, cls in inspect.getmembers(models, inspect.isclass)
        if issubclass(cls, KartuModel)
        and cls is not KartuModel
        and cls.__module__ == models.__name__
    }


def with_added_fields(model: BaseModel, *, nested: bool = False) -> dict[str, Any]:
    """The model as a newer side would send it: its JSON plus fields this side does not know,
    at the top (and with ``nested``, inside every nested object too)."""
    body = json.loads(model.model_dump_json())
    if nested:
        _add_inside(body)
    body.update(ADDED)
    return body


def _add_inside(body: Any) -> None:
    values = body.values() if isinstance(body, dict) else body if isinstance(body, list) else []
    for value in values:
        _add_inside(value)
        if isinstance(value, dict):
            value.update(ADDED)


def decode_as_worker(body: dict[str, Any], model: type[BaseModel]) -> BaseModel:
    """Decode a JSON payload the way the worker's data converter does."""
    payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(body).encode())
    [decoded] = pydantic_data_converter.payload_converter.from_payloads([payload], [model])
    return decoded


def test_every_payload_model_has_an_example():
    assert {type(e) for e in EXAMPLES} == payload_models()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: type(e).__name__)
def test_payload_from_a_newer_side_decodes_with_the_added_fields_dropped(example: KartuModel):
    body = with_added_fields(example)
    assert "risk_score" in body  # the payload really carries what this side does not know

    decoded = decode_as_worker(body, type(example))

    assert decoded == example
    assert "risk_score" not in decoded.model_dump()
    assert "added_in_v2" not in decoded.model_dump()


@pytest.mark.parametrize(
    "example",
    EXAMPLES,
    ids=lambda e: type(e).__name__,
)
def test_nested_objects_from_a_newer_side_decode_too(example: KartuModel):
    body = with_added_fields(example, nested=True)
    assert decode_as_worker(body, type(example)) == example


def nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in nested_models(arg)]


def strict_nested_models() -> set[str]:
    """``Model.field: nested model`` for every model nested in a workflow payload that refuses
    unknown fields (a payload is only as tolerant as its strictest part)."""
    found: set[str] = set()
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel], path: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, info in model.model_fields.items():
            for inner in nested_models(info.annotation):
                if inner.model_config.get("extra") == "forbid":
                    found.add(f"{path}.{name}: {inner.__name__}")
                walk(inner, f"{path}.{name}")

    for module in (models, reconciliation_models, lookups):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, KartuModel) and cls.__module__ == module.__name__:
                walk(cls, cls.__name__)
    return found


# A nested model that refuses unknown fields would make its whole payload refuse them.
KNOWN_STRICT_NESTED: set[str] = set()


def test_no_other_workflow_payload_nests_a_strict_model():
    """Workflow payloads of ``workflows.models``, ``reconciliation_models`` and ``lookups``:
    every model they carry tolerates unknown fields (``RegistrationInput.customer`` is the
    tolerant ``RegistrationCustomer``, no longer the strict wire ``Customer``)."""
    assert strict_nested_models() == KNOWN_STRICT_NESTED


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: type(e).__name__)
def test_a_payload_this_side_wrote_round_trips(example: KartuModel):
    [payload] = pydantic_data_converter.payload_converter.to_payloads([example])
    [decoded] = pydantic_data_converter.payload_converter.from_payloads([payload], [type(example)])
    assert decoded == example


def test_tolerance_is_for_unknown_fields_only_not_for_bad_values():
    """Dropping an unknown field must not loosen the known ones: the rules still hold."""
    body = with_added_fields(EXAMPLES[2])  # PaymentInput
    body["challenge_window"] = "PT45M"  # above the 30-minute bound
    with pytest.raises(ValidationError, match="challenge_window must be at most 30 minutes"):
        decode_as_worker(body, PaymentInput)
    command = with_added_fields(ResolveCommand(action="retry"))
    command["action"] = "close"  # a close without a status
    with pytest.raises(ValidationError, match="close needs the status"):
        decode_as_worker(command, ResolveCommand)


# --- the edges stay strict -------------------------------------------------------------------

GATEWAY_BODIES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (
        PaymentCreate,
        {
            "payment_id": "order_1",
            "customer_id": "CUST000123",
            "amount": "150000.00",
            "card_token": TOKEN,
            "redirect_url": "https://merchant.test/return",
        },
    ),
    (CaptureBody, {"amount": "1000.00"}),
    (VoidBody, {"reason": "order cancelled"}),
    (RefundBody, {"reason": "goods returned"}),
    (
        RegistrationCreate,
        {
            "name": "Kartu Tester",
            "email": "t@example.com",
            "phone_number": "6281234567890",
            "redirect_url": "https://merchant.test/cards",
        },
    ),
]


@pytest.mark.parametrize(
    ("schema", "body"), GATEWAY_BODIES, ids=lambda v: getattr(v, "__name__", "")
)
def test_gateway_schemas_refuse_an_unknown_field(schema: type[BaseModel], body: dict[str, Any]):
    schema.model_validate(body)  # the body itself is valid
    with pytest.raises(ValidationError) as refused:
        schema.model_validate({**body, "risk_score": "secret-ish value"})
    [error] = refused.value.errors()
    assert (error["type"], error["loc"]) == ("extra_forbidden", ("risk_score",))
    assert "secret-ish value" not in str(refused.value)  # values never shown


API_KEY = "unit-test-gateway-api-key-0123"


def offline_kartu() -> KartuClient:
    """A KartuClient whose Temporal client is never reached: every call below is refused by
    its own checks before any request would be sent."""
    temporal: Any = SimpleNamespace(data_converter=pydantic_data_converter)
    return KartuClient(temporal, task_queue="never-used")


async def test_gateway_answers_422_naming_the_unknown_field():
    app = create_app(offline_kartu(), GatewaySettings(api_key=API_KEY, port=0))
    body = {**GATEWAY_BODIES[0][1], "risk_score": "secret-ish value"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        answer = await http.post("/payments", json=body, headers={"X-API-Key": API_KEY})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert [e["field"] for e in problem["errors"]] == ["risk_score"]
    assert "Extra inputs are not permitted" in problem["errors"][0]["detail"]
    assert "secret-ish" not in answer.text


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"amount": "1e3"}, "amount", "amount must be digits"),
        ({"payment_id": "order-1!"}, "payment_id", "payment_id"),
        ({"redirect_url": "ftp://merchant.test"}, "redirect_url", "redirect_url"),
        ({"challenge_window": timedelta(hours=1)}, "challenge_window", "at most 30 minutes"),
        ({"card_token": None}, "card_token", "exactly one of card_token or encrypted_card"),
    ],
)
async def test_kartu_client_refuses_bad_input_naming_the_field(
    change: dict[str, Any], field: str, message: str
):
    fields: dict[str, Any] = {
        "payment_id": "order_1",
        "customer_id": "CUST000123",
        "amount": "150000.00",
        "card_token": TOKEN,
        "redirect_url": "https://merchant.test/return",
        **change,
    }
    payment_id = fields.pop("payment_id")
    with pytest.raises(InvalidRequest) as refused:
        await offline_kartu().pay(payment_id, **fields)
    # The field is named (in ``field`` where one field is at fault) and the value is not shown.
    assert field in refused.value.message and refused.value.field in (field, None)
    assert message in refused.value.message


async def test_kartu_client_refuses_an_unknown_argument():
    """The Python API has no place for an unknown field: it is a TypeError at the call."""
    with pytest.raises(TypeError, match="risk_score"):
        await offline_kartu().pay(  # type: ignore[call-arg]
            "order_1",
            customer_id="CUST000123",
            amount="150000.00",
            card_token=TOKEN,
            redirect_url="https://merchant.test/return",
            risk_score=0.42,
        )
