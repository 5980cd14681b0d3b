"""One payment is one trace: gateway (or KartuClient) → workflow → activity → Ayoconnect HTTP call.

A real stack (``tests.kartu_stack``: dev server, gateway, sandbox, worker) built while tracing is
on with an in-memory exporter, the way a process's ``configure_tracing`` turns it on. An
operator capturing every HTTP header (``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*=.*``) is the
worst case: credentials must still be redacted, and no span may hold the PAN, the CVV, the API
key, the client secret or the bearer token.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ayoconnect.models import CardData
from ayoconnect.security import encrypt_card
from gateway.app import redact_path
from telemetry import tracing
from tests.kartu_stack import API_KEY, Stack, new_customer_id, new_key, start_stack
from tests.security.security_scan import Needle, find

ROOT = Path(__file__).resolve().parents[2]
PAN = "4539728361920455"  # Luhn-valid, in no table of the sandbox: approved frictionlessly
CVV = "947"
REDIRECT_URL = "https://shop.example/return"
CAPTURE_ALL_HEADERS = {
    f"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_{side}": ".*"
    for side in ("SERVER_REQUEST", "SERVER_RESPONSE", "CLIENT_REQUEST", "CLIENT_RESPONSE")
}


@pytest.fixture(scope="module")
async def traced(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Stack, InMemorySpanExporter]]:
    assert not tracing.enabled(), "tracing left on by an earlier test"
    exporter = InMemorySpanExporter()
    with pytest.MonkeyPatch.context() as env:
        for name, value in CAPTURE_ALL_HEADERS.items():
            env.setenv(name, value)
        assert tracing.configure_tracing("kartu-test", exporter=exporter)
        try:
            stack = await start_stack(tmp_path_factory.mktemp("traced-stack"))
        except BaseException:
            tracing.shutdown_tracing()
            raise
    try:
        yield stack, exporter
    finally:
        await stack.stop()
        tracing.shutdown_tracing()


async def encrypted_card(stack: Stack) -> str:
    card = CardData(
        pan=PAN, expiryMonth="10", expiryYear="2037", cvv=CVV, cardholderName="JEJAK SATU"
    )
    return encrypt_card(card, await stack.public_key())


async def spans_when(
    exporter: InMemorySpanExporter,
    ready: Callable[[list[ReadableSpan]], bool],
    timeout: float = 10,
) -> list[ReadableSpan]:
    """The finished spans once ``ready`` holds (server spans end after their answer is sent)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = list(exporter.get_finished_spans())
        if ready(spans) or time.monotonic() > deadline:
            return spans
        await asyncio.sleep(0.05)


def url_of(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("url.full") or attributes.get("http.url") or "")


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    """Names of the span's parents, nearest first."""
    by_id = {s.context.span_id: s for s in spans}
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found = by_id[parent.span_id]
        names.append(found.name)
        parent = found.parent
    return names


