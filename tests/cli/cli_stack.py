"""Helpers of the CLI suite: run ``kartu`` commands against a stack (the session's
``LocalStack``, root conftest, or a ``kartu up --json`` of a test's own started on free ports),
register cards through the CLI alone.

Against the session's stack a command runs in this process (``run_kartu_here``: the console
script's own ``run`` with its environment, directory and streams), and so do the commands run
against a ``kartu up`` a test started: a process costs ~0.5 s of CPU to start and this suite
runs about a hundred: on two cores that was a third of the suite's time. The console script
itself, as a process, is what ``test_cli_up.py`` (``kartu up``), ``test_cli_imports.py`` and the
README walkthrough run, and the security suite's commands.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from starter.stack import LocalStack
from tests.stack_support import free_ports

ROOT = Path(__file__).resolve().parents[2]
REDIRECT_URL = "https://shop.example/return"
FRICTIONLESS_CARD = "4111111111111111"
CHALLENGE_CARD = "4000000000003220"
# Remote-cluster settings from the developer's shell must not reach the local stack.
_SCRUBBED = ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS_CERT")
_SCRUBBED += ("TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CA", "KARTU_TASK_QUEUE", "KARTU_GATEWAY_API_KEY")


def kartu_command() -> list[str]:
    """The installed console script, else the module (same code, same ``main``)."""
    script = Path(sys.executable).parent / "kartu"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "starter.cli"]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    # Subprocesses import this tree, as the tests do (pytest's pythonpath = ["."]).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, f"exit {self.code}: {self.err}"
        return json.loads(self.out)


def run_kartu(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> Result:
    done = subprocess.run(  # noqa: S603 - our own console script
        [*kartu_command(), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


_HERE = threading.Lock()  # one command at a time: it owns the process's environment and cwd


def run_kartu_here(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> Result:
    """``kartu *args`` as the console script runs it (``starter.cli.run``), in this process: in
    a thread of its own (the command runs its own event loop, the test may be running one), with
    ``env`` as the whole environment, ``cwd`` as the directory and ``sys.stdout`` / ``sys.stderr``
    captured. Not captured: what bypasses ``sys.stderr`` (the SDK core's own log lines on fd 2,
    Python warnings and log records, which pytest takes): a test of the process's exact stderr
    uses ``Up.kartu_process``. An exception that escapes ``run`` (a bug: ``run`` reports every
    error itself) is raised here."""
    from starter.cli import run

    out, err = io.StringIO(), io.StringIO()
    codes: list[int] = []
    escaped: list[BaseException] = []

    def command() -> None:
        saved_env, saved_cwd = dict(os.environ), Path.cwd()
        try:
            os.environ.clear()
            os.environ.update(env)
            os.chdir(cwd)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    codes.append(run(list(args)))
                except SystemExit as exc:  # argparse: usage errors, --help
                    if isinstance(exc.code, str):
                        err.write(exc.code + "\n")  # what the interpreter would print
                    codes.append(exc.code if isinstance(exc.code, int) else int(bool(exc.code)))
        except BaseException as exc:  # handed to the test's thread
            escaped.append(exc)
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            os.chdir(saved_cwd)

    with _HERE:
        thread = threading.Thread(target=command, name=f"kartu {' '.join(args[:1])}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            # The command still owns this process's environment, cwd and streams: no later
            # test here could trust them.
            pytest.exit(f"kartu {' '.join(args)} still running after {timeout} s", returncode=1)
    if escaped:
        raise escaped[0]
    return Result(codes[0], out.getvalue(), err.getvalue())


@dataclass
class Up:
    """A running stack: its ports, data directory, pids and a CLI bound to it. ``process``: the
    ``kartu up`` that runs it, None for the session's stack (started by the test process)."""

    process: subprocess.Popen[str] | None
    data_dir: Path
    ports: dict[str, int]
    ready: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        extra = {
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports['temporal']}",
            "KARTU_SANDBOX_URL": f"http://127.0.0.1:{self.ports['sandbox']}",
            "KARTU_UI_URL": f"http://127.0.0.1:{self.ports['ui']}",
            "KARTU_REDIRECT_URL": REDIRECT_URL,
        }
        if self.ready.get("codec_keys_file"):
            extra["KARTU_CODEC_KEYS_FILE"] = self.ready["codec_keys_file"]
        return base_env(**extra)

    def kartu(self, *args: str, timeout: float = 60) -> Result:
        """``kartu *args`` against this stack, in this process (``run_kartu_here``)."""
        return run_kartu_here(*args, env=self.env, cwd=self.data_dir.parent, timeout=timeout)

    def kartu_process(self, *args: str, timeout: float = 60) -> Result:
        """``kartu *args`` against this stack as the console script, a process of its own: for
        tests of exactly what the process prints (its stderr, whatever writes it)."""
        return run_kartu(*args, env=self.env, cwd=self.data_dir.parent, timeout=timeout)

    @property
    def pids(self) -> dict[str, int]:
        return {name: pid for name, pid in self.ready["pids"].items() if pid}

    @classmethod
    def of(cls, stack: LocalStack) -> Up:
        """The session's stack, described as ``kartu up --json`` says "ready"."""
        ports = stack.config.ports
        ready = {"event": "ready", **stack.description()}
        return cls(None, stack.data_dir, ports, ready=ready)

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM, as a service manager would; returns the exit code."""
        assert self.process is not None, "the session's stack stops with the session"
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise
        self.events += read_events(self.process, until=None, timeout=1)
        return code

    def kill_all(self) -> None:
        """Last resort after a failed test: nothing of the stack may outlive the session."""
        assert self.process is not None, "the session's stack stops with the session"
        for pid in [self.process.pid, *self.pids.values()]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def read_events(
    process: subprocess.Popen[str], *, until: str | None, timeout: float
) -> list[dict[str, Any]]:
    """JSON lines from ``kartu up --json`` until the event ``until`` (or EOF, or timeout)."""
    assert process.stdout is not None
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(deadline - time.monotonic(), 0.01)):
                continue
            line = process.stdout.readline()
            if not line:
                break
            events.append(json.loads(line))
            if until is not None and events[-1]["event"] == until:
                break
    return events


def start_up(data_dir: Path, ports: dict[str, int] | None = None, *extra: str) -> Up:
    """``kartu up --json`` on free loopback ports; returns once it said "ready"."""
    if ports is None:
        names = ["temporal", "ui", "sandbox", "gateway", "worker-metrics", "gateway-metrics"]
        ports = dict(zip(names, free_ports(len(names)), strict=True))
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [
            *kartu_command(),
            "up",
            "--json",
            "--data-dir",
            str(data_dir),
            "--temporal-port",
            str(ports["temporal"]),
            "--ui-port",
            str(ports["ui"]),
            "--sandbox-port",
            str(ports["sandbox"]),
            "--gateway-port",
            str(ports["gateway"]),
            *[
                arg
                for name in ("worker-metrics", "gateway-metrics")
                if name in ports
                for arg in (f"--{name}-port", str(ports[name]))
            ],
            *extra,
        ],
        env=base_env(),
        cwd=data_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # ``kartu up`` is the real console script; the commands run against it need not be.
    up = Up(process, data_dir, ports)
    up.events = read_events(process, until="ready", timeout=90)
    if not up.events or up.events[-1]["event"] != "ready":
        up.kill_all()
        assert process.stderr is not None
        pytest.fail(f"kartu up did not get ready: {up.events} {process.stderr.read()[-2000:]}")
    up.ready = up.events[-1]
    return up


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def new_id(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@dataclass
class RegisteredCard:
    token: str
    customer_id: str


def register(up: Up, card: str, customer_id: str | None = None) -> RegisteredCard:
    """Through the CLI only: start a registration, fill the webview, read the result."""
    registration = new_id("reg")
    args = ["register", registration, "--name", "Kartu Tester", "--email", "t@example.com"]
    args += ["--phone", "6281234567890", "--json"]
    if customer_id:
        args += ["--customer", customer_id]
    started = up.kartu(*args).json()
    assert started["workflow_id"] == f"registration-{registration}"
    webview = started["webview"]["url"]
    assert webview.startswith(up.env["KARTU_SANDBOX_URL"] + "/webview/")
    page = up.kartu("sandbox", "card", webview, "--card", card, "--otp", "123456", "--json")
    assert page.json() == {"status_code": 303, "redirected_to": REDIRECT_URL}
    state = up.kartu("registration", registration, "--wait", "30", "--json").json()
    assert state["status"] == "REGISTERED", state
    assert len(state["card_token"]) == 40
    return RegisteredCard(state["card_token"], state["customer_id"])
