"""What the integration tests share: real servers on loopback and a ``Harness`` that starts
Kartu's workflows the way a backend does and reconciles them with the sandbox's ledger.

Nothing here is faked: the workflows run their real activities, which call the sandbox (a
faithful local Ayoconnect) over HTTP; the sandbox's signed callbacks go to the real gateway app,
which signals the workflow named by the callback's transactionId.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.testing import WorkflowEnvironment

from ayoconnect import AyoconnectClient
from ayoconnect.models import Customer
from sandbox.control_client import SandboxControl
from sandbox.customer import register_card
from sandbox.test_cards import TEST_OTP
from workflows import AuthCapturePaymentWorkflow, CardRegistrationWorkflow, DirectPaymentWorkflow
from workflows.ids import correlation_id, payment_workflow_id, registration_workflow_id
from workflows.models import (
    PaymentInput,
    PaymentOutcome,
    PaymentState,
    PaymentStatus,
    RegistrationInput,
    RegistrationState,
    RegistrationStatus,
    WebviewInfo,
)

HISTORIES = Path(__file__).parent / "histories"
RECORD_ENV = "KARTU_RECORD_HISTORIES"

FRICTIONLESS = "4111111111111111"
CHALLENGE = "4000000000003220"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
WRONG_OTP = "000000"
FAR_EXPIRY = "12/99"

REDIRECT_URL = "https://merchant.example/return"
CARD_DONE_URL = "https://merchant.example/cards/done"
CARD_FAILED_URL = "https://merchant.example/cards/failed"

# Kartu status → the sandbox ledger's payment status it must agree with.
LEDGER_STATUS = {
    PaymentStatus.PAID: "SUCCESS",
    PaymentStatus.AUTHORIZED: "AUTHORIZED",
    PaymentStatus.CAPTURED: "CAPTURED",
    PaymentStatus.VOIDED: "VOIDED",
    PaymentStatus.EXPIRED: "VOIDED",
    PaymentStatus.REFUNDED: "REFUNDED",
    PaymentStatus.DECLINED: "FAILED",
    PaymentStatus.FAILED: "FAILED",
}

S = TypeVar("S")


def new_key(prefix: str = "it") -> str:
    """A fresh merchant key (paymentId / registrationId): at most 26 of [A-Za-z0-9_]."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def recording() -> bool:
    return os.environ.get(RECORD_ENV) == "1"


async def record_history(handle: WorkflowHandle, name: str) -> None:
    """With KARTU_RECORD_HISTORIES=1, save the run's history for ``test_replay.py``."""
    if not recording():
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    path = HISTORIES / f"{name}.json"
    path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")


# --- ASGI apps on this event loop -----------------------------------------------------------


