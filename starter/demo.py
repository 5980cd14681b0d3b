"""``kartu demo``: every Kartu flow end to end against a running stack (``kartu up``).

The customer's part (webview card form, OTP, 3DS page) is played over plain HTTP as a browser
would (``sandbox.customer``); everything else goes through ``KartuClient``, as a backend would.
One row per flow: its final state, the expected one, and the workflow to open in the UI.

Expiry: the workflow holds an authorization with a durable timer until the provider's
``authorizationExpiresAt`` (its own ``authorization_window`` only when the provider gives none).
The demo authorizes with a short window anyway. When the provider's expiry is near (a stack
started with ``kartu up --sandbox-auth-window 20s``) the sandbox voids the hold by itself and the
workflow's timer fires, confirms with the status API and ends EXPIRED. When it is days away (the
sandbox's default 7 days, as Ayoconnect), the demo moves the sandbox clock past it: the sandbox
voids the hold and sends its automatic-void callback; the row is EXPIRED only if the workflow
acts on that callback, and otherwise fails saying so.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from sandbox.control_client import SandboxControl
from sandbox.customer import CustomerError, authenticate_3ds, register_card

from .client import KartuClient, KartuError, KartuTimeout
from .output import Block, Table, Text, print_json

FRICTIONLESS_CARD = "4111111111111111"
CHALLENGE_CARD = "4000000000003220"
TEST_OTP = "123456"
REDIRECT_URL = "https://shop.example/kartu-demo/return"
DEMO_AUTHORIZATION_WINDOW = timedelta(seconds=5)
# Past the expiry: the workflow's timer has fired, its status call answered.
EXPIRY_MARGIN = 10.0
# After the sandbox's automatic void: its callback delivered, the workflow's status call made.
CALLBACK_WAIT = 8.0


FLOWS = (
    "register (webview)",
    "register 3DS card (webview)",
    "direct payment",
    "3DS payment",
    "authorize, capture",
    "authorize, void",
    "authorize, expire",
    "pay, refund",
    "cards list",
    "unbind card",
)


class DemoError(Exception):
    """The demo cannot run at all (stack not reachable); ``str()`` says what to start."""


@dataclass
class FlowResult:
    flow: str
    expected: str
    status: str
    workflow_id: str | None
    seconds: float
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == self.expected

    def line(self) -> str:
        """One line for progress output: the flow, its status and time."""
        verdict = "ok" if self.ok else f"expected {self.expected}"
        return f"{self.flow}: {self.status} ({verdict}, {self.seconds:g} s)"

    def as_dict(self, ui_url: str, namespace: str) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "ui": workflow_link(ui_url, namespace, self)}


def workflow_link(ui_url: str, namespace: str, result: FlowResult) -> str | None:
    if not result.workflow_id:
        return None
    return (
        f"{ui_url.rstrip('/')}/namespaces/{quote(namespace)}/workflows/{quote(result.workflow_id)}"
    )


@dataclass
class Card:
    token: str
    customer_id: str


def _ignore(_: Any) -> None:
    pass


class Demo:
    def __init__(
        self,
        kartu: KartuClient,
        sandbox: SandboxControl,
        timeout: float,
        on_start: Callable[[str], None] = _ignore,
        on_end: Callable[[FlowResult], None] = _ignore,
    ) -> None:
        self.kartu = kartu
        self.sandbox = sandbox
        self.timeout = timeout
        self.run_id = "d" + secrets.token_hex(4)  # keys stay unique across runs
        self.results: list[FlowResult] = []
        # Progress: a flow started, a flow ended (``kartu demo`` draws them on stderr).
        self.on_start, self.on_end = on_start, on_end

    def key(self, name: str) -> str:
        return f"{self.run_id}_{name}"

    async def flow(
        self, name: str, expected: str, body: Callable[[], Awaitable[tuple[str, str | None]]]
    ) -> FlowResult:
        """Run one flow; any failure becomes its row's status and detail, never a crash."""
        self.on_start(name)
        started = time.monotonic()
        workflow_id: str | None = None
        try:
            async with asyncio.timeout(self.timeout):
                status, workflow_id = await body()
            detail = None
        except TimeoutError:
            status, detail = "TIMEOUT", f"not finished within {self.timeout:g} s"
        except _FlowFailed as exc:
            status, workflow_id, detail = exc.status, exc.workflow_id, exc.detail
        except (KartuError, CustomerError, httpx.HTTPError) as exc:
            status, detail = "ERROR", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a row says what broke; the other flows still run
            status, detail = "ERROR", f"unexpected {type(exc).__name__}: {exc}"
        result = FlowResult(
            name, expected, status, workflow_id, round(time.monotonic() - started, 2), detail
        )
        self.results.append(result)
        self.on_end(result)
        return result

    # --- the flows --------------------------------------------------------------------------

    async def register(self, name: str, number: str, customer_id: str | None) -> Card:
        registration_id = self.key(name)
        card: list[Card] = []

        async def body() -> tuple[str, str | None]:
            started = await self.kartu.register_card(
                registration_id,
                name="Kartu Demo",
                email="demo@example.com",
                phone_number="6281234567890",
                redirect_url=REDIRECT_URL,
                customer_id=customer_id,
            )
            await register_card(started.webview.url, card_number=number, otp=TEST_OTP)
            state = await self.kartu.wait_registration(registration_id, timeout=self.timeout)
            if state.card_token and state.customer_id:
                card.append(Card(state.card_token, state.customer_id))
            return state.status.value, started.workflow_id

        label = "register (webview)" if customer_id is None else "register 3DS card (webview)"
        result = await self.flow(label, "REGISTERED", body)
        if not card:
            raise DemoError(f"card registration failed ({result.status}): {result.detail}")
        return card[0]

    async def direct(self, card: Card) -> None:
        async def body() -> tuple[str, str | None]:
            outcome = await self._pay("pay", card)
            state = await self.kartu.wait_payment(outcome.payment_id, timeout=self.timeout)
            return state.status.value, state.workflow_id

        await self.flow("direct payment", "PAID", body)

    async def three_ds(self, card: Card) -> None:
        async def body() -> tuple[str, str | None]:
            outcome = await self._pay("3ds", card)
            if outcome.authentication_url is None:
                raise _FlowFailed(outcome.status.value, outcome.workflow_id, "no 3DS challenge")
            await authenticate_3ds(outcome.authentication_url, otp=TEST_OTP)
            state = await self.kartu.wait_payment(
                outcome.payment_id, ["PAID", "DECLINED", "FAILED"], timeout=self.timeout
            )
            return state.status.value, state.workflow_id

        await self.flow("3DS payment", "PAID", body)

    async def authorize_capture(self, card: Card) -> None:
        async def body() -> tuple[str, str | None]:
            outcome = await self._authorize("capture", card)
            _expect(outcome, "AUTHORIZED")
            result = await self.kartu.capture(outcome.payment_id, requested_by="kartu demo")
            return result.status.value, outcome.workflow_id

        await self.flow("authorize, capture", "CAPTURED", body)

    async def authorize_void(self, card: Card) -> None:
        async def body() -> tuple[str, str | None]:
            outcome = await self._authorize("void", card)
            _expect(outcome, "AUTHORIZED")
            result = await self.kartu.void(outcome.payment_id, "demo", requested_by="kartu demo")
            return result.status.value, outcome.workflow_id

        await self.flow("authorize, void", "VOIDED", body)

    async def refund(self, card: Card) -> None:
        async def body() -> tuple[str, str | None]:
            outcome = await self._pay("refund", card)
            _expect(outcome, "PAID")
            state = await self.kartu.refund(outcome.payment_id, "kartu demo", timeout=self.timeout)
            return state.status.value, state.workflow_id

        await self.flow("pay, refund", "REFUNDED", body)

    async def start_expiring(self, card: Card) -> Any:
        """Authorize now (its timer runs while the other flows do); ``expire`` finishes it."""
        return await self._authorize("expire", card, window=DEMO_AUTHORIZATION_WINDOW)

    async def expire(self, authorized: Any) -> None:
        async def body() -> tuple[str, str | None]:
            if isinstance(authorized, BaseException):
                raise authorized
            _expect(authorized, "AUTHORIZED")
            state = await self.kartu.payment_status(authorized.payment_id)
            expires_at = state.authorization_expires_at
            if expires_at is None:
                raise _FlowFailed(state.status.value, state.workflow_id, "no expiry known")
            until_expiry = (expires_at - datetime.now(UTC)).total_seconds()
            if until_expiry + EXPIRY_MARGIN <= self.timeout:
                # A short provider window: the sandbox and the workflow's timer both reach it
                # by themselves; moving the sandbox clock would only skew the two clocks.
                wait = until_expiry + EXPIRY_MARGIN
            else:
                # A long one: move the provider's clock past it, so the sandbox voids the hold
                # and calls back; the workflow may learn it from that callback (a hint) and
                # the status API, or else only from its own timer, days away.
                clock = await self.sandbox.clock()
                ahead = (expires_at - datetime.fromisoformat(clock["utc"])).total_seconds()
                if ahead + 1 > 0:
                    await self.sandbox.advance_clock(ahead + 1)
                wait = CALLBACK_WAIT
            try:
                final = await self.kartu.wait_payment(
                    authorized.payment_id,
                    ["EXPIRED", "VOIDED", "CAPTURED", "FAILED", "NEEDS_ATTENTION"],
                    timeout=max(wait, 1.0),
                )
            except KartuTimeout:
                raise _FlowFailed(
                    "AUTHORIZED",
                    state.workflow_id,
                    "the sandbox voided the authorization (its clock is past the expiry) but "
                    f"the workflow holds it until {expires_at.isoformat()}, the provider's "
                    "authorizationExpiresAt, and does not act on the automatic-void callback; "
                    "run the stack with `kartu up --sandbox-auth-window 20s` to watch an expiry",
                ) from None
            return final.status.value, final.workflow_id

        await self.flow("authorize, expire", "EXPIRED", body)

    async def cards(self, customer_id: str, tokens: set[str]) -> None:
        async def body() -> tuple[str, str | None]:
            # Visibility is eventually consistent: a just-registered card may take a moment.
            deadline = time.monotonic() + min(self.timeout, 15.0)
            while True:
                cards = await self.kartu.list_cards(customer_id)
                active = {c.card_token for c in cards if c.status == "ACTIVE"}
                if tokens <= active or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            found = len(tokens & active)
            return f"{found} ACTIVE", None

        await self.flow("cards list", f"{len(tokens)} ACTIVE", body)

    async def unbind(self, card: Card) -> None:
        async def body() -> tuple[str, str | None]:
            state = await self.kartu.unbind_card(
                card.token, customer_id=card.customer_id, timeout=self.timeout
            )
            return state.status.value, state.workflow_id

        await self.flow("unbind card", "UNBOUND", body)

    # --- helpers ----------------------------------------------------------------------------

    async def _pay(self, name: str, card: Card) -> Any:
        return await self.kartu.pay(
            self.key(name),
            customer_id=card.customer_id,
            amount="150000.00",
            card_token=card.token,
            redirect_url=REDIRECT_URL,
            description=f"kartu demo: {name}",
            timeout=self.timeout,
        )

    async def _authorize(self, name: str, card: Card, window: timedelta | None = None) -> Any:
        return await self.kartu.authorize(
            self.key(name),
            customer_id=card.customer_id,
            amount="250000.00",
            card_token=card.token,
            redirect_url=REDIRECT_URL,
            description=f"kartu demo: {name}",
            authorization_window=window,
            timeout=self.timeout,
        )


