"""Run the sandbox (or any ASGI app) on a loopback port in a background thread.

    with SandboxServer(SandboxSettings(time_factor=0.001)) as sandbox:
        client = AyoconnectClient(sandbox.client_settings())
        ...

    async with SandboxServer() as sandbox:          # same, from async code
        ...

    with run_sandbox() as base_url:                 # just the URL
        ...

Port 0 (the default) takes a free port; the socket is bound before the thread starts, so the
URL is known and nothing can take the port in between. ``stop`` shuts uvicorn down gracefully
(lifespan shutdown closes the ledger) and joins the thread.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any, Self

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from ayoconnect.settings import AyoconnectSettings

from .app import create_app
from .settings import SandboxSettings


class AppServer:
    """One ASGI app served by uvicorn (h11) in a daemon thread."""

    def __init__(
        self,
        app: ASGIApp | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        startup_timeout: float = 10.0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the server is not running")
        return self._base_url

    def start(self) -> str:
        """Start serving; returns the base URL (``http://127.0.0.1:<port>``)."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        app = self._app_to_serve()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
        # without it every answer waits ~40 ms for the client's delayed ACK (Nagle).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            host=self.host,
            port=port,
            http="h11",
            lifespan="on",
            log_level=self.log_level,
            access_log=self.log_level in ("info", "debug"),
            timeout_graceful_shutdown=max(int(self.shutdown_timeout), 1),
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{port}", daemon=True
        )
        self._server, self._thread, self._socket = server, thread, sock
        thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self._cleanup()
                raise RuntimeError(f"the server did not start on {self.host}:{port}")
            time.sleep(0.005)
        host = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self._base_url = f"http://{host}:{port}"
        return self._base_url

    def stop(self) -> None:
        """Graceful shutdown; waits for the thread (idempotent)."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(self.shutdown_timeout + 5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(5)
        self._cleanup()

    def _app_to_serve(self) -> ASGIApp:
        if self.app is None:
            raise RuntimeError("no app to serve")
        return self.app

    def _cleanup(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self._base_url = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


class SandboxServer(AppServer):
    """A sandbox (``create_app``) served in a background thread; each start builds a new app.

    ``port=0`` takes a free port; pass ``settings.port`` to serve on the configured one.
    """

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        ayoconnect: AyoconnectSettings | None = None,
        host: str | None = None,
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.settings = settings or SandboxSettings()
        self.ayoconnect = ayoconnect or AyoconnectSettings()
        super().__init__(None, host=host or self.settings.host, port=port, log_level=log_level)

    def _app_to_serve(self) -> ASGIApp:
        # A fresh app per start: the previous one closed its ledger when it shut down, and a
        # file-backed ledger is simply reopened.
        self.app = create_app(self.settings, self.ayoconnect)
        return self.app

    def stop(self) -> None:
        app = self.app
        super().stop()
        # Lifespan shutdown closes the ledger; this covers a forced exit (close is idempotent).
        if isinstance(app, FastAPI):
            app.state.sandbox.db.close()

    def client_settings(self, **overrides: Any) -> AyoconnectSettings:
        """The client's settings for this sandbox: same credentials, this base URL."""
        return AyoconnectSettings(
            **{
                **self.ayoconnect.model_dump(),
                "client_secret": self.ayoconnect.client_secret.get_secret_value(),
                "base_url": self.base_url,
                **overrides,
            }
        )


@contextmanager
def run_sandbox(
    settings: SandboxSettings | None = None,
    *,
    ayoconnect: AyoconnectSettings | None = None,
    host: str | None = None,
    port: int = 0,
) -> Iterator[str]:
    """A running sandbox for the ``with`` block; yields its base URL."""
    with SandboxServer(settings, ayoconnect=ayoconnect, host=host, port=port) as server:
        yield server.base_url


@asynccontextmanager
async def run_sandbox_async(
    settings: SandboxSettings | None = None,
    *,
    ayoconnect: AyoconnectSettings | None = None,
    host: str | None = None,
    port: int = 0,
) -> AsyncIterator[str]:
    """``run_sandbox`` for async code: start and stop happen off the event loop."""
    server = SandboxServer(settings, ayoconnect=ayoconnect, host=host, port=port)
    async with server:
        yield server.base_url