class _LoopServer(uvicorn.Server):
    """uvicorn on the caller's event loop; leaves signal handling to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class LoopServers:
    """ASGI apps served by uvicorn on the running loop (the gateway must use the test's
    Temporal client, which belongs to this loop)."""

    _servers: list[tuple[_LoopServer, asyncio.Task[None], socket.socket]] = field(
        default_factory=list
    )

    async def serve(self, app: Any) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, http="h11", lifespan="on", log_level="warning", access_log=False
        )
        server = _LoopServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server exited at startup")
            await asyncio.sleep(0.01)
        self._servers.append((server, task, sock))
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for server, _, _ in self._servers:
            server.should_exit = True
        for _, task, sock in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
            sock.close()
        self._servers.clear()


class Merchant:
    """The merchant's confirmation endpoint: ``/confirm/ok`` (200), ``/confirm/refuse`` (409),
    ``/confirm/down`` (503: Kartu keeps retrying). Records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.app = FastAPI()
        self.app.add_api_route("/confirm/{mode}", self._confirm, methods=["POST"])

    async def _confirm(self, mode: str, request: Request) -> JSONResponse:
        self.calls.append((mode, await request.json()))
        status = {"ok": 200, "refuse": 409, "down": 503}.get(mode, 404)
        return JSONResponse({"mode": mode}, status_code=status)

    def calls_for(self, payment_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [c for c in self.calls if c[1].get("payment_id") == payment_id]


# --- the harness ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    number: str
    card_token: str
    customer_id: str


@dataclass
class Harness:
    env: WorkflowEnvironment
    task_queue: str
    control: SandboxControl
    sandbox_url: str
    gateway_url: str
    merchant: Merchant
    merchant_url: str
    ayoconnect: AyoconnectClient  # the worker's client: its token cache follows the clocks

    @property
    def client(self) -> Client:
        return self.env.client

    # --- clocks ---------------------------------------------------------------------------

    async def align_clocks(self) -> None:
        """Move the sandbox clock up to the test server's (which jumps when time is skipped),
        so webview and authorization expiry times mean the same thing on both sides."""
        temporal_now = await self.env.get_current_time()
        sandbox_now = datetime.fromisoformat((await self.control.clock())["utc"])
        behind = (temporal_now - sandbox_now).total_seconds()
        if behind > 1:
            await self.control.advance_clock(behind)
            # The worker's cached token was issued on the sandbox's old clock and has just
            # expired there, though not by the client's monotonic clock: its next call would
            # meet a 401 (harmless, retried once) unless that call's answer is dropped, and a
            # test would see an ambiguous failure its fault plan did not ask for.
            self.ayoconnect.invalidate_token()

    # --- registration ---------------------------------------------------------------------

    async def open_webview(
        self, key: str, customer_id: str | None = None
    ) -> tuple[WebviewInfo, WorkflowHandle[Any, RegistrationState]]:
        """Update-with-start: the registration's ``webview`` update answers with the URL."""
        registration = RegistrationInput(
            registration_id=key,
            customer=Customer(
                customerId=customer_id,
                name="Kartu Tester",
                email="tester@example.com",
                phoneNumber="6281234567890",
            ),
            redirect_url=CARD_DONE_URL,
            failed_redirect_url=CARD_FAILED_URL,
        )
        operation = WithStartWorkflowOperation(
            CardRegistrationWorkflow.run,
            registration,
            id=registration_workflow_id(key),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        webview = await self.client.execute_update_with_start_workflow(
            CardRegistrationWorkflow.webview, start_workflow_operation=operation
        )
        return webview, await operation.workflow_handle()

    async def register(
        self, number: str, *, otp: str = TEST_OTP, key: str | None = None
    ) -> tuple[RegistrationState, WorkflowHandle[Any, RegistrationState]]:
        """Open the webview, fill it in as the customer, return the registration's result."""
        webview, handle = await self.open_webview(key or new_key("reg"))
        # Far-off expiry: the test server's clock jumps far ahead over a session.
        await register_card(webview.url, card_number=number, otp=otp, expiry=FAR_EXPIRY)
        return await self.result(handle), handle

    async def card(self, number: str) -> Card:
        state, _ = await self.register(number)
        assert state.status is RegistrationStatus.REGISTERED, state
        assert state.card_token and state.customer_id
        return Card(number, state.card_token, state.customer_id)

    # --- payments -------------------------------------------------------------------------

    def payment(
        self, key: str, card: Card, amount: str = "150000.00", **overrides: Any
    ) -> PaymentInput:
        fields: dict[str, Any] = {
            "payment_id": key,
            "customer_id": card.customer_id,
            "amount": Decimal(amount),
            "description": f"integration test {key}",
            "card_token": card.card_token,
            "redirect_url": REDIRECT_URL,
        }
        fields.update(overrides)
        return PaymentInput(**fields)

    async def start_payment(
        self, payment: PaymentInput, *, auth_capture: bool = False
    ) -> tuple[PaymentOutcome, WorkflowHandle[Any, PaymentState]]:
        """Update-with-start with early return: the payment's first outcome in one round trip."""
        workflow: Any = AuthCapturePaymentWorkflow if auth_capture else DirectPaymentWorkflow
        operation = WithStartWorkflowOperation(
            workflow.run,
            payment,
            id=payment_workflow_id(payment.payment_id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        try:
            outcome = await self.client.execute_update_with_start_workflow(
                workflow.first_outcome, start_workflow_operation=operation
            )
        except BaseException:
            # The operation's handle holds the same start error: read it, or asyncio logs it.
            with contextlib.suppress(BaseException):
                await operation.workflow_handle()
            raise
        return outcome, await operation.workflow_handle()

    async def start_payment_workflow(
        self, payment: PaymentInput, *, auth_capture: bool = False
    ) -> WorkflowHandle[Any, PaymentState]:
        """Plain start (no update), for tests that only await the result."""
        workflow: Any = AuthCapturePaymentWorkflow if auth_capture else DirectPaymentWorkflow
        return await self.start(workflow.run, payment, payment_workflow_id(payment.payment_id))

    async def start(self, run: Any, arg: Any, workflow_id: str) -> WorkflowHandle[Any, Any]:
        """Start with Kartu's id policies; returns a plain handle (see ``result``)."""
        started = await self.client.start_workflow(
            run,
            arg,
            id=workflow_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        return self.client.get_workflow_handle_for(run, workflow_id, run_id=started.run_id)

    async def result(self, handle: WorkflowHandle[Any, S], *, skip_time: bool = False) -> S:
        """The workflow's result. In real time by default: the test server, once unlocked,
        jumps to the next timer it holds, even one of a long-finished workflow (an activity's
        schedule-to-close, a 10-year run timeout), so a test skips only when it needs to.
        Handles must be plain ones (``start``, update-with-start): the test environment's own
        ``start_workflow`` handles always unlock."""
        if not skip_time:
            return await handle.result()
        async with self.env.time_skipping_unlocked():
            return await handle.result()

    async def state(self, handle: WorkflowHandle) -> PaymentState:
        return await handle.query("state", result_type=PaymentState)

    async def wait_state(
        self,
        handle: WorkflowHandle,
        predicate: Callable[[Any], bool],
        result_type: type = PaymentState,
        timeout: float = 10.0,
    ) -> Any:
        """Poll the ``state`` query in real time (the clock does not skip meanwhile)."""
        deadline = time.monotonic() + timeout
        while True:
            state = await handle.query("state", result_type=result_type)
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"state never matched within {timeout} s: {state!r}")
            await asyncio.sleep(0.05)

    # --- the ledger -----------------------------------------------------------------------

    async def ledger_payments(self, order_id: str) -> list[dict[str, Any]]:
        """Every payment the sandbox holds for this order (Kartu's order id = payment id)."""
        return [p for p in (await self.control.ledger())["payments"] if p["orderId"] == order_id]

    async def ledger_payment(self, order_id: str) -> dict[str, Any]:
        payments = await self.ledger_payments(order_id)
        assert len(payments) == 1, f"expected exactly one charge for {order_id}: {payments}"
        return payments[0]

    async def reconcile(self, state: PaymentState) -> dict[str, Any]:
        """The workflow's end state and the provider's ledger tell the same story: exactly one
        charge for the order, same status, invoice, amounts, customer, one correlation id."""
        payment = await self.ledger_payment(state.payment_id)
        assert payment["status"] == LEDGER_STATUS[state.status], (state.status, payment)
        assert payment["originalTransactionId"] in (
            f"{state.payment_id}-pay",
            f"{state.payment_id}-auth",
        )
        assert payment["customerId"] == state.customer_id
        assert Decimal(payment["amounts"]["amount"]) == state.amount
        if state.invoice_number is not None:
            assert payment["invoiceNumber"] == state.invoice_number
        if state.captured_amount is not None:
            assert Decimal(payment["amounts"]["captured"]) == state.captured_amount
        if state.refunded_amount is not None:
            assert Decimal(payment["amounts"]["refunded"]) == state.refunded_amount
        flow_id = correlation_id(state.workflow_id)
        for op in payment["operations"]:
            if op["correlationId"] is not None:
                assert op["correlationId"] == flow_id, op
        return payment


def operations(payment: dict[str, Any]) -> list[str]:
    return [op["operation"] for op in payment["operations"]]


def operation(payment: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [op for op in payment["operations"] if op["operation"] == name]
    return found
