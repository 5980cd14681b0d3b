"""``kartu up``: the whole local stack in one command, stopped as a whole by Ctrl-C or SIGTERM.

- the Temporal dev server (``DevServer``): SQLite file with WAL in the data directory, Kartu's
  search attributes, UI on ``--ui-port``, frontend on ``--temporal-port``;
- the sandbox (``python -m sandbox``): its ledger in the data directory, callbacks sent to the
  gateway's ``/callbacks/ayoconnect``;
- the gateway (``python -m gateway``) with an API key (``KARTU_GATEWAY_API_KEY``, else one
  generated into ``<data-dir>/gateway-api-key``, mode 0600);
- the worker (``python worker.py``) talking to the sandbox.

The three Python parts run as child processes with their settings in the environment and their
logs in ``<data-dir>/*.log``. "ready" is printed only once every part answers: the dev server
accepts a client, the sandbox its clock, the gateway its health check, and the worker process
is seen polling the task queue. Everything durable lives in the data directory, so starting
again on the same directory finds every payment where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from ayoconnect.tls import tls_context

from .devserver import DevServer, free_port
from .output import emit, fields, print_json_line
from .supervisor import Supervisor, die_with_parent

if TYPE_CHECKING:
    from .codec import KartuCodec

API_KEY_FILE = "gateway-api-key"
CODEC_KEYS_FILE = "codec.keys"
CALLBACK_PATH = "/callbacks/ayoconnect"
# The local stack talks to a local dev server: a Temporal Cloud key or certificate the
# operator has in the environment must not leak into the children (they would try TLS).
_REMOTE_ONLY_VARIABLES = (
    "TEMPORAL_TLS_CERT",
    "TEMPORAL_TLS_KEY",
    "TEMPORAL_TLS_CA",
    "TEMPORAL_API_KEY",
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_CERT_DATA",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_DATA",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
)
# Prefixes of remote-only variables (gRPC metadata, codec endpoints of a real cluster).
_REMOTE_ONLY_PREFIXES = ("TEMPORAL_GRPC_META_", "TEMPORAL_CODEC_")
_KINDS = {1: "Text", 2: "Keyword", 3: "Int", 4: "Double", 5: "Bool", 6: "Datetime"}


PARTS = ("sandbox", "gateway", "worker")


class StackError(Exception):
    """The stack cannot start or stopped by itself; ``str()`` is the one line to show."""


@dataclass(frozen=True)
class StackConfig:
    """One local stack. ``kartu up`` fills it from its flags; tests and benches start several
    side by side: port 0 is a free loopback port chosen at start, ``headless`` drops the UI.
    Everything else a part reads comes from the environment given to ``LocalStack``."""

    data_dir: Path = Path(".kartu")
    host: str = "127.0.0.1"
    temporal_port: int = 7233
    ui_port: int = 8233
    sandbox_port: int = 8090
    gateway_port: int = 8080
    namespace: str = "default"
    task_queue: str = "kartu"
    ready_timeout: float = 60.0
    stop_timeout: float = 15.0
    # How long the sandbox (the provider) holds an authorization; None: its setting (7 days).
    sandbox_auth_window: timedelta | None = None
    # No Temporal UI (nor its port): what tests and benches run.
    headless: bool = False
    # The payload codec's keys ("id:base64key", KARTU_CODEC_KEYS' format), kept in
    # <data-dir>/codec.keys (0600) so the stack's histories can be decoded afterwards. None: the
    # environment's keys, else a local key generated into that file on first start.
    codec_keys: str | None = None
    # The hourly reconciliation schedule (``starter.reconcile``); a bench may do without.
    reconciliation_schedule: bool = True
    # Prometheus endpoints of the worker and the gateway (``/metrics``); None: left to the
    # environment (``KARTU_WORKER_METRICS_PORT`` / ``KARTU_GATEWAY_METRICS_PORT``).
    worker_metrics_port: int | None = None
    gateway_metrics_port: int | None = None
    # The Python parts started as child processes (``PARTS``, in start order). A test harness
    # that runs some of them in its own process (to look inside them) leaves those out.
    parts: tuple[str, ...] = PARTS

    @property
    def temporal_address(self) -> str:
        return f"{self.host}:{self.temporal_port}"

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    @property
    def ports(self) -> dict[str, int]:
        """The stack's ports by flag name (without the UI's when headless)."""
        ports = {"temporal": self.temporal_port, "ui": self.ui_port}
        ports |= {"sandbox": self.sandbox_port, "gateway": self.gateway_port}
        if self.headless:
            del ports["ui"]
        if self.worker_metrics_port is not None:
            ports["worker-metrics"] = self.worker_metrics_port
        if self.gateway_metrics_port is not None:
            ports["gateway-metrics"] = self.gateway_metrics_port
        return ports

    def with_free_ports(self) -> StackConfig:
        """Port 0 replaced by a free loopback port (all of them distinct)."""
        taken = {port for port in self.ports.values() if port}
        chosen: dict[str, int] = {}
        for name, port in self.ports.items():
            while not port:
                candidate = free_port(self.host)
                port = 0 if candidate in taken else candidate
            taken.add(port)
            chosen[f"{name.replace('-', '_')}_port"] = port
        return replace(self, **chosen)

    @property
    def ui_url(self) -> str | None:
        return None if self.headless else self.url(self.ui_port)

    @property
    def sandbox_url(self) -> str:
        return self.url(self.sandbox_port)

    @property
    def gateway_url(self) -> str:
        return self.url(self.gateway_port)


# --- child processes ---------------------------------------------------------------------------


@dataclass
class Child:
    """One Python part of the stack as a child process in its own session (a Ctrl-C in the
    terminal reaches ``kartu up`` only, which then stops the parts in order)."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"--- kartu up: {' '.join(self.command)} ({time.ctime()})\n".encode())
            log.flush()
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def died(self) -> str:
        """One line on why the part is gone: exit code and last log line, or the signal."""
        code = self.exit_code()
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return (
                    f"{self.name} was killed by {signal.Signals(-code).name} (log: {self.log_path})"
                )
        last = _last_line(self.log_path)
        said = f": {last}" if last else ""
        return f"{self.name} exited with code {code}{said} (log: {self.log_path})"

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the process group, as a power cut would, and reap it."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def wait(self, timeout: float) -> None:
        """Wait for the exit; SIGKILL the process group when it takes longer than ``timeout``."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def _last_line(path: Path, limit: int = 300) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(fh.tell() - 4096, 0))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln and not ln.startswith("--- kartu up:")]
    return lines[-1][:limit] if lines else ""


def worker_script() -> Path:
    """``worker.py`` wherever Kartu is installed (a source tree or an editable install)."""
    spec = importlib.util.find_spec("worker")
    if spec is None or spec.origin is None:
        raise StackError("worker.py not found: install Kartu (pip install -e .)")
    return Path(spec.origin)


# --- the data directory -----------------------------------------------------------------------


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold ``<data-dir>/up.lock`` for as long as the stack runs: two stacks on one SQLite file
    would corrupt it."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle = open(data_dir / "up.lock", "a+")  # held until the stack stops
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise StackError(
                f"another `kartu up` is running on {data_dir}: stop it, or use --data-dir"
            ) from None
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def write_secret_file(path: Path, value: str) -> None:
    """Create ``path`` with mode 0600 (never widened by the umask), refusing to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(value + "\n")


