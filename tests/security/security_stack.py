"""The security suite's stack: what ``kartu up`` runs (the product's ``LocalStack``: dev server,
sandbox, gateway, worker as child processes, logs in the data directory), started once per
session by the root conftest's ``local_stacks`` on free loopback ports, with a distinctive
Ayoconnect client secret shared by every part and by the tests' own clients.

Also here: the ``kartu`` and ``temporal`` command lines bound to that stack (every output kept,
for the leak scan), a ``KartuClient`` with the stack's codec keys, and the gateway app
(``gateway.create_app``) served in a thread of its own, for the fuzz tests: schemathesis drives
it with blocking HTTP calls, which must not stall the test session's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import os
import socket
import sys
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import uvicorn
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ayoconnect.settings import LOCAL_MERCHANT_CODE, AyoconnectSettings
from gateway import GatewaySettings, create_app
from starter.binaries import temporal_cli
from starter.client import KartuClient
from starter.codec import KartuCodec, data_converter, load_or_create_local_keys
from starter.stack import LocalStack, print_ready
from tests.stack_support import NO_METRICS, free_port
from worker import WorkerSettings, connect

ROOT = Path(__file__).resolve().parents[2]
REDIRECT_URL = "https://shop.example/return"
TASK_QUEUE = "kartu"
# What the developer's shell may hold for another cluster or another stack: never inherited.
_SCRUBBED_PREFIXES = ("TEMPORAL_", "KARTU_", "AYOCONNECT_", "SANDBOX_", "OTEL_")


def telemetry_env(spans_endpoint: str) -> dict[str, str]:
    """Every part's telemetry where the scan reads it: JSON log lines in its log, its spans
    exported over OTLP to ``spans_endpoint``, with every HTTP header captured (the worst an
    operator can configure)."""
    return {
        "KARTU_LOG_FORMAT": "json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": spans_endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **{
            f"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_{side}": ".*"
            for side in ("SERVER_REQUEST", "SERVER_RESPONSE", "CLIENT_REQUEST", "CLIENT_RESPONSE")
        },
    }


class SpanReceiver:
    """An OTLP/HTTP traces endpoint on loopback (``/v1/traces``): what every part of the stack
    exports, kept as JSON text for the leak scan."""

    def __init__(self) -> None:
        self.exports: list[str] = []
        exports = self.exports

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                exported = ExportTraceServiceRequest.FromString(body)
                exports.append(json_format.MessageToJson(exported, indent=None))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def text(self) -> str:
        return "\n".join(self.exports)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the check digit that makes it Luhn-valid."""
    for digit in "0123456789":
        candidate = prefix + digit
        total = 0
        for index, char in enumerate(reversed(candidate)):
            value = int(char)
            if index % 2 == 1:
                value = value * 2 - 9 if value > 4 else value * 2
            total += value
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable: one digit always completes a Luhn number")


def kartu_command() -> list[str]:
    script = Path(sys.executable).parent / "kartu"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "starter.cli"]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@dataclass
