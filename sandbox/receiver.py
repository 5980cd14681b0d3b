"""A merchant's callback endpoint for tests and local runs: records every callback it gets,
checks its ``X-Authorization`` signature, and answers what it is told to (``fail_next``).

    receiver = CallbackReceiver()
    with receiver.serve():                      # on a free loopback port
        SandboxSettings(callback_url=receiver.url)
        binding = await receiver.wait_for(lambda c: c.body.get("referenceNumber") == ref)

It runs in the server's thread and is read from the test's: the list is guarded by a lock.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ayoconnect.security import verify_callback_signature
from ayoconnect.settings import AyoconnectSettings

from .server import AppServer


@dataclass(frozen=True)
class ReceivedCallback:
    body: dict[str, Any]
    signature_valid: bool
    answered: int  # the status this receiver answered with
    at: float  # time.monotonic() when it arrived


class CallbackReceiver:
    PATH = "/callbacks"

    def __init__(self, settings: AyoconnectSettings | None = None) -> None:
        self.settings = settings or AyoconnectSettings()
        self._lock = threading.Lock()
        self._received: list[ReceivedCallback] = []
        self._failures: list[int] = []
        self.app = FastAPI()
        self.app.add_api_route(self.PATH, self._receive, methods=["POST"])
        self.url: str | None = None  # the callback URL, once served

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve the receiver in a background thread; yields (and sets) its callback URL."""
        with AppServer(self.app, host=host, port=port) as server:
            self.url = server.base_url + self.PATH
            try:
                yield self.url
            finally:
                self.url = None

    @property
    def received(self) -> list[ReceivedCallback]:
        with self._lock:
            return list(self._received)

    def accepted(self) -> list[ReceivedCallback]:
        return [c for c in self.received if 200 <= c.answered < 300]

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._failures.clear()

    async def wait_for(
        self, predicate: Callable[[ReceivedCallback], bool], timeout: float = 5.0
    ) -> ReceivedCallback:
        """The first accepted callback matching ``predicate``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for callback in self.accepted():
                if predicate(callback):
                    return callback
            if time.monotonic() > deadline:
                raise TimeoutError("no matching callback arrived")
            await asyncio.sleep(0.01)

    async def wait_for_count(self, count: int, timeout: float = 5.0) -> list[ReceivedCallback]:
        """Every callback received (accepted or not), once there are at least ``count``."""
        deadline = time.monotonic() + timeout
        while len(received := self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(received)} callbacks arrived, expected {count}")
            await asyncio.sleep(0.01)
        return received

    async def _receive(self, request: Request) -> JSONResponse:
        header = request.headers.get(self.settings.callback_auth_header)
        valid = await asyncio.to_thread(
            verify_callback_signature,
            header,
            self.settings.client_secret.get_secret_value(),
            self.settings.merchant_code,
        )
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = {}
        with self._lock:
            status = self._failures.pop(0) if self._failures else 200
            if not valid and status == 200:
                status = 401
            self._received.append(ReceivedCallback(body, valid, status, time.monotonic()))
        return JSONResponse({"received": status == 200}, status_code=status)