def gateway_api_key(data_dir: Path, environ: Mapping[str, str]) -> tuple[str, Path | None]:
    """The gateway's API key: ``KARTU_GATEWAY_API_KEY`` if set (no file), else the one in
    ``<data-dir>/gateway-api-key``, generated on first start."""
    given = environ.get("KARTU_GATEWAY_API_KEY", "").strip()
    if given:
        return given, None
    path = data_dir / API_KEY_FILE
    if not path.exists():
        write_secret_file(path, secrets.token_urlsafe(32))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 16:
        raise StackError(f"{path} holds no usable API key (16+ characters): delete it")
    return key, path


def codec_keys_file(
    data_dir: Path, environ: Mapping[str, str], keys: str | None = None
) -> Path | None:
    """The payload codec's key file in the data directory: ``keys`` when given (written on
    first start, the same keys required after), else a generated local key when the
    environment configures none. None: the environment's keys (or no codec) apply."""
    if keys is not None:
        return _given_codec_keys(data_dir / CODEC_KEYS_FILE, keys)
    if any(environ.get(v) for v in ("KARTU_CODEC_KEYS", "KARTU_CODEC_KEYS_FILE")):
        return None
    if environ.get("KARTU_CODEC_DISABLED", "").strip().lower() in ("1", "true", "yes"):
        return None
    try:
        from .codec import load_or_create_local_keys
    except ImportError:  # no codec in this build: nothing to share
        return None
    path = data_dir / CODEC_KEYS_FILE
    load_or_create_local_keys(path)
    return path


