"""The whole Kartu stack on loopback, once per test session, for the starter and gateway suites,
with the Python parts inside the test process so the tests can look into them (the gateway
app's state, its logs in ``caplog``):

- the product's ``LocalStack`` without child processes (``parts=()``): the Temporal dev server
  with Kartu's search attributes, its data directory and payload codec keys;
- the gateway (``gateway.create_app``) served by uvicorn on this event loop;
- the sandbox (a faithful local Ayoconnect) in its own thread, its callbacks sent to the gateway;
- a worker (``worker.build_worker``) on this event loop, its activities talking to the sandbox.

The root conftest's session fixture ``stack`` starts it once (``start_stack``); both suites
share it, and pytest-xdist runs them in one test process (their xdist group).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from ayoconnect import AyoconnectClient, AyoconnectSettings, callback_signature
from ayoconnect.models import CardData
from ayoconnect.security import encrypt_card
from gateway import GatewaySettings, create_app
from sandbox import SandboxServer, SandboxSettings
from sandbox.control_client import SandboxControl
from sandbox.customer import register_card
from starter.client import KartuClient
from starter.codec import data_converter
from starter.devserver import DevServer
from starter.stack import LocalStack
from tests.stack_support import free_port, stack_config, stack_environ, track
from worker import WorkerSettings, build_worker, connect

API_KEY = "kartu-test-api-key-0123456789"
CALLBACK_PATH = "/callbacks/ayoconnect"
FRICTIONLESS_CARD = "4111111111111111"
CHALLENGE_CARD = "4000000000003220"
DECLINED_CARD = "4000000000000002"
TASK_QUEUE = "kartu"


def new_key(prefix: str = "t") -> str:
    """A fresh merchant key (payment / registration id): at most 26 of [A-Za-z0-9_]."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def new_customer_id() -> str:
    return "C" + uuid.uuid4().hex[:11].upper()


class _LoopServer(uvicorn.Server):
    """uvicorn on the caller's event loop; leaves signal handling to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class RegisteredCard:
    card_token: str
    customer_id: str
    registration_id: str


@dataclass
class Stack:
    local: LocalStack
    devserver: DevServer
    client: Client
    kartu: KartuClient
    ayoconnect: AyoconnectSettings
    gateway_settings: GatewaySettings
    gateway_url: str = ""
    app: Any = None
    sandbox: SandboxServer | None = None
    control: SandboxControl | None = None
    http: httpx.AsyncClient | None = None
    worker: Worker | None = None
    _worker_task: asyncio.Task[None] | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _servers: list[_LoopServer] = field(default_factory=list)
    _closers: list[Any] = field(default_factory=list)
    _card: RegisteredCard | None = None
    _card_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def api_headers(self) -> dict[str, str]:
        return {"X-API-Key": API_KEY}

    def signature(self) -> str:
        """A genuine X-Authorization value (bcrypt cost 4: fast; Ayoconnect's cost is unknown)."""
        return callback_signature(
            self.ayoconnect.client_secret.get_secret_value(),
            self.ayoconnect.merchant_code,
            rounds=4,
        )

    async def public_key(self) -> str:
        assert self.control is not None
        return await self.control.public_key()

    async def encrypted_card(self, number: str = FRICTIONLESS_CARD) -> str:
        card = CardData(
            pan=number, expiryMonth="12", expiryYear="2039", cvv="123", cardholderName="KARTU T"
        )
        return encrypt_card(card, await self.public_key())

    async def registered_card(self) -> RegisteredCard:
        """A frictionless card registered through Kartu (webview, binding callback via the
        gateway): once per session, shared by the tests that pay with a token."""
        async with self._card_lock:
            if self._card is None:
                self._card = await self.register(FRICTIONLESS_CARD)
            return self._card

    async def register(self, number: str) -> RegisteredCard:
        registration_id = new_key("reg")
        started = await self.kartu.register_card(
            registration_id,
            name="Kartu Tester",
            email="tester@example.com",
            phone_number="6281234567890",
            redirect_url="https://merchant.example/cards/done",
        )
        await register_card(started.webview.url, card_number=number)
        state = await self.kartu.wait_registration(registration_id, timeout=15)
        assert state.card_token and state.customer_id, state
        return RegisteredCard(state.card_token, state.customer_id, registration_id)

    async def workflow_exists(self, workflow_id: str) -> bool:
        try:
            await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def serve(self, app: Any) -> str:
        """Serve an ASGI app on a free loopback port of this loop; returns its base URL."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", free_port()))
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
        self._servers.append(server)
        self._tasks.append(task)
        self._closers.append(sock.close)
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.worker is not None and self._worker_task is not None:
            with contextlib.suppress(Exception):
                await self.worker.shutdown()
            with contextlib.suppress(BaseException):
                await self._worker_task
        for server in self._servers:
            server.should_exit = True
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
        if self.http is not None:
            await self.http.aclose()
        if self.control is not None:
            await self.control.aclose()
        for close in reversed(self._closers):
            result = close()
            if asyncio.iscoroutine(result):
                with contextlib.suppress(Exception):
                    await result
        if self.sandbox is not None:
            await asyncio.to_thread(self.sandbox.stop)
        await asyncio.to_thread(self.local.stop)


async def start_stack(data_dir: Path) -> Stack:
    """The stack in ``data_dir`` (the dev server's SQLite file, codec keys, logs)."""
    config = stack_config(data_dir, parts=(), reconciliation_schedule=False, task_queue=TASK_QUEUE)
    local = track(LocalStack(config, stack_environ()))
    try:
        await local.start()
        assert local.devserver is not None
        settings = WorkerSettings(
            TEMPORAL_ADDRESS=local.devserver.address, KARTU_TASK_QUEUE=TASK_QUEUE
        )
        client = await connect(settings, data_converter(local.codec()))
        ayoconnect = AyoconnectSettings()
        stack = Stack(
            local=local,
            devserver=local.devserver,
            client=client,
            kartu=KartuClient(client, task_queue=settings.task_queue, outcome_timeout=20),
            ayoconnect=ayoconnect,
            gateway_settings=GatewaySettings(api_key=API_KEY, port=0),
        )
    except BaseException:
        await asyncio.to_thread(local.stop)
        raise
    try:
        stack.app = create_app(stack.kartu, stack.gateway_settings, ayoconnect_settings=ayoconnect)
        stack.gateway_url = await stack.serve(stack.app)
        stack.sandbox = SandboxServer(
            SandboxSettings(callback_url=stack.gateway_url + CALLBACK_PATH, time_factor=0.001),
            ayoconnect=ayoconnect,
        )
        await asyncio.to_thread(stack.sandbox.start)
        stack.control = SandboxControl(stack.sandbox.base_url)
        ayoconnect_client = AyoconnectClient(stack.sandbox.client_settings())
        stack._closers.append(ayoconnect_client.aclose)
        stack.worker = build_worker(client, settings, ayoconnect_client)
        stack._worker_task = asyncio.create_task(stack.worker.run())
        stack.http = httpx.AsyncClient(base_url=stack.gateway_url, timeout=30)
    except BaseException:
        await stack.stop()
        raise
    return stack