def sandbox_calls(stack: Stack, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    assert stack.sandbox is not None
    return [
        s
        for s in spans
        if s.kind == SpanKind.CLIENT and url_of(s).startswith(stack.sandbox.base_url)
    ]


def assert_one_payment_trace(
    stack: Stack, spans: list[ReadableSpan], root: ReadableSpan, workflow_id: str
) -> None:
    trace = [s for s in spans if s.context.trace_id == root.context.trace_id]
    names = {s.name for s in trace}
    workflow = [s for s in trace if s.name == "RunWorkflow:DirectPayment"]
    assert workflow, sorted(names)
    assert (workflow[0].attributes or {}).get("temporalWorkflowID") == workflow_id
    charge = [s for s in trace if s.name == "RunActivity:create_charge"]
    assert charge, sorted(names)
    assert root.name in ancestors(charge[0], trace)
    under_charge = [
        urlsplit(url_of(s)).path
        for s in sandbox_calls(stack, trace)
        if "RunActivity:create_charge" in ancestors(s, trace)
    ]
    assert stack.ayoconnect.card_path("create_charge_path") in under_charge, under_charge


def assert_no_secrets(stack: Stack, spans: list[ReadableSpan], card: str) -> None:
    text = [(s.name, s.to_json(indent=None)) for s in spans]
    needles = [
        Needle.pan("PAN", PAN),
        Needle.cvv(CVV),
        Needle.literal("gateway API key", API_KEY),
        Needle.literal("client secret", stack.ayoconnect.client_secret.get_secret_value()),
        Needle.literal("encrypted card", card),
    ]
    hits = find(needles, text)
    assert not hits, "\n".join(str(hit) for hit in hits)
    joined = "\n".join(t for _, t in text)
    assert "Bearer" not in joined  # the access token, in any captured header
    # Header capture was on: the credentials were there to leak, and were redacted.
    redacted = [
        s.name
        for s in spans
        if (s.attributes or {}).get("http.request.header.authorization") == ("[REDACTED]",)
    ]
    assert redacted, "no Authorization header was captured: the check above proves nothing"
    for span in spans:
        assert "?" not in url_of(span), (span.name, url_of(span))


async def test_a_gateway_payment_is_one_trace(traced: tuple[Stack, InMemorySpanExporter]) -> None:
    stack, exporter = traced
    assert stack.http is not None
    payment_id = new_key("trg")
    card = await encrypted_card(stack)
    response = await stack.http.post(
        "/payments",
        headers=stack.api_headers,
        json={
            "payment_id": payment_id,
            "customer_id": new_customer_id(),
            "amount": "150000",
            "encrypted_card": card,
            "redirect_url": REDIRECT_URL,
        },
    )
    assert response.status_code in (200, 201), response.text
    assert response.json()["status"] == "PAID", response.text

    def gateway_span(spans: list[ReadableSpan]) -> ReadableSpan | None:
        for span in spans:
            attributes = span.attributes or {}
            if span.kind == SpanKind.SERVER and span.name == "POST /payments":
                if attributes.get("http.request.header.idempotency_key") is None:
                    return span
        return None

    spans = await spans_when(exporter, lambda spans: gateway_span(spans) is not None)
    root = gateway_span(spans)
    assert root is not None, sorted({s.name for s in spans})
    # The path the span records, not a query string or a card token.
    attributes = root.attributes or {}
    assert attributes.get("http.target", attributes.get("url.path")) == "/payments"
    assert_one_payment_trace(stack, spans, root, f"payment-{payment_id}")
    trace = [s for s in spans if s.context.trace_id == root.context.trace_id]
    starts = [s.name for s in trace if s.name.startswith("StartUpdateWithStartWorkflow:")]
    assert starts, sorted({s.name for s in trace})
    assert_no_secrets(stack, spans, card)


async def test_a_kartu_client_payment_is_one_trace(
    traced: tuple[Stack, InMemorySpanExporter],
) -> None:
    stack, exporter = traced
    payment_id = new_key("trk")
    card = await encrypted_card(stack)
    outcome = await stack.kartu.pay(
        payment_id,
        customer_id=new_customer_id(),
        amount="75000",
        redirect_url=REDIRECT_URL,
        encrypted_card=card,
    )
    assert outcome.status.value == "PAID", outcome
    workflow_id = f"payment-{payment_id}"

    def start_span(spans: list[ReadableSpan]) -> ReadableSpan | None:
        for span in spans:
            if (span.attributes or {}).get("temporalWorkflowID") == workflow_id and (
                span.name.startswith("StartUpdateWithStartWorkflow:")
            ):
                return span
        return None

    spans = await spans_when(exporter, lambda spans: start_span(spans) is not None)
    root = start_span(spans)
    assert root is not None, sorted({s.name for s in spans})
    assert root.parent is None  # the KartuClient call starts the trace
    assert_one_payment_trace(stack, spans, root, workflow_id)
    assert_no_secrets(stack, spans, card)


async def test_paths_and_queries_are_redacted_on_server_spans(
    traced: tuple[Stack, InMemorySpanExporter],
) -> None:
    """A card token in a path and a query string never reach a span; captured credential
    headers are redacted (the gateway's redaction, through ``instrument_app``)."""
    _, exporter = traced
    token = "Q" * 40
    app = FastAPI()

    @app.delete("/cards/{card_token}")
    async def unbind(card_token: str) -> dict[str, str]:
        return {"ok": card_token[:1]}

    with pytest.MonkeyPatch.context() as env:
        for name, value in CAPTURE_ALL_HEADERS.items():
            env.setenv(name, value)
        tracing.instrument_app(app, redact_path=redact_path)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as client:
            exporter.clear()
            answer = await client.delete(
                f"/cards/{token}?customer_id=C123456&pan={PAN}",
                headers={"X-API-Key": API_KEY, "Authorization": f"Bearer {API_KEY}"},
            )
    assert answer.status_code == 200
    # This request's server span only: the exporter is the process's, and a traced stack's
    # in-process parts may still be answering an earlier test's callbacks.
    server = [
        s
        for s in exporter.get_finished_spans()
        if s.kind == SpanKind.SERVER and s.name.startswith("DELETE ")
    ]
    assert [s.name for s in server] == ["DELETE /cards/{card_token}"]
    shown = json.dumps(dict(server[0].attributes or {}))
    assert token not in shown and PAN not in shown and API_KEY not in shown, shown
    assert "/cards/<redacted>" in shown, shown
    assert (server[0].attributes or {}).get("http.request.header.x_api_key") == ("[REDACTED]",)


def test_off_by_default_costs_nothing() -> None:
    """Without OTEL_* settings: no SDK imported, no interceptor, no patched transport."""
    code = (
        "import sys, httpx, worker, gateway\n"
        "from telemetry import tracing\n"
        "assert not tracing.configure_tracing('kartu-worker')\n"
        "assert tracing.temporal_interceptors() == []\n"
        "app = gateway.create_app(lambda: None, gateway.GatewaySettings(api_key='k' * 16))\n"
        "assert not [m for m in sys.modules if m.startswith(('opentelemetry.sdk',"
        " 'opentelemetry.instrumentation'))]\n"
        "print('off')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "KARTU_GATEWAY_"))}
    done = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "off", done.stderr[-2000:]


def test_otel_variables_choose_the_exporters() -> None:
    assert tracing.exporter_names({}) == []
    assert tracing.exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == ["otlp"]
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "console,otlp"}) == [
        "console",
        "otlp",
    ]
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []
    disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}
    assert tracing.exporter_names(disabled) == []
    with pytest.raises(tracing.TracingConfigError, match="zipkin"):
        tracing.make_exporter("zipkin")
