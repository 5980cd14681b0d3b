"""Rolling deploys between workflow code and activities: an activity's envelope (``activities.
calls``) written by a newer worker decodes on an older one, with the unknown field dropped; the
Ayoconnect wire request inside is never sent with a field dropped (refused, so the retry lands on
a newer worker)."""

from __future__ import annotations

import inspect
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from activities import calls
from ayoconnect.models import (
    CreateChargeRequest,
    Customer,
    GenerateWebviewRequest,
    Operation,
    Order,
    RefundRequest,
    UnbindRequest,
    VoidRequest,
)

CORRELATION = "0" * 32
CHARGE = CreateChargeRequest(
    transactionId="order1pay",
    customerId="CUST000123",
    operation=Operation.PAY,
    cardToken="tok" + "A" * 37,
    order=Order(id="order_1", amount=Decimal("150000.00"), description="order"),
    redirectUrl="https://merchant.test/return",
)

EXAMPLES: list[calls.CallModel] = [
    calls.WebviewCall(
        request=GenerateWebviewRequest(
            transactionId="reg1web",
            customer=Customer(name="Kartu Tester", email="t@example.com", phoneNumber="6281234567"),
            redirectUrl="https://merchant.test/cards",
        ),
        correlation_id=CORRELATION,
    ),
    calls.VoidCall(
        request=VoidRequest(
            transactionId="order1vod",
            customerId="CUST000123",
            invoiceNumber="INV-1",
            reason="order cancelled",
        ),
        correlation_id=CORRELATION,
        lookup_transaction_id="order1s4",
    ),
    calls.UnbindCall(
        request=UnbindRequest(
            transactionId="unb1", customerId="CUST000123", cardToken="tok" + "A" * 37
        ),
        correlation_id=CORRELATION,
    ),
    calls.ChargeCall(request=CHARGE, correlation_id=CORRELATION, lookup_transaction_id="order1s1"),
    calls.RefundCall(
        request=RefundRequest(
            transactionId="order1rfd",
            customerId="CUST000123",
            invoiceNumber="INV-1",
            amount=Decimal("150000.00"),
            reason="refund",
        ),
        correlation_id=CORRELATION,
        lookup_transaction_id="order1s2",
    ),
    calls.StatusCall(
        transaction_id="order1s3",
        customer_id="CUST000123",
        correlation_id=CORRELATION,
        invoice_number="INV-1",
    ),
    calls.CardsListCall(
        transaction_id="cards1", customer_id="CUST000123", correlation_id=CORRELATION
    ),
    calls.MerchantConfirmation(
        url="https://merchant.test/confirm",
        payment_id="order_1",
        workflow_id="payment-order_1",
        status="PAID",
        amount=Decimal("150000.00"),
    ),
    calls.MerchantConfirmationResult(http_status=200),
]


def decode(body: dict[str, Any], model: type[BaseModel]) -> BaseModel:
    """Decode a JSON payload the way the worker's data converter does."""
    payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(body).encode())
    [decoded] = pydantic_data_converter.payload_converter.from_payloads([payload], [model])
    return decoded


def test_every_call_model_has_an_example():
    defined = {
        cls
        for _, cls in inspect.getmembers(calls, inspect.isclass)
        if issubclass(cls, calls.CallModel) and cls is not calls.CallModel
    }
    assert defined == {type(e) for e in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: type(e).__name__)
def test_an_envelope_from_a_newer_worker_decodes_with_the_field_dropped(example):
    body = json.loads(example.model_dump_json())
    body["added_in_v2"] = {"why": "newer worker"}

    decoded = decode(body, type(example))

    assert decoded == example
    assert "added_in_v2" not in decoded.model_dump()


def test_a_wire_request_with_an_unknown_field_is_refused_not_sent_without_it():
    body = json.loads(EXAMPLES[3].model_dump_json())
    body["request"]["installments"] = 3  # a wire field this worker does not know

    with pytest.raises(ValidationError, match="installments"):
        decode(body, calls.ChargeCall)


def test_known_fields_keep_their_rules():
    body = json.loads(EXAMPLES[5].model_dump_json())
    body["original_transaction_id"] = "order1pay"  # two references: still refused
    with pytest.raises(ValidationError, match="exactly one of"):
        decode(body, calls.StatusCall)
