"""Structured logs: JSON lines that parse and carry the payment's ids, text on a terminal.

The stack tests run one payment through a real in-process stack (``tests.kartu_stack``: dev
server, gateway, sandbox, worker) with ``configure_logging`` writing JSON to a buffer and tracing
on: the gateway's request line, the Ayoconnect client's line inside the ``create_charge``
activity and the workflow's own line all name the payment, its workflow and its correlation id;
the gateway's and the activity's lines name the same trace.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from temporalio import activity, workflow
from temporalio.testing import ActivityEnvironment

from ayoconnect.models import CardData
from ayoconnect.security import encrypt_card
from telemetry import logs, tracing
from telemetry.logs import PAN_MASK, configure_logging, mask_card_numbers
from tests.kartu_stack import Stack, new_customer_id, new_key, start_stack
from tests.security.security_scan import Needle, find
from workflows.ids import payment_correlation_id

PAN = "4539728361920455"  # Luhn-valid, approved frictionlessly by the sandbox
CVV = "947"
Line = dict[str, Any]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@contextmanager
def logging_to(stream: io.StringIO, fmt: str | None = "json") -> Iterator[logging.Handler]:
    """``configure_logging`` for the block, everything it changed restored after."""
    root = logging.getLogger()
    httpx_logger = logging.getLogger("httpx")
    saved = (
        root.level,
        httpx_logger.level,
        workflow.logger.workflow_info_on_message,
        activity.logger.activity_info_on_message,
    )
    handler = configure_logging("kartu-test", fmt=fmt, stream=stream)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        httpx_logger.setLevel(saved[1])
        workflow.logger.workflow_info_on_message = saved[2]
        activity.logger.activity_info_on_message = saved[3]


def parsed(text: str) -> list[Line]:
    return [json.loads(line) for line in text.splitlines()]


@dataclasses.dataclass
class LoggedPayment:
    payment_id: str
    text: str

    @property
    def lines(self) -> list[Line]:
        return parsed(self.text)

    def line(self, logger: str, contains: str) -> Line:
        found = [x for x in self.lines if x["logger"] == logger and contains in x["message"]]
        assert found, f"no {logger} line with {contains!r}:\n{self.text[-4000:]}"
        return found[0]


@pytest.fixture(scope="module")
async def logged(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LoggedPayment]:
    assert not tracing.enabled(), "tracing left on by an earlier test"
    buffer = io.StringIO()
    client_logger = logging.getLogger("ayoconnect.client")
    client_level = client_logger.level
    with logging_to(buffer):
        client_logger.setLevel(logging.DEBUG)  # its one line per call, inside the activity
        tracing.configure_tracing("kartu-test", exporter=InMemorySpanExporter())
        try:
            stack = await start_stack(tmp_path_factory.mktemp("logged-stack"))
            try:
                payment_id = await pay_through_gateway(stack)
                deadline = time.monotonic() + 10
                wanted = ("POST /payments 20", "POST /callbacks/ayoconnect 200")
                while not all(text in buffer.getvalue() for text in wanted):
                    assert time.monotonic() < deadline, buffer.getvalue()[-3000:]
                    await asyncio.sleep(0.05)
                yield LoggedPayment(payment_id, buffer.getvalue())
            finally:
                await stack.stop()
        finally:
            tracing.shutdown_tracing()
            client_logger.setLevel(client_level)


async def pay_through_gateway(stack: Stack) -> str:
    assert stack.http is not None
    payment_id = new_key("lg")
    card = CardData(
        pan=PAN, expiryMonth="10", expiryYear="2037", cvv=CVV, cardholderName="LOG SATU"
    )
    response = await stack.http.post(
        "/payments",
        headers=stack.api_headers,
        json={
            "payment_id": payment_id,
            "customer_id": new_customer_id(),
            "amount": "125000",
            "encrypted_card": encrypt_card(card, await stack.public_key()),
            "redirect_url": "https://shop.example/return",
        },
    )
    assert response.status_code in (200, 201), response.text
    assert response.json()["status"] == "PAID", response.text
    return payment_id


def assert_names_the_payment(line: Line, payment_id: str) -> None:
    assert line.get("payment_id") == payment_id, line
    assert line.get("workflow_id") == f"payment-{payment_id}", line
    assert line.get("correlation_id") == payment_correlation_id(payment_id), line


def test_every_line_is_one_json_object(logged: LoggedPayment) -> None:
    lines = logged.lines
    assert len(lines) >= 4  # gateway, activity, workflow, callback at least
    for line in lines:
        assert {"time", "level", "service", "logger", "message"} <= line.keys(), line
        assert line["service"] == "kartu-test"
    hits = find([Needle.pan("PAN", PAN), Needle.cvv(CVV)], [("logs", logged.text)])
    assert not hits, hits


def test_a_gateway_request_line_names_the_payment(logged: LoggedPayment) -> None:
    line = logged.line("kartu.gateway.access", "POST /payments 20")
    assert_names_the_payment(line, logged.payment_id)
    assert line.get("request_id"), line
    assert line.get("trace_id"), line  # tracing is on: the request's span
    # The sandbox's callback, routed by its transactionId, names the payment too.
    callback = logged.line("kartu.gateway.access", "POST /callbacks/ayoconnect")
    assert_names_the_payment(callback, logged.payment_id)


def test_an_activity_line_names_the_payment_and_the_trace(logged: LoggedPayment) -> None:
    line = logged.line("ayoconnect.client", "create_charge")
    assert_names_the_payment(line, logged.payment_id)
    assert line.get("activity_type") == "create_charge", line
    assert line.get("run_id") and line.get("attempt") == 1, line
    request = logged.line("kartu.gateway.access", "POST /payments 20")
    assert line.get("trace_id") == request["trace_id"], (line, request)


def test_a_workflow_line_names_the_payment(logged: LoggedPayment) -> None:
    line = logged.line("temporalio.workflow", logged.payment_id)
    assert_names_the_payment(line, logged.payment_id)
    assert line.get("workflow_type") == "DirectPayment" and line.get("run_id"), line
    # The ids are fields: the SDK's dict of them is no longer glued to the message.
    assert "'workflow_id'" not in line["message"], line


async def test_activity_logger_ids_are_lifted_into_fields() -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_id="refund-p_logs_1",
        workflow_type="Refund",
        activity_type="refund",
        attempt=3,
    )

    async def act() -> None:
        activity.logger.info("refund sent")
        logging.getLogger("ayoconnect.client").warning("slow answer")

    buffer = io.StringIO()
    with logging_to(buffer):
        await env.run(act)
    lines = [x for x in parsed(buffer.getvalue()) if x["message"] in ("refund sent", "slow answer")]
    assert len(lines) == 2, buffer.getvalue()
    for line in lines:
        assert line["workflow_id"] == "refund-p_logs_1", line
        assert line["payment_id"] == "p_logs_1", line
        # A refund is Ayoconnect-side one flow with its payment: the payment's correlation id.
        assert line["correlation_id"] == payment_correlation_id("p_logs_1"), line
        assert line["activity_type"] == "refund" and line["attempt"] == 3, line
    assert "{'activity_id'" not in lines[0]["message"]


def test_text_on_a_terminal_json_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(logs.LOG_FORMAT_ENV, raising=False)
    log = logging.getLogger("kartu.test.logs")

    terminal = Terminal()
    with logging_to(terminal, fmt=None):
        log.warning("payment moved", extra={"payment_id": "p_t1"})
    text = terminal.getvalue().strip()
    assert text.endswith(
        "kartu.test.logs payment moved [payment_id=p_t1 workflow_id=payment-p_t1 "
        f"correlation_id={payment_correlation_id('p_t1')}]"
    ), text
    assert " WARNING " in text

    piped = io.StringIO()
    with logging_to(piped, fmt=None):
        log.warning("payment moved", extra={"payment_id": "p_t1"})
    assert parsed(piped.getvalue())[0]["payment_id"] == "p_t1"

    monkeypatch.setenv(logs.LOG_FORMAT_ENV, "json")
    forced = Terminal()
    with logging_to(forced, fmt=None):
        log.warning("payment moved")
    assert parsed(forced.getvalue())[0]["message"] == "payment moved"

    monkeypatch.setenv(logs.LOG_FORMAT_ENV, "xml")
    with pytest.raises(ValueError, match="json or text"):
        configure_logging("kartu-test", stream=io.StringIO())


async def test_request_lines_carry_request_and_correlation_ids() -> None:
    """The sandbox's lines: Ayoconnect's X-Correlation-ID; a bad X-Request-ID is replaced."""
    log = logging.getLogger("kartu.test.request")

    async def charge(request: Request) -> PlainTextResponse:
        log.info("charge handled")
        return PlainTextResponse("ok")

    app = logs.LogContext(
        Starlette(routes=[Route("/charge", charge, methods=["POST"])]),
        correlation_header="X-Correlation-ID",
    )
    buffer = io.StringIO()
    with logging_to(buffer):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test"
        ) as client:
            await client.post(
                "/charge", headers={"X-Correlation-ID": "c" * 32, "X-Request-ID": "req-1"}
            )
            await client.post("/charge", headers={"X-Request-ID": 'x" "level": "x'})
    first, second = [x for x in parsed(buffer.getvalue()) if x["message"] == "charge handled"]
    assert first["correlation_id"] == "c" * 32 and first["request_id"] == "req-1", first
    assert "correlation_id" not in second and second["request_id"] != 'x" "level": "x', second
    assert len(second["request_id"]) == 16


def test_card_numbers_are_masked_in_messages() -> None:
    grouped = " ".join(PAN[i : i + 4] for i in range(0, 16, 4))
    masked = mask_card_numbers(f"card {PAN}, typed {grouped}, dashed {grouped.replace(' ', '-')}")
    assert masked == f"card {PAN_MASK}, typed {PAN_MASK}, dashed {PAN_MASK}"
    # Not a card number: not Luhn-valid, a millisecond clock, an amount, a short reference.
    kept = "4539728361920456 at 1733000000000 for 150000 ref 4111111"
    assert mask_card_numbers(kept) == kept