class _FlowFailed(Exception):
    def __init__(self, status: str, workflow_id: str | None, detail: str) -> None:
        super().__init__(detail)
        self.status, self.workflow_id, self.detail = status, workflow_id, detail


def _expect(outcome: Any, status: str) -> None:
    if outcome.status.value != status:
        reason = outcome.reason or outcome.decline_code or "see the workflow"
        raise _FlowFailed(outcome.status.value, outcome.workflow_id, f"expected {status}: {reason}")


async def _check_stack(kartu: KartuClient, sandbox: SandboxControl, sandbox_url: str) -> None:
    if not await kartu.check_health():
        raise DemoError("Temporal does not answer its health check: is `kartu up` running?")
    described = await kartu.temporal.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=kartu.temporal.namespace,
            task_queue=TaskQueue(name=kartu.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    if not described.pollers:
        raise DemoError(
            f"no worker polls task queue {kartu.task_queue!r}: start the stack (kartu up) "
            "or a worker (python worker.py)"
        )
    try:
        await sandbox.clock()
    except httpx.HTTPError:
        raise DemoError(
            f"no sandbox at {sandbox_url}: start the stack (kartu up) or give --sandbox-url"
        ) from None


async def run_demo(
    kartu: KartuClient,
    *,
    sandbox_url: str,
    timeout: float = 60.0,
    on_start: Callable[[str], None] = _ignore,
    on_end: Callable[[FlowResult], None] = _ignore,
) -> list[FlowResult]:
    """Every flow, in an order that keeps them apart: registrations first (the payments need
    the cards), then the payments side by side, then the clock move (it would void any other
    authorization still open), then the cards list and an unbind. ``on_start(flow)`` and
    ``on_end(result)`` report progress."""
    async with SandboxControl(sandbox_url) as sandbox:
        await _check_stack(kartu, sandbox, sandbox_url)
        demo = Demo(kartu, sandbox, timeout, on_start, on_end)
        try:
            card = await demo.register("card", FRICTIONLESS_CARD, None)
            challenge_card = await demo.register("card3ds", CHALLENGE_CARD, card.customer_id)
        except DemoError:
            return demo.results
        expiring = asyncio.ensure_future(demo.start_expiring(card))
        await asyncio.gather(
            demo.direct(card),
            demo.three_ds(challenge_card),
            demo.authorize_capture(card),
            demo.authorize_void(card),
            demo.refund(card),
        )
        authorized = (await asyncio.gather(expiring, return_exceptions=True))[0]
        await demo.expire(authorized)
        await demo.cards(card.customer_id, {card.token, challenge_card.token})
        await demo.unbind(challenge_card)
        return sorted(demo.results, key=lambda r: FLOWS.index(r.flow))


def print_results(
    results: list[FlowResult], *, json_output: bool, ui_url: str, namespace: str = "default"
) -> None:
    ok = bool(results) and all(r.ok for r in results)
    if json_output:
        print_json({"ok": ok, "flows": [r.as_dict(ui_url, namespace) for r in results]})
        return
    from starter.cli.console import print_doc

    rows = [{**asdict(r), "result": "ok" if r.ok else "FAILED"} for r in results]
    columns = ["flow", "expected", "status", "result", "seconds", "workflow_id"]
    doc: list[Block] = [Table(rows, columns)]
    details = [f"{r.flow}: {r.detail}" for r in results if not r.ok and r.detail]
    if details:
        doc.append(Text("\n".join(details)))
    links = [workflow_link(ui_url, namespace, r) for r in results if r.workflow_id]
    if links:
        doc.append(Text("in the Temporal UI:\n" + "\n".join(f"  {link}" for link in links)))
    doc.append(Text("all flows ended as expected" if ok else "some flows did not end as expected"))
    print_doc(doc)