def _given_codec_keys(path: Path, keys: str) -> Path:
    from .codec import CodecConfigError, parse_keys

    try:
        wanted = parse_keys(keys, source="the stack's codec keys")
        if not path.exists():
            write_secret_file(path, keys.strip())
        elif parse_keys(path.read_text(encoding="utf-8"), source=str(path)) != wanted:
            # Histories already in this data directory were encrypted with the file's keys.
            raise StackError(f"{path} holds other codec keys than the ones given")
    except CodecConfigError as exc:
        raise StackError(str(exc)) from None
    return path


def check_ports_free(config: StackConfig) -> None:
    for name, port in config.ports.items():
        flag = f"--{name}-port"
        if not 1 <= port <= 65535:
            raise StackError(f"{flag} {port} is not a port number (1-65535)")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((config.host, port))
            except OSError:
                raise StackError(
                    f"port {port} ({flag}) on {config.host} is in use: stop what uses it "
                    f"or choose another with {flag}"
                ) from None
    ports = list(config.ports.values())
    if len(set(ports)) != len(ports):
        flags = ", ".join(f"--{name}-port" for name in config.ports)
        raise StackError(f"{flags} must all differ")


def search_attribute_kinds() -> dict[str, str]:
    from workflows.search_attributes import ALL_KEYS

    return {key.name: _KINDS[int(key.indexed_value_type)] for key in ALL_KEYS}


# --- the stack --------------------------------------------------------------------------------


