"""The whole Kartu stack on loopback, once per test session, for the starter and gateway suites.

- a real Temporal dev server (``starter.devserver.DevServer``) with Kartu's search attributes;
- the gateway (``gateway.create_app``) served by uvicorn on this event loop;
- the sandbox (a faithful local Ayoconnect) in its own thread, its callbacks sent to the gateway;
- a worker (``worker.build_worker``) on this event loop, its activities talking to the sandbox.

Both suites' conftests call ``acquire()`` / ``release()``: the first starts the stack, the last
stops it, so running both suites together still costs one dev server.
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
from starter.devserver import DevServer
from worker import WorkerSettings, build_worker, connect
from workflows.search_attributes import ALL_KEYS

API_KEY = "kartu-test-api-key-0123456789"
CALLBACK_PATH = "/callbacks/ayoconnect"
FRICTIONLESS_CARD = "4111111111111111"
CHALLENGE_CARD = "4000000000003220"
DECLINED_CARD = "4000000000000002"
# IndexedValueType number → the dev server's --search-attribute kind.
_KINDS = {1: "Text", 2: "Keyword", 3: "Int", 4: "Double", 5: "Bool", 6: "Datetime"}


def search_attribute_kinds() -> dict[str, str]:
    return {key.name: _KINDS[int(key.indexed_value_type)] for key in ALL_KEYS}


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
        self.devserver.stop()


async def start_stack(log_dir: Path | None = None) -> Stack:
    devserver = DevServer(
        search_attributes=search_attribute_kinds(),
        log_path=log_dir / "temporal-dev-server.log" if log_dir else None,
    )
    devserver.start()
    try:
        await devserver.wait_ready()
        settings = WorkerSettings(TEMPORAL_ADDRESS=devserver.address, KARTU_TASK_QUEUE="kartu")
        client = await connect(settings)
        ayoconnect = AyoconnectSettings()
        stack = Stack(
            devserver=devserver,
            client=client,
            kartu=KartuClient(client, task_queue=settings.task_queue, outcome_timeout=20),
            ayoconnect=ayoconnect,
            gateway_settings=GatewaySettings(api_key=API_KEY, port=0),
        )
    except BaseException:
        devserver.stop()
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


_stack: Stack | None = None
_users = 0
_lock = asyncio.Lock()


async def acquire(log_dir: Path | None = None) -> Stack:
    global _stack, _users
    async with _lock:
        if _stack is None:
            _stack = await start_stack(log_dir)
        _users += 1
        return _stack


async def release() -> None:
    global _stack, _users
    async with _lock:
        _users -= 1
        if _users == 0 and _stack is not None:
            stack, _stack = _stack, None
            await stack.stop()