class Output:
    """One command run against the stack: what it printed, kept for the leak scan."""

    args: list[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, f"{self.args[:2]} exit {self.code}: {self.err}"
        return json.loads(self.out)


@dataclass
class SecureUp:
    stack: LocalStack
    client_secret: str
    ready: dict[str, Any] = field(default_factory=dict)
    # What ``kartu up --json`` prints for this stack (its "ready" event), and what it prints
    # for people once ready: scanned for secrets like every other output.
    events: list[dict[str, Any]] = field(default_factory=list)
    banner: str = ""
    outputs: list[Output] = field(default_factory=list)
    spans: SpanReceiver | None = None

    @classmethod
    def of(cls, stack: LocalStack, client_secret: str, spans: SpanReceiver) -> SecureUp:
        ready = {"event": "ready", **stack.description()}
        banner = io.StringIO()
        with contextlib.redirect_stdout(banner):
            print_ready(stack)
        return cls(stack, client_secret, ready, [ready], banner.getvalue(), spans=spans)

    @property
    def data_dir(self) -> Path:
        return self.stack.data_dir

    @property
    def ports(self) -> dict[str, int]:
        return self.stack.config.ports

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports['temporal']}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sandbox']}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def api_key(self) -> str:
        return (self.data_dir / "gateway-api-key").read_text(encoding="utf-8").strip()

    @property
    def codec_keys_file(self) -> Path:
        return Path(self.ready["codec_keys_file"])

    def codec(self) -> KartuCodec:
        return KartuCodec(load_or_create_local_keys(self.codec_keys_file))

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client of this stack (CLI): its Temporal, codec keys, secret."""
        return base_env(
            TEMPORAL_ADDRESS=self.address,
            KARTU_CODEC_KEYS_FILE=str(self.codec_keys_file),
            KARTU_SANDBOX_URL=self.sandbox_url,
            KARTU_REDIRECT_URL=REDIRECT_URL,
            AYOCONNECT_CLIENT_SECRET=self.client_secret,
        )

    async def kartu(self, *args: str, timeout: float = 60) -> Output:
        """The ``kartu`` console script, without blocking the event loop; output recorded."""
        return await self._run([*kartu_command(), *args], timeout)

    async def temporal(self, *args: str, timeout: float = 30) -> Output:
        """The ``temporal`` CLI (``--address`` of this stack appended); output recorded."""
        return await self._run([str(temporal_cli()), *args, "--address", self.address], timeout)

    async def _run(self, command: list[str], timeout: float) -> Output:
        process = await asyncio.create_subprocess_exec(
            *command,
            env=self.env,
            cwd=self.data_dir.parent,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        result = Output(
            command[1:],
            process.returncode,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
        )
        self.outputs.append(result)
        return result

    @property
    def pids(self) -> dict[str, int]:
        return {name: pid for name, pid in self.ready.get("pids", {}).items() if pid}


def start_environ(client_secret: str, spans: SpanReceiver) -> dict[str, str]:
    """The stack's environment: the secret for every part, and their telemetry to ``spans``."""
    return base_env(
        AYOCONNECT_CLIENT_SECRET=client_secret, **NO_METRICS, **telemetry_env(spans.endpoint)
    )


async def connect_kartu(up: SecureUp, *, outcome_timeout: float = 20.0) -> KartuClient:
    """A KartuClient on the stack: its dev server, its task queue, its codec keys."""
    settings = WorkerSettings(TEMPORAL_ADDRESS=up.address, KARTU_TASK_QUEUE=TASK_QUEUE)
    client = await connect(settings, data_converter(up.codec()))
    return KartuClient(client, task_queue=TASK_QUEUE, outcome_timeout=outcome_timeout)


class _ThreadServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # signals belong to pytest


class ThreadedGateway:
    """``gateway.create_app`` with a real KartuClient on the stack's dev server (whose worker
    and sandbox do the payments), served by uvicorn on an event loop in its own thread."""

    def __init__(self, up: SecureUp, *, api_key: str, max_wait_seconds: float = 5.0) -> None:
        self.up = up
        self.api_key = api_key
        self.settings = GatewaySettings(
            api_key=api_key, port=0, max_wait_seconds=max_wait_seconds, log_level="warning"
        )
        self.ayoconnect = AyoconnectSettings(
            base_url=up.sandbox_url,
            client_secret=up.client_secret,
            merchant_code=LOCAL_MERCHANT_CODE,  # the stack's: its AYOCONNECT_* are scrubbed
        )
        self.app: Any = None
        self.base_url = ""
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 30) -> str:
        self._thread = threading.Thread(target=self._main, name="security-gateway", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the in-process gateway did not start")
        if self._error is not None:
            raise RuntimeError(f"the in-process gateway failed: {self._error!r}")
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        kartu = await connect_kartu(self.up)
        self.app = create_app(kartu, self.settings, ayoconnect_settings=self.ayoconnect)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", free_port()))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app, http="h11", lifespan="on", log_level="warning", access_log=False
        )
        self._server = _ThreadServer(config)
        task = asyncio.create_task(self._server.serve(sockets=[sock]))
        try:
            while not self._server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn exited at startup")
                await asyncio.sleep(0.01)
            self._ready.set()
            await task
        finally:
            sock.close()
