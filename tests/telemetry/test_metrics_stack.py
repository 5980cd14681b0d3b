"""The metrics of a real stack after a known workload (``conftest.workload``): the right counts
under the right labels, on the worker's and the gateway's endpoints, and no identifier or card
number in any label."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from ayoconnect import AyoconnectSettings, callback_signature
from starter.demo import run_demo

CALLBACK = "/callbacks/ayoconnect"


async def test_payments_started_and_ended_by_flow_and_status(workload):
    w = workload
    assert w.worker_total("kartu_payments_started_total", flow="DIRECT") == 3
    assert w.worker_total("kartu_payments_started_total", flow="AUTH_CAPTURE") == 2
    ended = {
        (labels["flow"], labels["status"]): value
        for name, labels, value in w.worker
        if name == "kartu_payments_ended_total"
    }
    assert ended == {
        ("DIRECT", "PAID"): 2,  # one of them refunded afterwards: still ended PAID, once
        ("DIRECT", "DECLINED"): 1,
        ("AUTH_CAPTURE", "CAPTURED"): 1,
        ("AUTH_CAPTURE", "VOIDED"): 1,
    }
    # Intermediate statuses are transitions, not ends.
    assert w.worker_total("kartu_payment_transitions_total", status="AUTHORIZED") == 2
    assert w.worker_total("kartu_payment_transitions_total", status="NEEDS_ATTENTION") == 1
    # The SDK's meter adds its own low-cardinality labels.
    started = [labels for name, labels, _ in w.worker if name == "kartu_payments_started_total"]
    assert {labels["workflow_type"] for labels in started} == {
        "DirectPayment",
        "AuthCapturePayment",
    }


async def test_amounts_in_whole_rupiah_by_status(workload):
    def idr(status: str) -> float:
        return workload.worker_total("kartu_payment_amount_idr_total", status=status)

    paid = sum(Decimal(p["amount"]) for p in workload.paid)
    assert idr("PAID") == int(paid) == 192_000
    assert idr("DECLINED") == 99_000
    assert idr("AUTHORIZED") == 75_000 + 52_000  # 75000.50: whole rupiah, as KartuAmount
    assert idr("CAPTURED") == 75_000
    assert idr("VOIDED") == 52_000
    assert idr("NEEDS_ATTENTION") == 52_000


async def test_compensation_and_needs_attention(workload):
    compensations = [
        (labels["flow"], labels["kind"], value)
        for name, labels, value in workload.worker
        if name == "kartu_compensations_total"
    ]
    assert compensations == [("AUTH_CAPTURE", "void", 1)]
    # The gauge counted the payment while it waited for ops, and nothing once it was resolved.
    assert workload.attention_seen == 1
    gauge = {
        labels["flow"]: value
        for name, labels, value in workload.worker
        if name == "kartu_needs_attention_open"
    }
    assert gauge == {"DIRECT": 0, "AUTH_CAPTURE": 0, "REFUND": 0, "REVIEW": 0, "OTHER": 0}


async def test_ayoconnect_calls_by_operation_and_outcome(workload):
    calls = {
        (labels["operation"], labels["outcome"]): value
        for name, labels, value in workload.worker
        if name == "kartu_ayoconnect_requests_total"
    }
    expected = {
        ("pay", "ok"): 2,
        ("pay", "declined"): 1,
        ("authorize", "ok"): 2,
        ("capture", "ok"): 1,
        ("refund", "ok"): 1,
        ("void", "rule_violation"): 1,  # the injected refusal of the compensating void
        ("void", "ok"): 1,  # ops' retry
    }
    assert {k: v for k, v in calls.items() if k in expected} == expected
    # Status look-ups happen too (the refund's, the compensation's confirmation): all answered.
    assert set(calls) - set(expected) <= {("payment_status", "ok")}
    for (operation, outcome), count in calls.items():
        observed = workload.worker_total(
            "kartu_ayoconnect_request_duration_seconds_count", operation=operation, outcome=outcome
        )
        assert observed == count, (operation, outcome)
    # Kartu's buckets (up to a 60 s timeout), not the SDK's default ones.
    buckets = {
        labels["le"]
        for name, labels, _ in workload.worker
        if name == "kartu_ayoconnect_request_duration_seconds_bucket"
    }
    assert {"0.025", "30", "60"} <= buckets


async def test_gateway_requests_by_route_template(workload):
    requests = {
        (labels["method"], labels["route"], labels["status"]): value
        for name, labels, value in workload.gateway
        if name == "kartu_gateway_requests_total"
    }
    assert requests[("POST", "/payments", "201")] == 5
    assert requests[("POST", "/payments/{payment_id}/capture", "200")] == 1
    assert requests[("POST", "/payments/{payment_id}/refund", "201")] == 1
    assert requests[("GET", "/payments/{payment_id}", "200")] == 1
    # Ayoconnect's callbacks for the payments came in; all were taken by a workflow.
    callbacks = {
        labels["result"]: value
        for name, labels, value in workload.gateway
        if name == "kartu_gateway_callbacks_total"
    }
    assert callbacks and set(callbacks) <= {"delivered", "late", "duplicate"}, callbacks
    assert requests[("POST", CALLBACK, "200")] == sum(callbacks.values())
    assert workload.gateway_total(
        "kartu_gateway_request_duration_seconds_count", route="/payments"
    ) == (5)


async def test_callbacks_rejected_and_unmatched_are_counted(metrics_stack, workload):
    s = metrics_stack
    before = await s.gateway_samples()
    ayoconnect = AyoconnectSettings()
    signature = callback_signature(
        ayoconnect.client_secret.get_secret_value(), ayoconnect.merchant_code, rounds=4
    )
    body = {
        "type": "PAYMENT",
        "transactionId": "nobody_knows_this-pay",
        "invoiceNumber": "INV-METRICS-0001",
        "operation": "PAY",
        "status": "SUCCESS",
        "amount": "10000.00",
        "responseCode": "2005400",
    }
    header = ayoconnect.callback_auth_header
    forged = await s.rest("POST", CALLBACK, json=body, headers={header: "$2b$04$forged"})
    assert forged.status_code == 401
    invalid = await s.rest("POST", CALLBACK, content=b"{not json", headers={header: signature})
    assert invalid.status_code == 400
    unmatched = await s.rest(
        "POST", CALLBACK, content=json.dumps(body).encode(), headers={header: signature}
    )
    assert unmatched.status_code == 202, unmatched.text
    after = await s.gateway_samples()

    def delta(**labels: str) -> float:
        name = "kartu_gateway_callbacks_total"
        return s.total(after, name, **labels) - s.total(before, name, **labels)

    assert delta(type="unknown", result="rejected_signature") == 1
    assert delta(type="unknown", result="rejected_invalid") == 1
    assert delta(type="PAYMENT", result="unmatched") == 1
    assert delta() == 3


async def test_kartu_demo_payments_are_counted(metrics_stack, workload):
    """``kartu demo``'s flows (what the issue's "done when" scrapes): counted by flow and
    status, the 3DS challenge and the authorizations as transitions."""
    s = metrics_stack
    before = await s.worker_samples()
    gateway_before = await s.gateway_samples()
    results = await run_demo(s.kartu, sandbox_url=s.local.config.sandbox_url, timeout=60)
    assert all(r.ok for r in results), [(r.flow, r.status, r.detail) for r in results]
    after = await s.worker_samples()
    gateway_after = await s.gateway_samples()

    def delta(name: str, **labels: str) -> float:
        return s.total(after, name, **labels) - s.total(before, name, **labels)

    assert delta("kartu_payments_started_total", flow="DIRECT") == 3  # direct, 3DS, refund
    assert delta("kartu_payments_started_total", flow="AUTH_CAPTURE") == 3  # capture, void, expire
    ended = {
        status: delta("kartu_payments_ended_total", status=status)
        for status in ("PAID", "CAPTURED", "VOIDED", "EXPIRED", "DECLINED", "FAILED", "REFUNDED")
    }
    assert ended == {
        "PAID": 3,  # the refunded one ended PAID; its refund is the Refund workflow's
        "CAPTURED": 1,
        "VOIDED": 1,
        "EXPIRED": 1,
        "DECLINED": 0,
        "FAILED": 0,
        "REFUNDED": 0,
    }
    assert delta("kartu_payment_transitions_total", status="CHALLENGE") == 1
    assert delta("kartu_payment_transitions_total", status="AUTHORIZED") == 3
    assert delta("kartu_ayoconnect_requests_total", operation="generate_webview", outcome="ok") == 2
    assert delta("kartu_ayoconnect_requests_total", operation="refund", outcome="ok") == 1
    assert delta("kartu_ayoconnect_requests_total", operation="unbind", outcome="ok") == 1
    # The registrations' binding callbacks came through the gateway, all taken.
    name = "kartu_gateway_callbacks_total"
    bindings = s.total(gateway_after, name, type="CARD_BINDING") - s.total(
        gateway_before, name, type="CARD_BINDING"
    )
    assert bindings >= 2
    for result in ("unmatched", "rejected_signature", "rejected_invalid", "unavailable"):
        assert s.total(gateway_after, name, result=result) == s.total(
            gateway_before, name, result=result
        ), result


# A PAN, an id Kartu or a merchant made up, a customer id: none may be a label value.
_CARD_NUMBER = re.compile(r"\d{12,19}")
_CUSTOMER_ID = re.compile(r"^C[0-9A-F]{11}$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:/{}+\- ]*$")
_LABELS = {
    # Kartu's own
    "flow",
    "status",
    "kind",
    "operation",
    "outcome",
    "method",
    "route",
    "type",
    "result",
    # the SDK's and Prometheus'
    "le",
    "namespace",
    "task_queue",
    "workflow_type",
    "activity_type",
    "worker_type",
    "poller_type",
    "service_name",
    "failure_reason",
    "eager",
    "status_code",  # the gRPC status of a failed Temporal request
}


async def test_no_label_carries_an_identifier_or_card_data(metrics_stack, workload):
    samples = [*await metrics_stack.worker_samples(), *await metrics_stack.gateway_samples()]
    ids = workload.ids
    values: dict[str, set[str]] = {}
    for name, labels, _ in samples:
        assert set(labels) <= _LABELS, (name, labels)
        for key, value in labels.items():
            values.setdefault(key, set()).add(value)
            assert value not in ids, (name, key)
            assert not any(i in value for i in ids), (name, key)
            assert not _CARD_NUMBER.search(value), (name, key, value)
            assert not _CUSTOMER_ID.match(value), (name, key, value)
            assert _LABEL_VALUE.match(value), (name, key, value)
    # Bounded sets of values (the SDK's ``operation`` names its RPCs; ``le``: the buckets of
    # every histogram).
    bounds = {"operation": 40, "le": 60}
    for key, seen in values.items():
        assert len(seen) <= bounds.get(key, 25), (key, sorted(seen))