class LocalStack:
    """The parts as child processes, configured by ``config`` and the environment ``environ``
    (default: this process's), which every part inherits: extra settings for a part (e.g.
    ``SANDBOX_TIME_FACTOR``, ``KARTU_GATEWAY_API_KEY``) go there."""

    def __init__(self, config: StackConfig, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.data_dir = config.data_dir.resolve()
        self.environ = dict(os.environ if environ is None else environ)
        self.devserver: DevServer | None = None
        self.client: Client | None = None
        self.children: list[Child] = []
        self.api_key_file: Path | None = None
        self.codec_keys_file: Path | None = None
        self._lock: IO[str] | None = None

    # -- start ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._lock = lock_data_dir(self.data_dir)
        self.config = cfg = self.config.with_free_ports()
        check_ports_free(cfg)
        api_key, self.api_key_file = gateway_api_key(self.data_dir, self.environ)
        self.codec_keys_file = codec_keys_file(self.data_dir, self.environ, cfg.codec_keys)

        self.devserver = DevServer(
            db_path=self.data_dir / "temporal.sqlite",
            port=cfg.temporal_port,
            ui_port=cfg.ui_port,
            headless=cfg.headless,
            host=cfg.host,
            namespace=cfg.namespace,
            search_attributes=search_attribute_kinds(),
            log_path=self.data_dir / "temporal.log",
            ui_codec_endpoint=f"{cfg.url(cfg.gateway_port)}/codec",
        )
        self.devserver.start()
        try:
            self.client = await self.devserver.wait_ready(timeout=cfg.ready_timeout)
        except (RuntimeError, TimeoutError) as exc:
            raise StackError(f"Temporal dev server did not start: {exc}") from None
        from worker import register_search_attributes

        await register_search_attributes(self.client)
        if cfg.reconciliation_schedule:
            await self._reconciliation_schedule()

        python = sys.executable
        children = [
            Child("sandbox", [python, "-m", "sandbox"], self._sandbox_env(), self._log("sandbox")),
            Child(
                "gateway",
                [python, "-m", "gateway"],
                self._gateway_env(api_key),
                self._log("gateway"),
            ),
            Child(
                "worker", [python, str(worker_script())], self._worker_env(), self._log("worker")
            ),
        ]
        self.children = [child for child in children if child.name in cfg.parts]
        for child in self.children:
            child.start()
        await self.wait_ready()

    async def _reconciliation_schedule(self) -> None:
        """The hourly reconciliation (``starter.reconcile``): created, or updated in place."""
        from .reconcile import ensure_local_schedule

        assert self.client is not None
        try:
            await ensure_local_schedule(
                self.client,
                task_queue=self.config.task_queue,
                codec_keys_file=self.codec_keys_file,
            )
        except (RPCError, ValueError) as exc:
            raise StackError(f"reconciliation schedule not set: {exc}") from None

    def _log(self, name: str) -> Path:
        return self.data_dir / f"{name}.log"

    def _base_env(self) -> dict[str, str]:
        cfg = self.config
        env = {
            k: v
            for k, v in self.environ.items()
            if k not in _REMOTE_ONLY_VARIABLES and not k.startswith(_REMOTE_ONLY_PREFIXES)
        }
        env.update(
            PYTHONUNBUFFERED="1",
            # The local stack never reads a developer's own temporal.toml (a Cloud profile).
            TEMPORAL_CONFIG_FILE=os.devnull,
            TEMPORAL_ADDRESS=cfg.temporal_address,
            TEMPORAL_NAMESPACE=cfg.namespace,
            KARTU_TASK_QUEUE=cfg.task_queue,
            AYOCONNECT_BASE_URL=cfg.sandbox_url,
        )
        if self.codec_keys_file is not None:
            # One source of keys: the file wins over keys or a switch-off inherited.
            for name in ("KARTU_CODEC_KEYS", "KARTU_CODEC_DISABLED"):
                env.pop(name, None)
            env["KARTU_CODEC_KEYS_FILE"] = str(self.codec_keys_file)
        return env

    def _sandbox_env(self) -> dict[str, str]:
        cfg = self.config
        env = {
            **self._base_env(),
            "SANDBOX_HOST": cfg.host,
            "SANDBOX_PORT": str(cfg.sandbox_port),
            "SANDBOX_DB_PATH": str(self.data_dir / "sandbox.sqlite"),
            "SANDBOX_CALLBACK_URL": cfg.gateway_url + CALLBACK_PATH,
        }
        if cfg.sandbox_auth_window is not None:
            days = cfg.sandbox_auth_window.total_seconds() / 86400
            env["SANDBOX_AUTHORIZATION_WINDOW_DAYS"] = repr(days)
        return env

    def _gateway_env(self, api_key: str) -> dict[str, str]:
        cfg = self.config
        env = {
            **self._base_env(),
            "KARTU_GATEWAY_HOST": cfg.host,
            "KARTU_GATEWAY_PORT": str(cfg.gateway_port),
            "KARTU_GATEWAY_API_KEY": api_key,
            # The local UI decodes payloads through the gateway; it cannot send the API key.
            "KARTU_GATEWAY_CODEC_OPEN_ON_LOOPBACK": "1",
        }
        if not cfg.headless:
            env["KARTU_GATEWAY_CODEC_CORS_ORIGINS"] = json.dumps(
                [cfg.url(cfg.ui_port), f"http://localhost:{cfg.ui_port}"]
            )
        env.pop("KARTU_GATEWAY_INSECURE_DEV", None)
        if cfg.gateway_metrics_port is not None:
            env["KARTU_GATEWAY_METRICS_PORT"] = str(cfg.gateway_metrics_port)
        return env

    def _worker_env(self) -> dict[str, str]:
        env = self._base_env()
        # Locally a stop should be quick; the operator's own value wins.
        env.setdefault("KARTU_GRACEFUL_SHUTDOWN_SECONDS", "5")
        if self.config.worker_metrics_port is not None:
            env["KARTU_WORKER_METRICS_HOST"] = self.config.host
            env["KARTU_WORKER_METRICS_PORT"] = str(self.config.worker_metrics_port)
        return env

    async def wait_ready(self) -> None:
        """Until every part answers; StackError as soon as one dies or time runs out."""
        checks: dict[str, Callable[[httpx.AsyncClient], Any]] = {
            "Temporal UI": self._ui_ready,
            "sandbox": self._sandbox_ready,
            "gateway": self._gateway_ready,
            "worker": self._worker_ready,
        }
        pending = {
            name: check
            for name, check in checks.items()
            if name in self.config.parts or (name == "Temporal UI" and not self.config.headless)
        }
        deadline = time.monotonic() + self.config.ready_timeout
        async with httpx.AsyncClient(timeout=2.0, verify=tls_context()) as http:
            while pending:
                self.raise_if_died()
                for name, check in list(pending.items()):
                    with contextlib.suppress(httpx.HTTPError, OSError, RPCError):
                        if await check(http):
                            del pending[name]
                if not pending:
                    return
                if time.monotonic() > deadline:
                    names = ", ".join(pending)
                    raise StackError(
                        f"not ready after {self.config.ready_timeout:g} s: {names} "
                        f"(logs in {self.data_dir})"
                    )
                await asyncio.sleep(0.1)

    async def _ui_ready(self, http: httpx.AsyncClient) -> bool:
        response = await http.get(self.config.url(self.config.ui_port))
        return response.status_code == 200

    async def _sandbox_ready(self, http: httpx.AsyncClient) -> bool:
        response = await http.get(self.config.sandbox_url + "/_sandbox/clock")
        return response.status_code == 200

    async def _gateway_ready(self, http: httpx.AsyncClient) -> bool:
        response = await http.get(self.config.gateway_url + "/healthz")
        return response.status_code == 200

    async def _worker_ready(self, http: httpx.AsyncClient) -> bool:
        """The worker process itself (its pid in the poller identity) polls both queues: a
        poller left over from an earlier run does not count."""
        worker = self.child("worker")
        if self.client is None or worker.pid is None:
            return False
        for kind in (
            TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        ):
            described = await self.client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=self.config.namespace,
                    task_queue=TaskQueue(name=self.config.task_queue),
                    task_queue_type=kind,
                )
            )
            if not any(p.identity.startswith(f"{worker.pid}@") for p in described.pollers):
                return False
        return True

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    # -- one part at a time (chaos, crash tests; a supervisor) ---------------------------

    def kill_child(self, name: str) -> None:
        """SIGKILL one part (a power cut for it); ``start_child`` brings it back."""
        self.child(name).kill()

    def start_child(self, name: str) -> None:
        """Start a part again that exited or was killed: same command, environment and log."""
        child = self.child(name)
        if child.exit_code() is None and child.process is not None:
            raise StackError(f"{name} is running (pid {child.pid})")
        child.start()

    async def restart_temporal(self) -> Client:
        """Stop the dev server and start it again on the same SQLite file and ports; the
        parts reconnect by themselves. Returns (and keeps) a new plain client."""
        assert self.devserver is not None
        await asyncio.to_thread(self.devserver.stop)
        self.devserver.start()
        try:
            self.client = await self.devserver.wait_ready(timeout=self.config.ready_timeout)
        except (RuntimeError, TimeoutError) as exc:
            raise StackError(f"Temporal dev server did not start again: {exc}") from None
        return self.client

    def codec(self) -> KartuCodec | None:
        """The payload codec the parts use (their keys), None when it is switched off."""
        from .codec import KartuCodec, parse_keys

        env = self._base_env()
        if env.get("KARTU_CODEC_DISABLED", "").strip().lower() in ("1", "true", "yes"):
            return None
        if env.get("KARTU_CODEC_KEYS"):
            return KartuCodec(parse_keys(env["KARTU_CODEC_KEYS"]))
        if env.get("KARTU_CODEC_KEYS_FILE"):
            path = Path(env["KARTU_CODEC_KEYS_FILE"])
            return KartuCodec(parse_keys(path.read_text(encoding="utf-8"), source=str(path)))
        return None

    async def connect(self, **options: Any) -> Client:
        """A client of the stack's Temporal that reads and writes payloads as its parts do
        (the same codec keys). ``options`` go to ``Client.connect`` (e.g. ``runtime``)."""
        from .codec import data_converter

        return await Client.connect(
            self.config.temporal_address,
            namespace=self.config.namespace,
            data_converter=data_converter(self.codec()),
            **options,
        )

    def raise_if_died(self, *, parts: bool = True) -> None:
        """StackError when a part (``parts``) or the dev server is gone."""
        for child in self.children if parts else ():
            if child.exit_code() is not None:
                raise StackError(child.died())
        if self.devserver is not None and not self.devserver.running:
            raise StackError(f"Temporal dev server exited (log: {self.data_dir / 'temporal.log'})")

    # -- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Worker first (it finishes its tasks), then gateway, sandbox, dev server; whatever
        does not stop in time is killed. Idempotent."""
        deadline = time.monotonic() + self.config.stop_timeout
        for child in reversed(self.children):
            child.terminate()
            child.wait(deadline - time.monotonic())
        if self.devserver is not None:
            self.devserver.stop(timeout=max(deadline - time.monotonic(), 5.0))
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- what to print -------------------------------------------------------------------

    def pids(self) -> dict[str, int | None]:
        devserver_process = getattr(self.devserver, "_process", None)
        out: dict[str, int | None] = {
            "temporal": devserver_process.pid if devserver_process else None
        }
        out.update({c.name: c.pid for c in self.children})
        return out

    def description(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "temporal": {
                "address": cfg.temporal_address,
                "namespace": cfg.namespace,
                "task_queue": cfg.task_queue,
            },
            "ui": cfg.ui_url,
            "sandbox": cfg.sandbox_url,
            "gateway": cfg.gateway_url,
            "callback_url": cfg.gateway_url + CALLBACK_PATH,
            "data_dir": str(self.data_dir),
            "logs": {
                name: str(self._log(name)) for name in ("temporal", "sandbox", "gateway", "worker")
            },
            "api_key_file": str(self.api_key_file) if self.api_key_file else None,
            "codec_keys_file": str(self.codec_keys_file) if self.codec_keys_file else None,
            "sandbox_auth_window_seconds": (
                cfg.sandbox_auth_window.total_seconds() if cfg.sandbox_auth_window else None
            ),
            "metrics": {
                "worker": _metrics_url(cfg, cfg.worker_metrics_port),
                "gateway": _metrics_url(cfg, cfg.gateway_metrics_port),
            },
            "pids": self.pids(),
        }


def _metrics_url(config: StackConfig, port: int | None) -> str | None:
    return None if not port else config.url(port) + "/metrics"


def print_ready(stack: LocalStack) -> None:
    d = stack.description()
    pids = d["pids"]
    key = d["api_key_file"] or "KARTU_GATEWAY_API_KEY (from the environment)"
    lines = [
        (
            "Temporal",
            f"{d['temporal']['address']}  namespace {d['temporal']['namespace']}, "
            f"task queue {d['temporal']['task_queue']}  (pid {pids['temporal']})",
        ),
        ("Temporal UI", d["ui"] or "none (headless)"),
        ("sandbox", f"{d['sandbox']}  (Ayoconnect stand-in, pid {pids['sandbox']})"),
        ("gateway", f"{d['gateway']}  (callbacks {d['callback_url']}, pid {pids['gateway']})"),
        ("worker", f"pid {pids['worker']}"),
        ("data", f"{d['data_dir']}  (logs: *.log)"),
        ("API key", f"{key}  (send as X-API-Key)"),
    ]
    if d["sandbox_auth_window_seconds"]:
        window = f"{d['sandbox_auth_window_seconds']:g} s"
        lines.append(("auth window", f"{window}  (the sandbox voids authorizations after it)"))
    if d["codec_keys_file"]:
        lines.append(("codec keys", d["codec_keys_file"]))
    for part in ("worker", "gateway"):
        if d["metrics"][part]:
            lines.append((f"{part} metrics", f"{d['metrics'][part]}  (Prometheus)"))
    emit(fields(lines))
    emit("ready  (a part that dies is restarted; Ctrl-C stops everything)")


async def serve(config: StackConfig, *, json_output: bool = False) -> int:
    """Start the stack, report "ready", run until SIGINT / SIGTERM / SIGHUP (a part that dies
    is started again, ``Supervisor``; the dev server's death ends it), then stop every part.
    Returns the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    stack = LocalStack(config)

    def say(event: str, message: str, **extra: Any) -> None:
        if json_output:
            print_json_line({"event": event, **extra})
        else:
            emit(message, sys.stderr if event == "error" else None)

    code = 0
    try:
        say("starting", f"starting the Kartu stack in {stack.data_dir} ...")
        if await _unless_stopped(stack.start(), stop):
            if json_output:
                print_json_line({"event": "ready", **stack.description()})
            else:
                print_ready(stack)
            supervisor = Supervisor(stack, say)
            while not stop.is_set():
                stack.raise_if_died(parts=False)
                supervisor.check()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
        else:
            code = 130
        say("stopping", "stopping ...")
    except StackError as exc:
        say("error", f"kartu up: error: {exc}", error=str(exc))
        code = 1
    except Exception as exc:  # anything else still stops what was started, in one line
        say("error", f"kartu up: error: {type(exc).__name__}: {exc}", error=str(exc))
        code = 1
    finally:
        await asyncio.to_thread(stack.stop)
        for sig in signals:
            loop.remove_signal_handler(sig)
    say("stopped", "stopped", code=code)
    return code


async def _unless_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Run ``work``; False (and ``work`` cancelled) if ``stop`` is set first."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return False
